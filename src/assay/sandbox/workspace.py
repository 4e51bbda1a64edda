"""One cheap writable workspace per candidate over one read-only checkout of a repository.

Methods, tried in this order by "auto":
- "overlay": a kernel overlayfs mount (lower = the checkout, upper/work in a temp dir); needs
  root (or CAP_SYS_ADMIN). Creation is one mount(2) call, whatever the size of the repo.
- "fuse": the same with fuse-overlayfs, where it is installed and the kernel refuses.
- "copy": a copy of the git-tracked files (`git ls-files`) into a temp dir.

Never a `git worktree`: it would let untrusted code write the shared .git. Overlay
workspaces see the checkout's .git copy-on-write (writes land in the upper dir); copies get a
minimal .git of their own (HEAD, index, and the checkout's objects as alternates), so `git diff`
works inside every workspace. `Workspace.diff()` does not trust that .git: it stages the tree
into a private index and object directory kept outside the workspace, with the checkout's
objects as alternates, and diffs that against the base commit.

    with Workspace.create(repo_path, method="auto") as ws:
        ...  # run things in ws.path
        patch = ws.diff()
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import stat
import subprocess
import tempfile
import threading
from pathlib import Path

from assay.errors import UserError
from assay.sandbox.quota import bound_dir, unbound_dir

METHODS = ("auto", "overlay", "fuse", "copy")
_MNT_DETACH = 2
_libc = None
_tracked_cache: dict[tuple[str, str], list[str]] = {}
_cache_lock = threading.Lock()


class _Unavailable(Exception):
    """This method cannot work here; "auto" tries the next one."""


def _mount_overlay(lower: str, upper: str, work: str, target: str) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    opts = f"lowerdir={lower},upperdir={upper},workdir={work}".encode()
    if _libc.mount(b"overlay", target.encode(), b"overlay", 0, opts) != 0:
        err = ctypes.get_errno()
        raise _Unavailable(f"mount -t overlay failed: {os.strerror(err)}")


def _umount(target: str) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if _libc.umount2(target.encode(), _MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if shutil.which("fusermount3") or shutil.which("fusermount"):
            fm = shutil.which("fusermount3") or shutil.which("fusermount")
            if subprocess.run([fm, "-u", "-z", target], capture_output=True).returncode == 0:
                return
        raise OSError(err, f"cannot unmount {target}: {os.strerror(err)}")


def _git(args: list[str], cwd: str, env: dict | None = None, input: bytes | None = None) -> bytes:
    p = subprocess.run(["git", *args], cwd=cwd, env=env, input=input, capture_output=True)
    if p.returncode != 0:
        raise UserError(f"git {' '.join(args[:2])} failed in {cwd}: "
                        f"{p.stderr.decode(errors='replace').strip()[:300]}")
    return p.stdout


class Workspace:
    """A writable tree at `path` over the read-only checkout `repo`; removed by cleanup()."""

    def __init__(self, repo: Path, root: Path, path: Path, method: str, git_dir: Path,
                 base: str, mounted: bool):
        self.repo = repo
        self.root = root  # everything of this workspace lives under it
        self.path = path
        self.method = method
        self.git_dir = git_dir  # the checkout's .git (read only)
        self.base = base  # commit the diff is taken against
        self._mounted = mounted
        self._upper = root / "upper" if mounted else None
        self._closed = False
        self._bounded = False  # root is its own size-limited tmpfs

    # -- creation ------------------------------------------------------------------------

    @classmethod
    def create(cls, repo_path: str | Path, method: str = "auto", base: str | None = None,
               tmp_dir: str | Path | None = None, size_mb: int | None = 512) -> "Workspace":
        """`size_mb`: all the workspace may hold (its own tmpfs, when root); None: unbounded."""
        if method not in METHODS:
            raise UserError(f"unknown workspace method {method!r}; choose one of {', '.join(METHODS)}.")
        repo = Path(repo_path).resolve()
        git_dir = _git_dir(repo)
        base = base or _head(repo, git_dir)
        order = ["overlay", "fuse", "copy"] if method == "auto" else [method]
        errors = []
        for m in order:
            root = Path(tempfile.mkdtemp(prefix="assay-ws-", dir=tmp_dir or _default_tmp()))
            bounded = False
            try:
                bounded = size_mb is not None and bound_dir(root, size_mb)
                path, mounted = getattr(cls, f"_make_{m}")(repo, root, git_dir, base)
                (root / "git").mkdir()
                ws = cls(repo, root, path, m, git_dir, base, mounted)
                ws._bounded = bounded
                return ws
            except _Unavailable as e:
                errors.append(f"{m}: {e}")
                _drop_root(root, bounded)
            except BaseException:
                _drop_root(root, bounded)
                raise
        raise UserError(f"cannot create a workspace over {repo} ({'; '.join(errors)}); "
                        f"use method='copy' or run as root for overlay mounts.")

    @staticmethod
    def _make_overlay(repo: Path, root: Path, git_dir: Path, base: str):
        if os.geteuid() != 0:
            raise _Unavailable("overlay mounts need root")
        for d in ("upper", "work", "tree"):
            (root / d).mkdir()
        _mount_overlay(str(repo), str(root / "upper"), str(root / "work"), str(root / "tree"))
        return root / "tree", True

    @staticmethod
    def _make_fuse(repo: Path, root: Path, git_dir: Path, base: str):
        exe = shutil.which("fuse-overlayfs")
        if exe is None or not os.path.exists("/dev/fuse"):
            raise _Unavailable("fuse-overlayfs or /dev/fuse is missing")
        for d in ("upper", "work", "tree"):
            (root / d).mkdir()
        p = subprocess.run([exe, "-o", f"lowerdir={repo},upperdir={root / 'upper'},workdir={root / 'work'}",
                            str(root / "tree")], capture_output=True, text=True)
        if p.returncode != 0:
            raise _Unavailable(f"fuse-overlayfs failed: {p.stderr.strip()[:200]}")
        return root / "tree", True

    @staticmethod
    def _make_copy(repo: Path, root: Path, git_dir: Path, base: str):
        tree = root / "tree"
        tree.mkdir()
        made = {""}
        for mode, rel in _tracked_modes(repo, base):
            parent = os.path.dirname(rel)
            if parent not in made:
                os.makedirs(tree / parent, exist_ok=True)
                made.add(parent)
            src, dst = repo / rel, tree / rel
            try:
                if mode == "120000":
                    os.symlink(os.readlink(src), dst)
                elif mode in ("100644", "100755"):
                    shutil.copyfile(src, dst, follow_symlinks=False)
                    if mode == "100755":
                        os.chmod(dst, 0o755)
            except FileNotFoundError:
                pass  # tracked but deleted in the checkout: it stays deleted (submodules: skipped)
        # A minimal .git of its own: HEAD at the base commit, the checkout's index (stat data is
        # refreshed on first use) and the checkout's objects borrowed read-only as alternates.
        g = tree / ".git"
        (g / "objects" / "info").mkdir(parents=True)
        (g / "refs" / "heads").mkdir(parents=True)
        (g / "HEAD").write_text(base + "\n")
        (g / "config").write_text("[core]\n\trepositoryformatversion = 0\n\tbare = false\n")
        (g / "objects" / "info" / "alternates").write_text(str(git_dir / "objects") + "\n")
        if (git_dir / "index").exists():
            shutil.copyfile(git_dir / "index", g / "index")
        return tree, False

    # -- use -----------------------------------------------------------------------------

    def _private_git_env(self) -> dict:
        """git state outside the tree: the checkout's objects read-only, our index and objects."""
        private = self.root / "git"
        (private / "objects").mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(GIT_DIR=str(self.git_dir), GIT_WORK_TREE=str(self.path),
                   GIT_INDEX_FILE=str(private / "index"),
                   GIT_OBJECT_DIRECTORY=str(private / "objects"),
                   GIT_ALTERNATE_OBJECT_DIRECTORIES=str(self.git_dir / "objects"),
                   GIT_OPTIONAL_LOCKS="0", GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0")
        return env

    def diff(self) -> str:
        """The workspace's changes against the base commit as a unified diff (new files included).

        Overlay workspaces diff only what their upper dir holds, so untracked files of the
        checkout never leak into a candidate's patch; copies hold tracked files only."""
        env = self._private_git_env()
        cwd = str(self.path)
        _git(["read-tree", self.base], cwd, env)
        if self._upper is None:
            _git(["add", "-A", "--", "."], cwd, env)
        else:
            paths = _changed_paths(self.root / "upper", _tracked_sets(self.repo, self.base))
            p = subprocess.run(["git", "check-ignore", "-z", "--stdin"], cwd=cwd, env=env,
                               input="\0".join(paths).encode(), capture_output=True)
            ignored = set(p.stdout.decode("utf-8", "surrogateescape").split("\0"))
            paths = [x for x in paths if x not in ignored]
            if not paths:
                return ""
            _git(["add", "-A", "--pathspec-from-file=-", "--pathspec-file-nul"], cwd, env,
                 input=b"\0".join(":(literal)" .encode() + p.encode() for p in paths))
        return _git(["diff", "--cached", "--binary", "--no-color", "--no-ext-diff", self.base],
                    cwd, env).decode("utf-8", "replace")

    def apply(self, patch: str) -> None:
        """Apply a unified diff to the workspace (UserError naming the reason if it does not apply)."""
        env = self._private_git_env()
        p = subprocess.run(["git", "apply", "--whitespace=nowarn", "-"], cwd=str(self.path), env=env,
                           input=patch.encode(), capture_output=True)
        if p.returncode != 0:
            raise UserError(f"the patch does not apply: {p.stderr.decode(errors='replace').strip()[:300]}")

    def cleanup(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._mounted:
            _umount(str(self.path))
            self._mounted = False
        if self._bounded:
            unbound_dir(self.root)  # drops everything written at once
            self._bounded = False
        remove_tree(self.root)

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r}, method={self.method!r})"


