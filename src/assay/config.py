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


# The numeric settings and the least each may be: a count of 0 workers or a timeout of -1 s
# would not fail here but somewhere far from the setting that caused it.
_AT_LEAST = {"workers": 1, "timeout_s": 0.001, "memory_mb": 1, "temperature": 0.0, "max_usd": 0.0,
             "max_calls": 0}
_NUMBER_KIND = {"workers": int, "memory_mb": int, "seed": int, "max_calls": int,
                "timeout_s": float, "temperature": float, "max_usd": float}


def _coerce(name: str, value: Any, source: str) -> Any:
    default = Settings.__dataclass_fields__[name].default
    if value is None or isinstance(value, bool) and isinstance(default, bool):
        return value
    if isinstance(value, str) and isinstance(default, bool):
        return value.strip().lower() in ("1", "true", "yes", "on")
    kind = _NUMBER_KIND.get(name)
    if kind is None:
        return value
    number = value
    if isinstance(value, str):
        try:
            number = kind(value.strip())
        except ValueError:
            pass
    elif kind is float and type(value) is int:
        number = float(value)
    if type(number) is not kind:
        what = "a whole number" if kind is int else "a number"
        raise UserError(f"{name} = {value!r} ({source}) is not {what}; fix it there.")
    if name in _AT_LEAST and number < _AT_LEAST[name]:
        least = "more than 0" if name == "timeout_s" else f"at least {_AT_LEAST[name]:g}"
        raise UserError(f"{name} = {value!r} ({source}) must be {least}; fix it there.")
    return number


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
    for source, layer in (
        ("in ~/.config/assay/config.toml", _read_toml(Path.home() / ".config" / "assay" / "config.toml")),
        ("in ./assay.toml", _read_toml((cwd or Path.cwd()) / "assay.toml")),
        ("from ASSAY_{KEY}", {k[len("ASSAY_"):].lower(): v for k, v in os.environ.items() if k.startswith("ASSAY_")}),
        ("on the command line", {k: v for k, v in (overrides or {}).items() if v is not None}),
    ):
        for k, v in layer.items():
            if k in known:
                merged[k] = _coerce(k, v, source.format(KEY=k.upper()))
    return Settings(**merged)
