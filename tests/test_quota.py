"""Size-bounded workspaces (sandbox/quota.py) and their use by repo workspaces."""

from __future__ import annotations

import errno
import logging
import os
import subprocess
from pathlib import Path

import pytest

from assay.sandbox import quota
from assay.sandbox.quota import bounded_workspace

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="tmpfs mounts need root")


def _mounted(path: Path) -> bool:
    return any(line.split()[1] == str(path) for line in Path("/proc/self/mounts").read_text().splitlines())


def _fill(d: Path, mb: int) -> int:
    """MiB written into `d` (1 MiB files) before ENOSPC, at most `mb`."""
    for i in range(mb):
        try:
            (d / f"f{i}").write_bytes(b"\1" * (1 << 20))
        except OSError as e:
            assert e.errno == errno.ENOSPC
            return i
    return mb


@root_only
def test_bounded_workspace_is_a_sized_tmpfs_removed_on_exit():
    with bounded_workspace(8, prefix="assay-qtest-") as ws:
        assert _mounted(ws)
        assert _fill(ws, 64) <= 8
    assert not _mounted(ws) and not ws.exists()


@root_only
def test_bounded_workspace_cleans_up_after_an_exception():
    with pytest.raises(RuntimeError):
        with bounded_workspace(8) as ws:
            (ws / "x").write_text("x")
            raise RuntimeError("boom")
    assert not _mounted(ws) and not ws.exists()


def test_falls_back_to_a_plain_dir_and_warns_once(monkeypatch, caplog):
    monkeypatch.setattr(quota.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(quota, "_warned", type(quota._warned)())
    with caplog.at_level(logging.WARNING, logger="assay.sandbox.quota"):
        for _ in range(2):
            with bounded_workspace(8) as ws:
                assert ws.is_dir() and not _mounted(ws)
                assert _fill(ws, 12) == 12  # unbounded
            assert not ws.exists()
    assert len(caplog.records) == 1 and "not bounded" in caplog.records[0].message


@root_only
@pytest.mark.parametrize("method", ["overlay", "copy"])
def test_repo_workspace_writes_are_bounded(tmp_path, method):
    from assay.sandbox.workspace import Workspace

    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "a.py").write_text("x = 1\n")
    subprocess.run(["git", "-C", str(repo), "add", "a.py"], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t",
                    "commit", "-qm", "init"], check=True)
    ws = Workspace.create(repo, method=method, size_mb=8)
    root = ws.root
    try:
        assert _mounted(root)
        assert _fill(ws.path, 64) <= 8
    finally:
        ws.cleanup()
    assert not _mounted(root) and not root.exists()
    assert not [m for m in Path("/proc/self/mounts").read_text().splitlines() if str(root) in m]
