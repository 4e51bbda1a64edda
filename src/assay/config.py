"""Settings: CLI flag > ASSAY_* env > ./assay.toml > ~/.config/assay/config.toml > default."""

from __future__ import annotations

import os
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from assay.errors import UserError


@dataclass
class Settings:
    model: str | None = None  # any litellm model name; None = no model
    api_base: str | None = None
    temperature: float = 0.8
    sandbox: str = "local"  # local | docker
    image: str = "assay-sandbox:py311"  # docker backend image
    unsafe_no_sandbox: bool = False
    workers: int = 2
    timeout_s: float = 5.0  # per test
    peer_limits: bool = True  # tighter per-test CPU limits set from the other candidates (sandbox/runner.py)
    memory_mb: int = 1024
    runs_dir: str = "runs"
    seed: int = 0
    max_usd: float | None = None
    max_calls: int | None = None
    quiet: bool = False


def _coerce(name: str, value: Any) -> Any:
    default = Settings.__dataclass_fields__[name].default
    if value is None or isinstance(value, bool) and isinstance(default, bool):
        return value
    if isinstance(value, str):
        if isinstance(default, bool):
            return value.strip().lower() in ("1", "true", "yes", "on")
        if isinstance(default, int) or name in ("max_calls",):
            return int(value)
        if isinstance(default, float) or name in ("max_usd",):
            return float(value)
    return value


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path} is not valid TOML ({e}); fix or remove it.") from None
    return data.get("assay", data)


def load_settings(overrides: dict[str, Any] | None = None, cwd: Path | None = None) -> Settings:
    known = {f.name for f in fields(Settings)}
    merged: dict[str, Any] = {}
    for layer in (
        _read_toml(Path.home() / ".config" / "assay" / "config.toml"),
        _read_toml((cwd or Path.cwd()) / "assay.toml"),
        {k[len("ASSAY_"):].lower(): v for k, v in os.environ.items() if k.startswith("ASSAY_")},
        {k: v for k, v in (overrides or {}).items() if v is not None},
    ):
        for k, v in layer.items():
            if k in known:
                merged[k] = _coerce(k, v)
    return Settings(**merged)
