"""Everything that talks to a model: models, prompts, generation strategies, model-written tests."""