def _git_dir(repo: Path) -> Path:
    """The checkout's .git directory (cached: the same for every candidate)."""
    key = (str(repo), "git_dir")
    with _cache_lock:
        hit = _tracked_cache.get(key)
    if hit is None:
        try:
            hit = Path(_git(["rev-parse", "--absolute-git-dir"], str(repo)).decode().strip())
            top = Path(_git(["rev-parse", "--show-toplevel"], str(repo)).decode().strip())
        except (UserError, FileNotFoundError, NotADirectoryError):
            raise UserError(f"{repo} is not a git checkout; pass the root of a git repository.") from None
        if top != repo:
            raise UserError(f"{repo} is inside the repository {top}; pass its root instead.")
        with _cache_lock:
            _tracked_cache[key] = hit
    return hit


def _head(repo: Path, git_dir: Path) -> str:
    """The commit HEAD points at, read from the files (no subprocess) where that is simple."""
    head = (git_dir / "HEAD").read_text().strip()
    if not head.startswith("ref: "):
        return head
    ref = head[5:]
    try:
        return (git_dir / ref).read_text().strip()
    except OSError:
        pass
    return _git(["rev-parse", "HEAD"], str(repo)).decode().strip()  # packed refs, worktrees


def _tracked_modes(repo: Path, base: str) -> list[tuple[str, str]]:
    """(git mode, path) of every tracked file, from `git ls-files -s` (cached like _tracked)."""
    key = (str(repo), base, "modes")
    with _cache_lock:
        hit = _tracked_cache.get(key)
    if hit is None:
        import git

        out = git.Repo(repo).git.ls_files("-s", "-z")
        hit = []
        for entry in out.split("\0"):
            if entry:
                meta, path = entry.split("\t", 1)
                hit.append((meta.split(" ", 1)[0], path))
        with _cache_lock:
            _tracked_cache[key] = hit
    return hit


