"""Run directory: atomic JSON writes, per-task stage files, resume.

Layout (DESIGN.md): runs/<run_id>/run.json, runs/<run_id>/<task>/10_context.json,
20_candidates/<id>.json, 30_tests.json, 40_evidence.json, 50_selection.json,
result.py|result.patch, trajectories/<id>.jsonl; batch runs append to preds.jsonl.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable

from assay.errors import UserError

_append_lock = threading.Lock()
# mkstemp makes its file 0600; a result is written with the mode any new file gets (0644 under
# the usual umask). Read once, at import: os.umask can only be read by setting it.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def safe_name(name: str) -> str:
    """A task or candidate id as a file name (HumanEval/0 -> HumanEval__0)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name.replace("/", "__"))


@contextmanager
def _writing(path: Path):
    """A place that cannot be written (no such directory, read-only, disk full) is the user's to
    fix: one sentence naming it, not a traceback."""
    try:
        yield
    except OSError as e:
        raise UserError(f"cannot write {path} ({e.strerror or e}); choose a place assay can write to.") from None


def atomic_write_text(path: Path, text: str) -> None:
    with _writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o666 & ~_UMASK)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def write_json(path: Path, obj: Any) -> None:
    if hasattr(obj, "model_dump"):
        obj = obj.model_dump(mode="json")
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=False, default=str) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line; a single write() of one line, under a process-wide lock."""
    line = json.dumps(record, default=str) + "\n"
    with _writing(path), _append_lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(line)


def read_jsonl(path: Path) -> Iterable[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class RunStore:
    """One directory per run; re-running the same command resumes from finished stages."""

    def __init__(self, root: Path | str, run_id: str) -> None:
        self.root = Path(root)
        self.run_id = run_id
        self.dir = self.root / safe_name(run_id)
        with _writing(self.dir):
            self.dir.mkdir(parents=True, exist_ok=True)

    def write_run_info(self, info: dict[str, Any]) -> None:
        path = self.dir / "run.json"
        if not path.exists():
            write_json(path, info)

    def task_dir(self, task_id: str) -> Path:
        d = self.dir / safe_name(task_id)
        with _writing(d):
            d.mkdir(parents=True, exist_ok=True)
        return d

    def stage_path(self, task_id: str, name: str) -> Path:
        return self.task_dir(task_id) / name

    def has(self, task_id: str, name: str) -> bool:
        return self.stage_path(task_id, name).exists()

    def save(self, task_id: str, name: str, obj: Any) -> Path:
        path = self.stage_path(task_id, name)
        write_json(path, obj)
        return path

    def load(self, task_id: str, name: str) -> Any:
        return read_json(self.stage_path(task_id, name))

    def trajectory_path(self, task_id: str, trajectory_id: str) -> Path:
        return self.task_dir(task_id) / "trajectories" / f"{safe_name(trajectory_id)}.jsonl"

    def record_call(self, task_id: str, trajectory_id: str, record: dict[str, Any]) -> None:
        append_jsonl(self.trajectory_path(task_id, trajectory_id), record)

    def save_candidates(self, task_id: str, candidates: list[Any]) -> None:
        for c in candidates:
            write_json(self.task_dir(task_id) / "20_candidates" / f"{safe_name(c.id)}.json", c)

    def load_candidates(self, task_id: str) -> list[dict[str, Any]] | None:
        d = self.task_dir(task_id) / "20_candidates"
        done = self.task_dir(task_id) / "20_candidates.done"
        if not done.exists():
            return None
        return [read_json(p) for p in sorted(d.glob("*.json"))]

    def mark_candidates_done(self, task_id: str) -> None:
        atomic_write_text(self.task_dir(task_id) / "20_candidates.done", "")

    def append_pred(self, record: dict[str, Any]) -> None:
        append_jsonl(self.dir / "preds.jsonl", record)
