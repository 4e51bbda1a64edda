"""Models: the one place assay talks to a language model.

`Model` is a protocol (`name`, `complete(messages, n=1, temperature=None, stop=None)`).
Implementations:

- `LiteLLMModel`: any litellm model (`anthropic/...`, `openai/...`, `ollama_chat/...`,
  `hosted_vllm/...`, or `api_base` for an OpenAI-compatible server).
- `ScriptedModel`: returns given outputs in order (tests, demos).
- `ReplayModel`: replays calls recorded by a previous run (or a hand-written recording).

Every model charges its `Budget` (`check()` before a call, `charge(cost)` after, one
`calls` per API call) and hands one record per API call to its recorder. Strategies say
which task and trajectory a call belongs to with `model.with_context(task_id=...,
trajectory=...)` (or `bind(model, ...)`, which also accepts models without it).

Recording format (JSON Lines, one API call per line; this is what
`runs/<run>/<task>/trajectories/<trajectory>.jsonl` holds, and what `ReplayModel` reads)::

    {"kind": "model_call",
     "model": "anthropic/claude-3-5-sonnet-20240620",
     "task_id": "HumanEval/0", "trajectory": "self_debug-0",
     "request_hash": "<sha256 of the canonical JSON of messages>",
     "messages": [{"role": "system", "content": "..."}, {"role": "user", "content": "..."}],
     "params": {"n": 1, "temperature": 0.8, "stop": null},
     "responses": ["```python\\ndef f(x): ...\\n```"],
     "usage": {"tokens_in": 812, "tokens_out": 140},
     "cost": {"tokens_in": 812, "tokens_out": 140, "usd": 0.0045, "calls": 1},
     "timestamp": "2026-11-28T19:40:00+00:00", "duration_s": 3.2}

A hand-written recording needs only `responses` plus one way to match the request:
`messages` (or `request_hash`), or `prompt_contains` (a substring of the last user message),
or neither (then it is used in order, per `task_id` / `trajectory` when given).
`write_recording(path, calls)` writes such a file. `ReplayModel` matches a request by, in
order: same hash in the same trajectory, same hash anywhere, `prompt_contains` (same task),
records without hash or `prompt_contains` in order (same task and trajectory), then the next
unused record of the same trajectory; each recorded response is used once. A record without
`task_id` / `trajectory` matches any.

Trajectory names the function strategies use (agent/strategies/): `repeated` / `self_debug`
for the one call that draws the n first samples, `<strategy>-<i>` for the repairs of sample
i; `plansearch-observations`, then `plansearch-<i>` for the plan and code of program i;
`testgen` for model-written asserts, `input_generators` for fuzz input generators.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol, runtime_checkable

from assay.errors import UserError
from assay.types import Budget, BudgetExceeded, Cost

if TYPE_CHECKING:
    from assay.store import RunStore

log = logging.getLogger("assay.models")

Message = dict[str, str]
Recorder = Callable[[dict[str, Any]], None]


@dataclass
class Completion:
    text: str
    cost: Cost = field(default_factory=Cost)


@runtime_checkable
class Model(Protocol):
    name: str

    def complete(self, messages: list[Message], n: int = 1, temperature: float | None = None,
                 stop: list[str] | None = None) -> list[Completion]:
        ...


def request_hash(messages: list[Message]) -> str:
    """Stable hash of a request's messages (roles and contents only)."""
    canon = [{"role": m.get("role", ""), "content": m.get("content", "")} for m in messages]
    return hashlib.sha256(json.dumps(canon, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def within_budget(budget: Budget | None, call: Callable[[], Any], stopped: str) -> Any:
    """`call()` (a model call), or None when `budget` is spent before or during it; then the
    reason is logged after `stopped` (what stops, e.g. "HumanEval/0: sampling")."""
    try:
        if budget is not None:
            budget.check()
        return call()
    except BudgetExceeded as e:
        log.info("%s stopped: %s", stopped, e)
        return None


def split_cost(cost: Cost, n: int) -> list[Cost]:
    """Share one API call's cost among its n completions so that the parts add up to it."""
    n = max(n, 1)
    usd = None if cost.usd is None else cost.usd / n

    def part(total: int, i: int) -> int:
        return total // n + (1 if i < total % n else 0)

    return [Cost(tokens_in=part(cost.tokens_in, i), tokens_out=part(cost.tokens_out, i), usd=usd,
                 calls=cost.calls if i == 0 else 0) for i in range(n)]


class CallRecorder:
    """Writes each call record to `store.record_call(task_id, trajectory, record)`.

    The task and trajectory come from the record (set by `with_context`), else the defaults
    given here.
    """

    def __init__(self, store: "RunStore", task_id: str | None = None,
                 trajectory_id: str | None = None) -> None:
        self.store = store
        self.task_id = task_id
        self.trajectory_id = trajectory_id

    def __call__(self, record: dict[str, Any]) -> None:
        task_id = record.get("task_id") or self.task_id or "_run"
        trajectory = record.get("trajectory") or self.trajectory_id or "default"
        self.store.record_call(task_id, trajectory, record)


class JsonlRecorder:
    """Appends every call record to one JSONL file (a recording `ReplayModel` can read)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def __call__(self, record: dict[str, Any]) -> None:
        from assay.store import append_jsonl

        append_jsonl(self.path, record)


def make_record(model: str, messages: list[Message], responses: list[str], cost: Cost, *,
                n: int = 1, temperature: float | None = None, stop: list[str] | None = None,
                context: dict[str, Any] | None = None, duration_s: float = 0.0,
                error: str | None = None) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "kind": "model_call",
        "model": model,
        "task_id": (context or {}).get("task_id"),
        "trajectory": (context or {}).get("trajectory"),
        "request_hash": request_hash(messages),
        "messages": messages,
        "params": {"n": n, "temperature": temperature, "stop": stop},
        "responses": responses,
        "usage": {"tokens_in": cost.tokens_in, "tokens_out": cost.tokens_out},
        "cost": cost.model_dump(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(duration_s, 3),
    }
    if error is not None:
        rec["error"] = error
    return rec


def write_recording(path: Path | str, calls: Iterable[Any], model: str = "recorded") -> Path:
    """Write a recording file for `ReplayModel`.

    Each call is a dict with `responses` (or `response`) and optionally `messages`,
    `prompt_contains`, `task_id`, `trajectory`; or a `(messages, responses)` pair.
    """
    path = Path(path)
    lines = []
    for call in calls:
        if not isinstance(call, dict):
            messages, responses = call
            call = {"messages": messages, "responses": responses}
        responses = call.get("responses", call.get("response"))
        if isinstance(responses, str):
            responses = [responses]
        if not responses:
            raise ValueError(f"recorded call has no responses: {call!r:.200}")
        rec = {"kind": "model_call", "model": call.get("model", model),
               "task_id": call.get("task_id"), "trajectory": call.get("trajectory"),
               "responses": list(responses)}
        if call.get("messages"):
            rec["messages"] = call["messages"]
            rec["request_hash"] = request_hash(call["messages"])
        if call.get("prompt_contains"):
            rec["prompt_contains"] = call["prompt_contains"]
        lines.append(json.dumps(rec, ensure_ascii=False))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


class ModelBase:
    """Budget charging, call recording and context views shared by all models.

    Subclasses implement `_complete(messages, n, temperature, stop, context)`, which calls
    `self._account(...)` once per API call it makes.
    """

    name: str = "model"

    def __init__(self, name: str, *, recorder: Recorder | None = None,
                 budget: Budget | None = None) -> None:
        self.name = name
        self.recorder = recorder
        self.budget = budget

    def complete(self, messages: list[Message], n: int = 1, temperature: float | None = None,
                 stop: list[str] | None = None, **context: Any) -> list[Completion]:
        return self._complete(messages, n, temperature, stop, context)

    def with_context(self, **context: Any) -> "ModelView":
        """A view whose calls are recorded under this task / trajectory (e.g. task_id=, trajectory=,
        and optionally recorder= used when this model has none)."""
        return ModelView(self, context)

    def _complete(self, messages: list[Message], n: int, temperature: float | None,
                  stop: list[str] | None, context: dict[str, Any]) -> list[Completion]:
        raise NotImplementedError

    def _check_budget(self) -> None:
        if self.budget is not None:
            self.budget.check()

    def _account(self, messages: list[Message], texts: list[str], cost: Cost, *, n: int,
                 temperature: float | None, stop: list[str] | None, context: dict[str, Any],
                 started: float) -> list[Completion]:
        """Charge and record one API call; return its completions with their cost shares."""
        if self.budget is not None:
            self.budget.charge(cost)
        recorder = self.recorder or context.get("recorder")
        if recorder is not None:
            ctx = {k: v for k, v in context.items() if k != "recorder"}
            recorder(make_record(self.name, messages, texts, cost, n=n, temperature=temperature,
                                 stop=stop, context=ctx, duration_s=time.monotonic() - started))
        return [Completion(t, c) for t, c in zip(texts, split_cost(cost, len(texts)))]


class ModelView:
    """A model bound to a context (task, trajectory); shares the underlying model's state."""

    def __init__(self, base: ModelBase, context: dict[str, Any]) -> None:
        self.base = base
        self.context = context
        self.name = base.name

    def complete(self, messages: list[Message], n: int = 1, temperature: float | None = None,
                 stop: list[str] | None = None, **context: Any) -> list[Completion]:
        return self.base._complete(messages, n, temperature, stop, {**self.context, **context})

    def with_context(self, **context: Any) -> "ModelView":
        return ModelView(self.base, {**self.context, **context})


def bind(model: Any, **context: Any) -> Any:
    """`model.with_context(**context)` when the model supports it, else the model itself."""
    context = {k: v for k, v in context.items() if v is not None}
    with_context = getattr(model, "with_context", None)
    return with_context(**context) if with_context is not None and context else model


# --------------------------------------------------------------------------- litellm

_KEY_ENV = {
    "anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY", "gemini": "GEMINI_API_KEY",
    "mistral": "MISTRAL_API_KEY", "groq": "GROQ_API_KEY", "deepseek": "DEEPSEEK_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY", "openrouter": "OPENROUTER_API_KEY",
    "fireworks_ai": "FIREWORKS_AI_API_KEY", "cohere": "COHERE_API_KEY", "xai": "XAI_API_KEY",
}
_warned_unpriced: set[str] = set()
_warn_lock = threading.Lock()


def _import_litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True  # no "Provider List: ..." banners on stdout
    return litellm


def _is_unmapped_price(litellm: Any, exc: Exception) -> bool:
    """completion_cost's "no price for this model" errors (the class differs across versions)."""
    known = tuple(c for c in (getattr(litellm.exceptions, "ModelNotMappedError", None),
                              getattr(litellm.exceptions, "NotFoundError", None)) if c)
    return isinstance(exc, known) or "isn't mapped yet" in str(exc)


def _caused_by_connection_failure(exc: BaseException) -> bool:
    """Whether a connection error (refused, unknown host) is anywhere in the exception chain."""
    import httpx

    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, (ConnectionError, httpx.ConnectError)):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


class LiteLLMModel(ModelBase):
    """Any litellm model. Extra keyword arguments go to `litellm.completion` unchanged (e.g.
    `mock_response="..."` in tests, `top_p`, `reasoning_effort`)."""

    def __init__(self, name: str, api_base: str | None = None, api_key: str | None = None,
                 temperature: float = 0.8, max_tokens: int = 4096, num_retries: int = 3,
                 recorder: Recorder | None = None, budget: Budget | None = None,
                 timeout_s: float = 600.0, max_parallel: int = 8, **extra: Any) -> None:
        super().__init__(name, recorder=recorder, budget=budget)
        self.api_base = api_base
        self.api_key = api_key
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.num_retries = num_retries
        self.timeout_s = timeout_s
        self.max_parallel = max_parallel
        self.extra = extra
        self._n_supported = True
        self._drop_params = False

    @property
    def provider(self) -> str:
        return self.name.split("/", 1)[0] if "/" in self.name else "openai"

    def _complete(self, messages, n, temperature, stop, context):
        temperature = self.temperature if temperature is None else temperature
        out: list[Completion] = []
        if n > 1 and self._n_supported:
            out = self._call(messages, n, temperature, stop, context)
        # Providers without n (anthropic, ollama) or that returned fewer choices: one call each.
        missing = n - len(out)
        if missing == 1:
            out.extend(self._call(messages, 1, temperature, stop, context))
        elif missing > 1:
            with ThreadPoolExecutor(max_workers=max(1, min(missing, self.max_parallel))) as pool:
                futures = [pool.submit(self._call, messages, 1, temperature, stop, context)
                           for _ in range(missing)]
                for f in futures:
                    out.extend(f.result())
        return out[:n] if n > 0 else out

    def _call(self, messages, n, temperature, stop, context) -> list[Completion]:
        litellm = _import_litellm()
        self._check_budget()
        kwargs: dict[str, Any] = dict(model=self.name, messages=messages, temperature=temperature,
                                      max_tokens=self.max_tokens, num_retries=self.num_retries,
                                      timeout=self.timeout_s, **self.extra)
        if n > 1:
            kwargs["n"] = n
        if stop:
            kwargs["stop"] = stop
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if self.api_key:
            kwargs["api_key"] = self.api_key
        if self._drop_params:
            kwargs["drop_params"] = True
        started = time.monotonic()
        try:
            resp = litellm.completion(**kwargs)
        except litellm.exceptions.UnsupportedParamsError as e:
            if n > 1 and "'n'" in str(e):
                self._n_supported = False
                log.info("%s does not accept n=%d; sampling with separate calls", self.name, n)
                return []
            if kwargs.get("drop_params"):
                raise
            # e.g. reasoning models that refuse `temperature` or `stop`: let litellm drop them.
            log.warning("%s rejects some parameters (%s); dropping them",
                        self.name, str(e).splitlines()[0][:160])
            self._drop_params = True
            return self._call(messages, n, temperature, stop, context)
        except litellm.exceptions.AuthenticationError as e:
            provider = getattr(e, "llm_provider", None) or self.provider
            env = _KEY_ENV.get(provider, f"{provider.upper()}_API_KEY")
            raise UserError(f"no valid API key for {provider}: set {env} "
                            f"and check that it is not expired.") from None
        except litellm.exceptions.APIConnectionError as e:
            where = self.api_base or self.provider
            raise UserError(f"could not reach model {self.name} at {where} ({str(e)[:160]}); "
                            f"check the server and --api-base.") from None
        except litellm.exceptions.BadRequestError as e:
            if "LLM Provider NOT provided" in str(e):
                raise UserError(f"litellm does not know model {self.name!r}; use a provider prefix "
                                f"such as openai/, anthropic/, ollama_chat/ or hosted_vllm/.") from None
            self._raise_if_key_missing(litellm)
            raise
        except Exception as e:
            # Some providers report a missing key, or a refused connection, as a server error.
            self._raise_if_key_missing(litellm)
            if _caused_by_connection_failure(e):
                where = self.api_base or self.provider
                raise UserError(f"could not reach model {self.name} at {where} (connection failed); "
                                f"check the server and --api-base.") from None
            raise
        texts = [(c.message.content or "") for c in resp.choices]
        return self._account(messages, texts, self._cost(litellm, resp), n=n,
                             temperature=temperature, stop=stop, context=context, started=started)

    def _raise_if_key_missing(self, litellm: Any) -> None:
        """After a failed call: if the provider's key is not set, say so in one sentence."""
        if self.api_key or self.api_base:
            return
        try:
            missing = litellm.validate_environment(model=self.name).get("missing_keys") or []
        except Exception:  # diagnosis only; the original error is re-raised by the caller
            return
        if missing:
            raise UserError(f"no API key for {self.provider}: set {' and '.join(missing)} "
                            f"(model {self.name}).") from None

    def _cost(self, litellm: Any, resp: Any) -> Cost:
        usage = getattr(resp, "usage", None)
        tokens_in = int(getattr(usage, "prompt_tokens", 0) or 0)
        tokens_out = int(getattr(usage, "completion_tokens", 0) or 0)
        usd: float | None
        try:
            usd = float(litellm.completion_cost(completion_response=resp))
        except Exception as e:
            if not _is_unmapped_price(litellm, e):
                raise
            usd = None
            with _warn_lock:
                first = self.name not in _warned_unpriced
                _warned_unpriced.add(self.name)
            if first:
                log.warning("no known price for model %s; its cost is recorded as unknown", self.name)
        return Cost(tokens_in=tokens_in, tokens_out=tokens_out, usd=usd, calls=1)


# --------------------------------------------------------------------------- scripted


class ScriptExhausted(RuntimeError):
    """A ScriptedModel was asked for more outputs than it was given."""


class ScriptedModel(ModelBase):
    """Returns the given outputs in order (a call with n=k takes the next k), or calls
    `outputs(messages)` once per completion. Free (usd=0), but charged one call per call."""

    def __init__(self, outputs: list[str] | Callable[[list[Message]], str], name: str = "scripted",
                 recorder: Recorder | None = None, budget: Budget | None = None) -> None:
        super().__init__(name, recorder=recorder, budget=budget)
        self._fn = outputs if callable(outputs) else None
        self._outputs = [] if callable(outputs) else list(outputs)
        self._next = 0
        self._lock = threading.Lock()
        self.calls: list[list[Message]] = []  # every request, for tests to inspect

    @property
    def remaining(self) -> int:
        return len(self._outputs) - self._next

    def _complete(self, messages, n, temperature, stop, context):
        self._check_budget()
        started = time.monotonic()
        with self._lock:
            self.calls.append(messages)
            if self._fn is None:
                if self._next + n > len(self._outputs):
                    last = messages[-1]["content"] if messages else ""
                    raise ScriptExhausted(
                        f"ScriptedModel has {self.remaining} output(s) left but was asked for {n}; "
                        f"prompt: {last[:300]!r}")
                texts = self._outputs[self._next:self._next + n]
                self._next += n
        if self._fn is not None:
            texts = [self._fn(messages) for _ in range(n)]
        return self._account(messages, list(texts), Cost(calls=1, usd=0.0), n=n,
                             temperature=temperature, stop=stop, context=context, started=started)


# --------------------------------------------------------------------------- replay


def _load_records(path: Path) -> list[dict[str, Any]]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.jsonl") if p.parent.name == "trajectories")
        if not files:
            files = sorted(path.rglob("*.jsonl"))
    elif path.is_file():
        files = [path]
    else:
        raise UserError(f"no recording at {path}; pass a run directory or a .jsonl recording file.")
    records = []
    for f in files:
        for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{f}:{i} is not valid JSON ({e.msg}); fix or remove that line.") from None
            if isinstance(rec, dict) and rec.get("responses") and not rec.get("error"):
                records.append(rec)
    if not records:
        raise UserError(f"{path} holds no recorded model calls; record a run first "
                        f"(or write one with assay.agent.models.write_recording).")
    return records


class ReplayModel(ModelBase):
    """Replays recorded model calls (see the module docstring for the format and matching)."""

    def __init__(self, path: Path | str, name: str | None = None,
                 recorder: Recorder | None = None, budget: Budget | None = None) -> None:
        self.path = Path(path)
        self._records = _load_records(self.path)
        for rec in self._records:
            if "request_hash" not in rec and rec.get("messages"):
                rec["request_hash"] = request_hash(rec["messages"])
            rec["_left"] = list(rec["responses"])
        names = {r.get("model") for r in self._records if r.get("model")}
        super().__init__(name or (names.pop() if len(names) == 1 else "replay"),
                         recorder=recorder, budget=budget)
        self._lock = threading.Lock()

    def _take(self, messages: list[Message], n: int, context: dict[str, Any]) -> list[str]:
        h = request_hash(messages)
        traj, task = context.get("trajectory"), context.get("task_id")
        last = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")

        def same_task(r):
            return task is None or r.get("task_id") in (None, task)

        def same_traj(r):
            return same_task(r) and (traj is None or r.get("trajectory") in (None, traj))

        def contains(r):
            return bool(r.get("prompt_contains")) and r["prompt_contains"] in last

        matchers = [
            lambda r: r.get("request_hash") == h and same_traj(r),
            lambda r: r.get("request_hash") == h,  # the very same prompt: any trajectory will do
            lambda r: contains(r) and same_traj(r),
            lambda r: contains(r) and same_task(r),
            lambda r: "request_hash" not in r and not r.get("prompt_contains") and same_traj(r),
            lambda r: traj is not None and r.get("trajectory") == traj and same_task(r),
        ]
        texts: list[str] = []
        for match in matchers:
            for rec in self._records:
                while rec["_left"] and len(texts) < n and match(rec):
                    texts.append(rec["_left"].pop(0))
            if len(texts) == n:
                return texts
        raise UserError(f"the recording {self.path} has no response left for this prompt "
                        f"(task {task}, trajectory {traj}): {last[:200]!r}; re-record the run.")

    def _complete(self, messages, n, temperature, stop, context):
        self._check_budget()
        started = time.monotonic()
        with self._lock:
            texts = self._take(messages, n, context)
        return self._account(messages, texts, Cost(calls=1, usd=0.0), n=n, temperature=temperature,
                             stop=stop, context=context, started=started)


def make_model(name: str, *, api_base: str | None = None, temperature: float = 0.8,
               recorder: Recorder | None = None, budget: Budget | None = None,
               **extra: Any) -> ModelBase:
    """A model from a CLI-style name: `replay:<path>` replays a recording, else litellm."""
    if name.startswith("replay:"):
        return ReplayModel(name[len("replay:"):], recorder=recorder, budget=budget)
    return LiteLLMModel(name, api_base=api_base, temperature=temperature, recorder=recorder,
                        budget=budget, **extra)
