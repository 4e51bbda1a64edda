"""assay: code generation with execution-grounded test-time search."""

__version__ = "0.1.0"
