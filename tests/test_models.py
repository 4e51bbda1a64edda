"""Models: LiteLLMModel through litellm's mock_response, ScriptedModel, recording and replay."""

from __future__ import annotations

import json
import logging

import pytest

from assay.agent.models import (
    CallRecorder,
    JsonlRecorder,
    LiteLLMModel,
    ReplayModel,
    ScriptedModel,
    ScriptExhausted,
    bind,
    request_hash,
    split_cost,
    write_recording,
)
from assay.errors import UserError
from assay.store import RunStore, read_jsonl
from assay.types import Budget, BudgetExceeded, Cost

MSGS = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "say hello"}]


def test_litellm_mock_response_n_samples_cost_and_trajectory(tmp_path):
    store = RunStore(tmp_path, "run1")
    budget = Budget()
    model = LiteLLMModel("openai/gpt-4o-mini", recorder=CallRecorder(store), budget=budget,
                         mock_response="hello there")
    out = model.with_context(task_id="HumanEval/0", trajectory="repeated").complete(MSGS, n=3)
    assert [c.text for c in out] == ["hello there"] * 3
    total = sum((c.cost for c in out), Cost())
    assert total.calls == 1  # one API call for three samples
    assert total.usd is not None and total.usd > 0  # gpt-4o-mini has a price in litellm's map
    assert total.tokens_in > 0 and total.tokens_out > 0
    assert budget.spent.calls == 1 and budget.spent.usd == pytest.approx(total.usd)

    recs = list(read_jsonl(store.trajectory_path("HumanEval/0", "repeated")))
    assert len(recs) == 1
    rec = recs[0]
    assert rec["model"] == "openai/gpt-4o-mini"
    assert rec["messages"] == MSGS
    assert rec["responses"] == ["hello there"] * 3
    assert rec["request_hash"] == request_hash(MSGS)
    assert rec["params"]["n"] == 3 and rec["params"]["temperature"] == 0.8
    assert rec["cost"]["usd"] == pytest.approx(total.usd)
    assert rec["usage"]["tokens_in"] == total.tokens_in
    assert rec["task_id"] == "HumanEval/0" and rec["trajectory"] == "repeated"
    assert rec["timestamp"] and rec["duration_s"] >= 0


def test_litellm_provider_without_n_falls_back_to_separate_calls(tmp_path):
    # litellm rejects n for anthropic (UnsupportedParamsError): we make n single calls instead.
    rec = JsonlRecorder(tmp_path / "calls.jsonl")
    budget = Budget()
    model = LiteLLMModel("anthropic/claude-3-5-sonnet-20240620", api_key="sk-test", recorder=rec,
                         budget=budget, mock_response="hi")
    out = model.complete(MSGS, n=3)
    assert [c.text for c in out] == ["hi"] * 3
    assert budget.spent.calls == 3
    assert len(list(read_jsonl(tmp_path / "calls.jsonl"))) == 3


def test_litellm_unknown_price_is_recorded_as_unknown_and_warned_once(tmp_path, caplog):
    store = RunStore(tmp_path, "run1")
    budget = Budget()
    model = LiteLLMModel("hosted_vllm/my-custom-finetune", api_base="http://localhost:9/v1",
                         recorder=CallRecorder(store, "t1", "traj"), budget=budget,
                         mock_response="ok")
    with caplog.at_level(logging.WARNING, logger="assay.models"):
        a = model.complete(MSGS)
        b = model.complete(MSGS)
    assert a[0].cost.usd is None and b[0].cost.usd is None
    assert a[0].cost.tokens_out > 0
    warnings = [r for r in caplog.records if "no known price" in r.getMessage()]
    assert len(warnings) == 1
    assert budget.unknown_price and budget.spent.calls == 2
    recs = list(read_jsonl(store.trajectory_path("t1", "traj")))
    assert [r["cost"]["usd"] for r in recs] == [None, None]


def test_litellm_budget_exhaustion_raises_before_calling():
    budget = Budget(calls=2)
    model = LiteLLMModel("openai/gpt-4o-mini", budget=budget, mock_response="x")
    model.complete(MSGS)
    model.complete(MSGS)
    with pytest.raises(BudgetExceeded):
        model.complete(MSGS)
    assert budget.spent.calls == 2


def test_litellm_missing_key_is_a_user_error(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    model = LiteLLMModel("anthropic/claude-3-5-sonnet-20240620", num_retries=0)
    with pytest.raises(UserError, match="ANTHROPIC_API_KEY"):
        model.complete(MSGS)


def test_split_cost_adds_up():
    parts = split_cost(Cost(tokens_in=10, tokens_out=7, usd=0.3, calls=1), 3)
    total = sum(parts, Cost())
    assert (total.tokens_in, total.tokens_out, total.calls) == (10, 7, 1)
    assert total.usd == pytest.approx(0.3)
    assert split_cost(Cost(usd=None, calls=1), 2)[1].usd is None


def test_scripted_model_in_order_and_exhaustion():
    budget = Budget()
    model = ScriptedModel(["a", "b", "c"], budget=budget)
    assert [c.text for c in model.complete(MSGS)] == ["a"]
    assert [c.text for c in model.complete(MSGS, n=2)] == ["b", "c"]
    assert budget.spent.calls == 2 and budget.spent.usd == 0.0
    with pytest.raises(ScriptExhausted, match="say hello"):
        model.complete(MSGS)
    assert len(model.calls) == 3


def test_scripted_model_callable_and_budget():
    model = ScriptedModel(lambda msgs: msgs[-1]["content"].upper(), budget=Budget(calls=1))
    assert model.complete(MSGS)[0].text == "SAY HELLO"
    with pytest.raises(BudgetExceeded):
        model.complete(MSGS)


def test_record_then_replay_round_trip(tmp_path):
    store = RunStore(tmp_path, "rec")
    live = ScriptedModel(["one", "two", "three", "four"], recorder=CallRecorder(store))
    other = [{"role": "user", "content": "another prompt"}]
    bind(live, task_id="T/1", trajectory="a").complete(MSGS, n=2)
    bind(live, task_id="T/1", trajectory="b").complete(other)
    bind(live, task_id="T/1", trajectory="b").complete(MSGS)

    replay = ReplayModel(store.dir)
    assert replay.name == "scripted"
    # same hash, same trajectory first
    assert [c.text for c in bind(replay, task_id="T/1", trajectory="b").complete(MSGS)] == ["four"]
    assert [c.text for c in bind(replay, task_id="T/1", trajectory="a").complete(MSGS, n=2)] == ["one", "two"]
    assert [c.text for c in bind(replay, task_id="T/1", trajectory="b").complete(other)] == ["three"]
    with pytest.raises(UserError, match="say hello"):
        replay.complete(MSGS)


def test_replay_falls_back_to_order_within_trajectory(tmp_path):
    path = tmp_path / "r.jsonl"
    write_recording(path, [{"messages": MSGS, "responses": ["x"], "trajectory": "t"}])
    changed = [{"role": "user", "content": "a reworded prompt"}]
    replay = ReplayModel(path)
    assert replay.with_context(trajectory="t").complete(changed)[0].text == "x"


def test_hand_written_recording_prompt_contains_and_plain_order(tmp_path):
    path = write_recording(tmp_path / "demo.jsonl", [
        {"prompt_contains": "observations", "responses": ["- obs"]},
        {"responses": "first"},
        {"responses": ["second"]},
    ])
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[0]["prompt_contains"] == "observations" and lines[1]["responses"] == ["first"]
    replay = ReplayModel(path)
    assert replay.complete(MSGS)[0].text == "first"
    assert replay.complete([{"role": "user", "content": "list observations"}])[0].text == "- obs"
    assert replay.complete(MSGS)[0].text == "second"


def test_replay_rejects_missing_or_bad_recording(tmp_path):
    with pytest.raises(UserError, match="no recording"):
        ReplayModel(tmp_path / "nope.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(UserError, match="not valid JSON"):
        ReplayModel(bad)


def test_litellm_other_unsupported_params_are_dropped_and_retried(monkeypatch):
    import litellm

    real = litellm.completion
    seen = []

    def picky(**kwargs):  # a provider that refuses `temperature` unless litellm drops it
        seen.append(kwargs.get("drop_params", False))
        if not kwargs.get("drop_params"):
            raise litellm.exceptions.UnsupportedParamsError(
                message="o1 does not support parameters: ['temperature']", llm_provider="openai",
                model="o1")
        return real(**kwargs)

    monkeypatch.setattr(litellm, "completion", picky)
    model = LiteLLMModel("openai/o1-mini", mock_response="fine")
    assert [c.text for c in model.complete(MSGS, n=2)] == ["fine", "fine"]
    assert model.complete(MSGS)[0].text == "fine"
    assert seen == [False, True, True]  # later calls drop at once


def test_missing_api_key_is_one_sentence_naming_the_variable(monkeypatch):
    """No key and no api_base: the client fails before any request; we name the variable."""
    import pytest

    from assay.agent.models import LiteLLMModel
    from assay.errors import UserError

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    model = LiteLLMModel("openai/gpt-4o-mini", num_retries=0)
    with pytest.raises(UserError, match="set OPENAI_API_KEY"):
        model.complete([{"role": "user", "content": "hi"}])


def test_unreachable_server_is_one_sentence(monkeypatch):
    """A refused connection on loopback (litellm reports it as a server error) becomes a UserError."""
    import socket

    import pytest

    from assay.agent.models import LiteLLMModel
    from assay.errors import UserError

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    model = LiteLLMModel("hosted_vllm/foo", api_base=f"http://127.0.0.1:{port}/v1", num_retries=0)
    with pytest.raises(UserError, match="could not reach model hosted_vllm/foo"):
        model.complete([{"role": "user", "content": "hi"}])
