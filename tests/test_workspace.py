"""Per-candidate workspaces over one read-only checkout: create, diff, cleanup, per method."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from assay.errors import UserError
from assay.sandbox.workspace import Workspace

GIT = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]


def _methods() -> list:
    out = [pytest.param("copy")]
    out.append(pytest.param("overlay", marks=pytest.mark.skipif(
        os.geteuid() != 0, reason="overlay mounts need root")))
    out.append(pytest.param("fuse", marks=pytest.mark.skipif(
        shutil.which("fuse-overlayfs") is None or not os.path.exists("/dev/fuse"),
        reason="fuse-overlayfs is not installed")))
    return out


@pytest.fixture
def repo(tmp_path):
    r = tmp_path / "repo"
    (r / "pkg").mkdir(parents=True)
    (r / "pkg" / "a.py").write_text("x = 1\n")
    (r / "pkg" / "b.py").write_text("y = 2\n")
    (r / "gone").mkdir()
    (r / "gone" / "c.txt").write_text("c\n")
    (r / "README").write_text("hello\n")
    (r / ".gitignore").write_text("*.log\n")
    os.symlink("README", r / "link")
    subprocess.run(["git", "init", "-q", str(r)], check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=r, check=True)
    subprocess.run([*GIT, "commit", "-qm", "base"], cwd=r, check=True)
    (r / "untracked.txt").write_text("not part of the repo\n")
    (r / "build.log").write_text("ignored\n")
    return r


def _snapshot(repo: Path) -> dict:
    return {p.relative_to(repo).as_posix(): (p.read_bytes() if p.is_file() and not p.is_symlink() else None)
            for p in sorted(repo.rglob("*"))}


@pytest.mark.parametrize("method", _methods())
def test_create_diff_cleanup(repo, method):
    before = _snapshot(repo)
    with Workspace.create(repo, method=method) as ws:
        assert ws.method == method
        root = ws.root
        assert (ws.path / "pkg" / "a.py").read_text() == "x = 1\n"
        assert os.readlink(ws.path / "link") == "README"
        assert ws.diff() == ""
        (ws.path / "pkg" / "a.py").write_text("x = 10\n")
        (ws.path / "README").unlink()
        shutil.rmtree(ws.path / "gone")
        (ws.path / "new").mkdir()
        (ws.path / "new" / "n.py").write_text("print('n')\n")
        (ws.path / "out.log").write_text("ignored\n")
        d = ws.diff()
        assert "+x = 10" in d and "-x = 1" in d
        assert "deleted file mode" in d and "a/README" in d and "a/gone/c.txt" in d
        assert "b/new/n.py" in d and "+print('n')" in d
        assert "out.log" not in d and "untracked.txt" not in d and "pkg/b.py" not in d
        # `git diff` works inside the workspace too
        inside = subprocess.run(["git", "diff", "--stat"], cwd=ws.path, capture_output=True, text=True)
        assert inside.returncode == 0 and "pkg/a.py" in inside.stdout
        # the patch applies to a fresh checkout and reproduces the edit
        with Workspace.create(repo, method=method) as other:
            other.apply(d)
            assert (other.path / "pkg" / "a.py").read_text() == "x = 10\n"
            assert not (other.path / "README").exists()
            assert other.diff() == d
    assert not root.exists()
    assert _snapshot(repo) == before  # the shared checkout was never written
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(root) not in mounts


@pytest.mark.parametrize("method", _methods())
def test_workspaces_are_independent(repo, method):
    with Workspace.create(repo, method=method) as a, Workspace.create(repo, method=method) as b:
        (a.path / "pkg" / "a.py").write_text("x = 'a'\n")
        assert (b.path / "pkg" / "a.py").read_text() == "x = 1\n"
        assert b.diff() == ""


@pytest.mark.parametrize("method", _methods())
def test_writes_to_the_workspace_git_do_not_reach_the_checkout(repo, method):
    head = (repo / ".git" / "HEAD").read_text()
    with Workspace.create(repo, method=method) as ws:
        (ws.path / ".git" / "HEAD").write_text("ref: refs/heads/evil\n")
        (ws.path / "pkg" / "a.py").write_text("x = 3\n")
        assert "+x = 3" in ws.diff()  # diff() uses its own git state, not the workspace's .git
    assert (repo / ".git" / "HEAD").read_text() == head
    assert subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                          capture_output=True, text=True).stdout == ""


def test_copy_holds_tracked_files_only(repo):
    with Workspace.create(repo, method="copy") as ws:
        assert not (ws.path / "untracked.txt").exists() and not (ws.path / "build.log").exists()
        assert (ws.path / "pkg" / "b.py").exists()


def test_cleanup_survives_read_only_dirs(repo):
    with Workspace.create(repo, method="copy") as ws:
        (ws.path / "locked").mkdir()
        (ws.path / "locked" / "f").write_text("x")
        os.chmod(ws.path / "locked", 0o500)
        root = ws.root
    assert not root.exists()


def test_auto_picks_a_method(repo):
    with Workspace.create(repo) as ws:
        assert ws.method in ("overlay", "fuse", "copy")
        if os.geteuid() == 0:
            assert ws.method == "overlay"


def test_errors_are_user_errors(tmp_path, repo):
    with pytest.raises(UserError, match="not a git checkout"):
        Workspace.create(tmp_path / "nothing-here")
    with pytest.raises(UserError, match="unknown workspace method"):
        Workspace.create(repo, method="worktree")
    with Workspace.create(repo, method="copy") as ws:
        with pytest.raises(UserError, match="does not apply"):
            ws.apply("--- a/nope\n+++ b/nope\n@@ -1 +1 @@\n-a\n+b\n")
