"""Pieces every command that searches needs: settings, the model, the runner, the run store."""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from assay.config import Settings, load_settings
from assay.errors import UserError
from assay.store import RunStore
from assay.types import Budget

NO_MODEL_HINT = ("pass --model or set ASSAY_MODEL to any litellm model name "
                 "(e.g. anthropic/claude-sonnet-4-5 with ANTHROPIC_API_KEY set)")


def settings_from(**flags: Any) -> Settings:
    return load_settings({k: v for k, v in flags.items() if v is not None})


def make_budget(settings: Settings) -> Budget:
    return Budget(usd=settings.max_usd, calls=settings.max_calls)


def run_id_for(kind: str, *parts: Any) -> str:
    """The same command on the same inputs gets the same run id, so re-running resumes."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"{kind}-{digest}"


def open_store(settings: Settings, run_id: str, config: dict[str, Any]) -> RunStore:
    from assay import __version__

    store = RunStore(settings.runs_dir, run_id)
    store.write_run_info({
        "run_id": run_id,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv,
        "assay_version": __version__,
        "python": sys.version.split()[0],
        "config": config,
    })
    return store


def make_model(settings: Settings, store: RunStore | None, budget: Budget, *, required: bool,
               what: str = "this command"):
    """The configured model with its calls recorded into the run store, or None."""
    if not settings.model:
        if required:
            raise UserError(f"{what} needs a model: {NO_MODEL_HINT}.")
        return None
    from assay.agent.models import CallRecorder, make_model as build

    recorder = CallRecorder(store) if store is not None else None
    return build(settings.model, api_base=settings.api_base, temperature=settings.temperature,
                 recorder=recorder, budget=budget)


def make_runner(settings: Settings, run_id: str | None, budget: Budget | None):
    from assay.sandbox.base import make_sandbox
    from assay.sandbox.runner import PEER_FACTOR, Runner

    sandbox = make_sandbox(settings.sandbox, unsafe_no_sandbox=settings.unsafe_no_sandbox,
                           image=settings.image, run_id=run_id)
    cache = Path(settings.runs_dir) / "_exec_cache"
    return Runner(sandbox, test_timeout_s=settings.timeout_s, memory_mb=settings.memory_mb,
                  workers=settings.workers, cache_dir=cache, budget=budget,
                  peer_factor=PEER_FACTOR if settings.peer_limits else None)


def console(quiet: bool = False):
    from rich.console import Console

    return Console(quiet=quiet, stderr=False)