def _default_tmp() -> str | None:
    """Where workspaces live: $ASSAY_WORKSPACE_DIR, else /dev/shm (tmpfs: no disk I/O) when
    writable, else the system temp dir."""
    env = os.environ.get("ASSAY_WORKSPACE_DIR")
    if env:
        return env
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK | os.X_OK):
        return "/dev/shm"
    return None


def _tracked(repo: Path, base: str) -> list[str]:
    """Tracked paths of the checkout (cached per checkout and commit: the same for every candidate)."""
    key = (str(repo), base)
    with _cache_lock:
        hit = _tracked_cache.get(key)
    if hit is None:
        import git

        out = git.Repo(repo).git.ls_files("-z")
        hit = [p for p in out.split("\0") if p]
        with _cache_lock:
            _tracked_cache[key] = hit
    return hit


def _tracked_sets(repo: Path, base: str) -> tuple[frozenset, frozenset]:
    """(tracked files, directories holding tracked files) of the checkout, cached."""
    key = (str(repo), base, "sets")
    with _cache_lock:
        hit = _tracked_cache.get(key)
    if hit is None:
        files = _tracked(repo, base)
        dirs = {os.path.dirname(p) for p in files}
        for d in list(dirs):
            while d:
                d = os.path.dirname(d)
                dirs.add(d)
        hit = (frozenset(files), frozenset(dirs))
        with _cache_lock:
            _tracked_cache[key] = hit
    return hit


def _changed_paths(upper: Path, tracked: tuple[frozenset, frozenset]) -> list[str]:
    """Workspace paths an overlay's upper dir says were written or deleted.

    Whiteouts (kernel: 0/0 character devices; fuse-overlayfs: `.wh.<name>` files) mark
    deletions and count only where they hide something tracked; opaque or new directories
    count as a whole."""
    files, dirs = tracked
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(upper):
        rel_dir = os.path.relpath(dirpath, upper)
        rel_dir = "" if rel_dir == "." else rel_dir
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.join(rel_dir, name)
            if name == ".wh..wh..opq":
                out.append(rel_dir or ".")
                continue
            whiteout = name.startswith(".wh.")
            if whiteout:
                rel = os.path.join(rel_dir, name[4:])
            else:
                try:
                    st = os.lstat(full)
                except FileNotFoundError:
                    continue
                whiteout = stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
                if stat.S_ISDIR(st.st_mode) and not whiteout:
                    if rel not in dirs or _opaque(full):
                        out.append(rel)
                    continue
            if whiteout and rel not in files and rel not in dirs:
                continue  # it hid an untracked file of the checkout
            out.append(rel)
    return out


def _opaque(path: str) -> bool:
    for attr in ("trusted.overlay.opaque", "user.fuseoverlayfs.opaque"):
        try:
            if os.getxattr(path, attr, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def _drop_root(root: Path, bounded: bool) -> None:
    try:
        if bounded:
            unbound_dir(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def remove_tree(path: str | Path) -> None:
    """shutil.rmtree for a tree untrusted code wrote: directories it left without read or write
    permission (its files are this user's) are opened, which rmtree alone cannot do unless root."""
    shutil.rmtree(path, onerror=_force_remove)


def _force_remove(func, path, exc_info) -> None:
    """rmtree error hook: untrusted code may have left read-only dirs; make them writable."""
    parent = os.path.dirname(path)
    try:
        os.chmod(parent, 0o700)
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, 0o700)
            shutil.rmtree(path, onerror=_force_remove)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass
