"""Local backend: bubblewrap + rlimits + (where writable) a fresh cgroup per run.

The command sees a read-only system (/usr, /lib*, /bin, /sbin, /etc with secrets masked, and
exactly the interpreter prefix), the workspace as the only writable path (at /workspace, also
its cwd and HOME), a private size-limited /tmp, fresh /dev and /proc, no network, new pid/ipc/
uts/cgroup namespaces, a cleared environment and no capabilities. bwrap kills the whole pid
namespace when the command exits or when we kill bwrap, so setsid() grandchildren die too.

Uids. As root we start bwrap privileged (it can then bind paths that an unprivileged uid could
not even traverse, e.g. the interpreter under /root/.pyenv or a pytest tmp dir) and drop to a
per-slot uid (61000 + slot) with setpriv inside the sandbox, after the mounts are made: the
kernel uid of the command is unprivileged, RLIMIT_NPROC is a true per-sandbox limit, and
concurrent sandboxes cannot touch each other. Slots are claimed with flock, so several assay
processes share the range safely. Not root: bwrap maps the user to uid 65534 in a new user
namespace (nested user namespaces disabled).

Limits without a preexec_fn (which is unsafe with threads and forces a slow fork): bwrap is
started with --info-fd/--block-fd; once it reports the host pid of the namespace's init and
waits, we set that process's rlimits (prlimit) and move it into this run's memory and pids
cgroups, then let it start the command, which inherits both. bwrap takes EOF on --block-fd as
go, so a supervisor killed in between would leave the command to run without limits: the
--seccomp program, which bwrap reads next and without which it will not start the command, is
written only after the limits are set. Where cgroups are not writable, memory falls back to
RLIMIT_AS and processes to RLIMIT_NPROC. The interpreter's site-packages are hidden (stdlib
only, like the docker image) unless site_packages=True.

Kernel mode needs more: `ro_paths` binds extra host paths read-only at the same path (a
virtualenv's prefix and site-packages), `python_path` makes python() return that interpreter
(e.g. the venv's sys.executable, which finds its pyvenv.cfg next to it), and `dev_paths` binds
device nodes (/dev/nvidia*) with --dev-bind-try. CUDA reserves far more address space than it
uses, so with dev_paths there is no RLIMIT_AS: memory is the cgroup's limit alone.
"""

from __future__ import annotations

import errno
import fcntl
import itertools
import json
import logging
import os
import platform
import resource
import select
import shutil
import signal
import struct
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from assay.errors import UserError
from assay.sandbox.base import Limits, SandboxUnavailable
from assay.sandbox.process import run_process
from assay.types import ExecResult

log = logging.getLogger(__name__)

WORKDIR = "/workspace"  # where the workspace appears inside (same as the docker backend)
UID_BASE = 61000
SLOTS = 512
SLOT_LOCK_DIR = Path("/run/assay-sandbox") if os.path.isdir("/run") else Path("/tmp/assay-sandbox")
CGROUP_PREFIX = "assay-"
# bwrap's init (pid 1 of the namespace) lives in the pids cgroup too.
_BWRAP_PROCS = 1
_ETC_MASK_DIRS = ("/etc/ssh", "/etc/ssl/private", "/etc/sudoers.d")
_ETC_MASK_FILES = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/sudoers")
UNAVAILABLE = ("bubblewrap (bwrap) is not installed; install it with `apt-get install bubblewrap`, "
               "or pass --unsafe-no-sandbox to run model-written code without isolation")

_seq = itertools.count()


# --------------------------------------------------------------------------- cgroups


def _own_cgroups() -> dict[str, str]:
    """controller (or "" for the v2 hierarchy) -> this process's cgroup path."""
    out: dict[str, str] = {}
    try:
        text = Path("/proc/self/cgroup").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        _, ctrls, path = line.split(":", 2)
        for c in ctrls.split(",") if ctrls else [""]:
            out[c] = path
    return out


def _writable_dir(path: Path) -> bool:
    """Can we create (and remove) a child cgroup under `path`?"""
    probe = path / f"{CGROUP_PREFIX}probe-{os.getpid()}-{next(_seq)}"
    try:
        probe.mkdir()
    except OSError:
        return False
    try:
        probe.rmdir()
    except OSError as e:
        log.warning("could not remove probe cgroup %s: %s", probe, e)
    return True


@dataclass(frozen=True)
class CgroupLayout:
    """Where per-run cgroups go: v1 memory/pids parents, or one v2 parent."""

    memory: Path | None = None  # v1 memory parent, or v2 parent with the memory controller
    pids: Path | None = None
    v2: bool = False

    @property
    def parents(self) -> list[Path]:
        return sorted({p for p in (self.memory, self.pids) if p is not None})

    @staticmethod
    def detect(root: Path = Path("/sys/fs/cgroup")) -> "CgroupLayout":
        own = _own_cgroups()
        if (root / "cgroup.controllers").exists():  # pure v2
            parent = root / own.get("", "/").lstrip("/")
            try:
                enabled = (parent / "cgroup.subtree_control").read_text().split()
            except OSError:
                return CgroupLayout()
            # A v2 cgroup with member processes cannot enable controllers for its children
            # (the no-internal-processes rule), so only use what is already delegated.
            if not _writable_dir(parent):
                return CgroupLayout()
            layout = CgroupLayout(memory=parent if "memory" in enabled else None,
                                  pids=parent if "pids" in enabled else None, v2=True)
            layout.remove_stale()
            return layout
        found: dict[str, Path] = {}
        for ctrl in ("memory", "pids"):
            parent = root / ctrl / own.get(ctrl, "/").lstrip("/")
            if (parent / "cgroup.procs").exists() and _writable_dir(parent):
                found[ctrl] = parent
        layout = CgroupLayout(memory=found.get("memory"), pids=found.get("pids"))
        layout.remove_stale()
        return layout

    def remove_stale(self) -> None:
        """Remove run cgroups left by assay processes that died mid-run (assay-<pid>-<n>)."""
        for parent in self.parents:
            for d in parent.glob(f"{CGROUP_PREFIX}*-*"):
                pid = d.name[len(CGROUP_PREFIX):].split("-")[0]
                if pid.isdigit() and not _alive(int(pid)):
                    _kill_and_rmdir(d)


class _RunCgroups:
    """The cgroup(s) of one run: created with limits, joined by the child, read, removed."""

    def __init__(self, layout: CgroupLayout, limits: Limits):
        self.layout = layout
        name = f"{CGROUP_PREFIX}{os.getpid()}-{next(_seq)}"
        self.dirs: list[Path] = []
        self.memory = self.pids = None
        try:
            for parent in layout.parents:
                d = parent / name
                d.mkdir()
                self.dirs.append(d)
                if parent == layout.memory:
                    self.memory = d
                if parent == layout.pids:
                    self.pids = d
            mem = str(limits.memory_mb * 1024 * 1024)
            pids = str(limits.pids + _BWRAP_PROCS)
            if layout.v2:
                if self.memory:
                    _write(self.memory / "memory.max", mem)
                    _write_if_exists(self.memory / "memory.swap.max", "0")
                if self.pids:
                    _write(self.pids / "pids.max", pids)
            else:
                if self.memory:
                    _write(self.memory / "memory.limit_in_bytes", mem)
                    _write_if_exists(self.memory / "memory.memsw.limit_in_bytes", mem)
                if self.pids:
                    _write(self.pids / "pids.max", pids)
        except BaseException:
            self.remove()
            raise

    def add(self, pid: int) -> None:
        """Move `pid` (bwrap's sandbox init, before it starts the command) into every cgroup."""
        for d in self.dirs:
            _write(d / "cgroup.procs", str(pid))

    def memory_killed(self) -> bool:
        if self.memory is None:
            return False
        if self.layout.v2:
            return _stat(self.memory / "memory.events", "oom_kill") > 0
        oom = _stat(self.memory / "memory.oom_control", "oom_kill")
        return oom > 0

    def pids_hit(self) -> bool:
        if self.pids is None:
            return False
        return _stat(self.pids / "pids.events", "max") > 0

    def remove(self) -> None:
        for d in self.dirs:
            _kill_and_rmdir(d)
        self.dirs = []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _write_if_exists(path: Path, value: str) -> None:
    if path.exists():
        _write(path, value)


def _stat(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            k, _, v = line.partition(" ")
            if k == key:
                return int(v)
    except OSError:
        pass
    return 0


def _kill_and_rmdir(d: Path, patience_s: float = 2.0) -> None:
    """Kill whatever is still in cgroup `d` (normally nothing: the pid namespace is gone) and
    remove it; v1 refuses rmdir while tasks remain, and exiting tasks linger for a moment."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            pids = [int(p) for p in (d / "cgroup.procs").read_text().split()]
        except FileNotFoundError:
            return
        except OSError:
            pids = []
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            d.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if time.monotonic() > deadline:
                log.warning("could not remove cgroup %s: %s", d, e)
                return
        time.sleep(0.001)


# --------------------------------------------------------------------------- seccomp


def _no_userns_filter() -> bytes | None:
    """A classic-BPF seccomp program (x86_64) that refuses new user namespaces: unshare/clone
    with CLONE_NEWUSER get EPERM, clone3 (flags out of reach) gets ENOSYS so libc falls back
    to clone, and x32 or 32-bit syscalls get EPERM. As root the sandbox makes no user
    namespace of its own, so this is what keeps the command from getting capabilities in one.
    """
    if platform.machine() != "x86_64":
        return None
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    allow, eperm, enosys = 0x7FFF0000, 0x00050000 | errno.EPERM, 0x00050000 | errno.ENOSYS
    prog = [
        (ld, 0, 0, 4),                 # 0: A = arch
        (jeq, 1, 0, 0xC000003E),       # 1: x86_64 -> 3
        (ret, 0, 0, eperm),            # 2: int 0x80 and friends
        (ld, 0, 0, 0),                 # 3: A = syscall number
        (jge, 7, 0, 0x40000000),       # 4: x32 -> 12
        (jeq, 3, 0, 272),              # 5: unshare -> 9
        (jeq, 2, 0, 56),               # 6: clone -> 9
        (jeq, 5, 0, 435),              # 7: clone3 -> 13
        (ret, 0, 0, allow),            # 8
        (ld, 0, 0, 16),                # 9: A = low half of the first argument (flags)
        (jset, 1, 0, 0x10000000),      # 10: CLONE_NEWUSER -> 12
        (ret, 0, 0, allow),            # 11
        (ret, 0, 0, eperm),            # 12
        (ret, 0, 0, enosys),           # 13
    ]
    return b"".join(struct.pack("<HBBI", *ins) for ins in prog)


_SECCOMP = _no_userns_filter()
# Where that filter is not wanted or not made: one instruction, allow everything. Some program is
# always passed, because it is also the go signal (module docstring).
_ALLOW_ALL = struct.pack("<HBBI", 0x06, 0, 0, 0x7FFF0000)


# --------------------------------------------------------------------------- uid slots


class _Slots:
    """Per-sandbox uids: UID_BASE + slot, unique across threads and (by flock) processes."""

    def __init__(self, base: int = UID_BASE, count: int = SLOTS, lock_dir: Path = SLOT_LOCK_DIR):
        self.base, self.count, self.lock_dir = base, count, lock_dir
        self._lock = threading.Lock()
        self._held: set[int] = set()
        self._next = 0

    def acquire(self) -> tuple[int, int]:
        """(uid, lock fd); the fd holds the slot until release()."""
        self.lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._lock:
            for i in range(self.count):
                slot = (self._next + i) % self.count
                if slot in self._held:
                    continue
                fd = os.open(self.lock_dir / f"{slot}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                self._held.add(slot)
                self._next = (slot + 1) % self.count
                return self.base + slot, fd
        raise RuntimeError(f"all {self.count} sandbox uid slots are busy")

    def release(self, uid: int, fd: int) -> None:
        with self._lock:
            self._held.discard(uid - self.base)
        os.close(fd)  # drops the flock


_slots = _Slots()


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    """chown -R that never follows the symlinks a sandboxed command may have left."""
    os.chown(root, uid, gid, follow_symlinks=False)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            try:
                st = os.lstat(p)
                if st.st_uid != uid or st.st_gid != gid:
                    os.chown(p, uid, gid, follow_symlinks=False)
            except FileNotFoundError:
                continue


# --------------------------------------------------------------------------- sandbox


class LocalSandbox:
    name = "local"

    def __init__(self, *, cgroups: bool = True, site_packages: bool = False, self_check: bool = True,
                 ro_paths: list[str] | tuple[str, ...] = (), dev_paths: list[str] | tuple[str, ...] = (),
                 python_path: str | None = None):
        """`site_packages=False` hides the interpreter's site-packages inside: sandboxed code
        gets the stdlib only (as in the docker image), and starts faster. `self_check` runs
        `true` once so that a machine where bwrap cannot work fails here, not per candidate.
        `ro_paths`: host paths bound read-only at the same path (missing ones are skipped).
        `dev_paths`: device nodes bound read-write where they exist (then no RLIMIT_AS).
        `python_path`: what python() returns (unresolved, so a venv's interpreter stays a venv);
        it must be visible inside, e.g. under one of `ro_paths`."""
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise SandboxUnavailable(UNAVAILABLE)
        self._bwrap = bwrap
        self._root = os.geteuid() == 0
        self._setpriv = None
        if self._root:
            self._setpriv = shutil.which("setpriv") or ("/usr/bin/setpriv" if os.path.exists("/usr/bin/setpriv") else None)
            if self._setpriv is None:
                raise SandboxUnavailable("setpriv (util-linux) is missing, and running as root the local "
                                         "sandbox needs it to drop to an unprivileged uid; install util-linux, "
                                         "or use --sandbox docker")
        self._prefix = os.path.realpath(sys.base_prefix)
        self._python = python_path or os.path.realpath(os.path.join(sys.base_prefix, "bin", "python3"))
        self.dev_paths = [d for d in dev_paths if os.path.exists(d)]
        self.cgroups = CgroupLayout.detect() if cgroups else CgroupLayout()
        if self.dev_paths and self.cgroups.memory is None:
            log.warning("device nodes are bound but no memory cgroup is writable here: sandboxed runs "
                        "have no memory limit (RLIMIT_AS would break CUDA)")
        self._mounts = self._system_mounts()
        if not site_packages:
            hide = {sysconfig.get_path(k, "posix_prefix", vars={"base": self._prefix, "platbase": self._prefix})
                    for k in ("purelib", "platlib")}
            for d in sorted(hide):
                if os.path.isdir(d):
                    self._mounts += ["--tmpfs", d]
        self._extra = self._ro_mounts(ro_paths)  # after /tmp and /dev: may lie under them
        bins = [os.path.dirname(python_path)] if python_path else []
        self._path = ":".join(dict.fromkeys(bins + [os.path.join(self._prefix, "bin"), "/usr/local/bin", "/usr/bin", "/bin"]))
        if self_check:
            self._check()

    def _check(self) -> None:
        with tempfile.TemporaryDirectory(prefix="assay-sandbox-check-") as d:
            res = self.run([self._python, "-S", "-c", "pass"], Path(d), Limits(wall_s=30))
        if res.exit_code != 0:
            why = (res.stderr.strip().splitlines() or [f"exit code {res.exit_code}"])[-1]
            raise SandboxUnavailable(f"bubblewrap cannot run a sandbox here ({why}); allow user namespaces "
                                     f"(or run as root), use --sandbox docker, or pass --unsafe-no-sandbox")

    # -- protocol -------------------------------------------------------------------------

    def python(self) -> str:
        return self._python

    def close(self) -> None:
        pass

    def run(self, cmd: list[str], workspace: Path, limits: Limits, stdin: bytes | None = None) -> ExecResult:
        """Thread-safe; concurrent runs need distinct workspaces (each is handed to its run's uid)."""
        given = Path(workspace)
        if not given.is_dir():
            raise UserError(f"sandbox workspace {given} is not a directory; create it first.")
        if not cmd:
            raise ValueError("empty command")
        workspace = given.resolve()
        cmd = [self._inside(self._inside(a, given), workspace) for a in cmd]
        slot = _slots.acquire() if self._root else None
        cg = None
        owner = workspace.stat()
        try:
            if slot is not None:
                _chown_tree(workspace, slot[0], slot[0])
            if self.cgroups.parents:
                cg = _RunCgroups(self.cgroups, limits)
            rlimits = self._rlimits(limits, cg, slot is not None)
            info_r, info_w = os.pipe()
            block_r, block_w = os.pipe()
            # The seccomp program is the real go signal (module docstring): written in release().
            seccomp_r, seccomp_w = os.pipe()
            program = _SECCOMP if slot is not None and _SECCOMP is not None else _ALLOW_ALL
            fds = {info_r, info_w, block_r, block_w, seccomp_r, seccomp_w}

            def release(proc) -> None:
                # bwrap has made the namespaces and waits on block_r; what the command (its
                # child, not yet forked) inherits is set now, without a preexec_fn in our fork.
                for fd in (info_w, block_r, seccomp_r):
                    os.close(fd)
                    fds.discard(fd)
                pid = _read_child_pid(info_r, limits.wall_s)
                if pid is None:
                    return  # bwrap failed (its stderr says why) or hangs (the deadline kills it)
                try:
                    for res_id, value in rlimits:
                        resource.prlimit(pid, res_id, (value, value))
                    if cg is not None:
                        cg.add(pid)
                except ProcessLookupError:
                    return  # bwrap died meanwhile; never release a sandbox whose limits failed
                try:
                    os.write(seccomp_w, program)  # 112 bytes at most: fits the pipe buffer
                    os.close(seccomp_w)
                    fds.discard(seccomp_w)
                    os.write(block_w, b"1")
                except BrokenPipeError:
                    pass

            try:
                res = run_process(
                    self._argv(cmd, workspace, limits, slot[0] if slot else None, info_w, block_r, seccomp_r),
                    cwd="/",
                    env={"PATH": self._path, "LANG": "C.UTF-8"},
                    wall_s=limits.wall_s,
                    output_bytes=limits.output_bytes,
                    stdin=stdin,
                    pass_fds=(info_w, block_r, seccomp_r),
                    on_spawn=release,
                )
            finally:
                for fd in fds:
                    os.close(fd)
            return self._reason(res, cg)
        finally:
            try:
                if cg is not None:
                    cg.remove()  # waits until every process in it is gone
                if slot is not None:
                    if cg is None or cg.pids is None:
                        _kill_uid(slot[0])
                    # Hand the workspace (and what the command wrote) back to its owner.
                    _chown_tree(workspace, owner.st_uid, owner.st_gid)
            finally:
                if slot is not None:
                    _slots.release(*slot)

    @staticmethod
    def _reason(res: ExecResult, cg: "_RunCgroups | None") -> ExecResult:
        """Name the limit that stopped the command, where that can be told."""
        if res.killed_reason is not None or res.exit_code == 0:
            return res
        reason = None
        if cg is not None and cg.memory_killed():
            reason = "memory"
        elif cg is not None and cg.pids_hit():
            reason = "pids"
        elif (cg is None or cg.memory is None) and res.stderr.rstrip().endswith("MemoryError"):
            reason = "memory"  # RLIMIT_AS: Python's allocation failed
        return res.model_copy(update={"killed_reason": reason}) if reason else res

    # -- argv -----------------------------------------------------------------------------

    def _inside(self, arg: str, workspace: Path) -> str:
        """Host paths into the workspace name the same files at WORKDIR inside."""
        ws = str(workspace)
        if arg == ws:
            return WORKDIR
        if arg.startswith(ws + "/"):
            return WORKDIR + arg[len(ws):]
        return arg

    def _system_mounts(self) -> list[str]:
        args: list[str] = ["--ro-bind", "/usr", "/usr"]
        bound = ["/usr"]
        for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(top):
                args += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                args += ["--ro-bind", top, top]
                bound.append(top)
        args += ["--ro-bind", "/etc", "/etc"]
        for d in _ETC_MASK_DIRS:
            if os.path.isdir(d) and not os.path.islink(d):
                args += ["--tmpfs", d]
        for f in _ETC_MASK_FILES:
            if os.path.isfile(f) and not os.path.islink(f):
                args += ["--ro-bind", "/dev/null", f]
        if not _covered(self._prefix, bound):
            args += _ro_bind_with_parents(self._prefix)
        self._bound = bound + [self._prefix]
        return args

    def _ro_mounts(self, paths) -> list[str]:
        """Read-only binds for `ro_paths`, each at its host path, skipping what is already visible.
        Symlinks are resolved (the target is what gets bound) and missing paths are skipped.
        The home directory, or a directory holding it, is refused: every file there (.netrc,
        keys, tokens) would be readable by sandboxed code, and what it prints reaches the model."""
        args: list[str] = []
        for p in dict.fromkeys(os.path.realpath(p) for p in paths):
            if not os.path.exists(p) or _covered(p, self._bound):
                continue
            if holds_home_directory(p):
                raise SandboxUnavailable(
                    f"refusing to show {p} to sandboxed code: it is or holds the home directory, every "
                    f"file of which would be readable there; install what the sandbox needs (a CUDA "
                    f"toolkit, a compiler, a Python environment) outside the home directory or in a "
                    f"folder of its own under it")
            args += _ro_bind_with_parents(p)
            self._bound.append(p)
        return args

    def _rlimits(self, limits: Limits, cg: "_RunCgroups | None", slot_uid: bool) -> list[tuple[int, int]]:
        cpu = limits.cpu_s if limits.cpu_s is not None else limits.wall_s + 1
        out = [(resource.RLIMIT_CPU, int(cpu) + 1), (resource.RLIMIT_FSIZE, limits.fsize_mb << 20),
               (resource.RLIMIT_CORE, 0)]
        if (cg is None or cg.memory is None) and not self.dev_paths:
            out.append((resource.RLIMIT_AS, limits.memory_mb << 20))
        if slot_uid:
            # The slot uid owns only this sandbox's processes. One above the cgroup's limit,
            # so that where both exist the cgroup trips first and the result says "pids".
            out.append((resource.RLIMIT_NPROC, limits.pids + (1 if cg is not None and cg.pids is not None else 0)))
        elif cg is None or cg.pids is None:
            out.append((resource.RLIMIT_NPROC, limits.pids + _user_process_count()))
        return out

    def _argv(self, cmd: list[str], workspace: Path, limits: Limits, uid: int | None,
              info_fd: int | None = None, block_fd: int | None = None,
              seccomp_fd: int | None = None) -> list[str]:
        a = [self._bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
             "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--hostname", "sandbox"]
        if info_fd is not None and block_fd is not None:
            a += ["--info-fd", str(info_fd), "--block-fd", str(block_fd)]
        if seccomp_fd is not None:
            a += ["--seccomp", str(seccomp_fd)]
        if uid is None:
            a += ["--unshare-user", "--uid", "65534", "--gid", "65534", "--disable-userns"]
        a += self._mounts
        a += ["--bind", str(workspace), WORKDIR, "--chdir", WORKDIR,
              "--proc", "/proc", "--dev", "/dev",
              "--perms", "1777", "--size", str(limits.fsize_mb * 1024 * 1024), "--tmpfs", "/tmp",
              # multiprocessing needs a writable /dev/shm (POSIX semaphores)
              "--perms", "1777", "--size", str(limits.fsize_mb * 1024 * 1024), "--tmpfs", "/dev/shm",
              *self._extra, *[x for d in self.dev_paths for x in ("--dev-bind-try", d, d)],
              "--clearenv", "--setenv", "PATH", self._path, "--setenv", "HOME", WORKDIR,
              "--setenv", "LANG", "C.UTF-8"]
        for k, v in limits.env.items():
            a += ["--setenv", k, v]
        if uid is not None:
            # Privileged bwrap keeps every capability unless told. Keep what setpriv needs to
            # become `uid` (it then clears all sets, bounding set included) and to enter the
            # workspace, which belongs to `uid` and may be 0700.
            a += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                  "--cap-add", "CAP_SETPCAP", "--cap-add", "CAP_DAC_READ_SEARCH", "--",
                  self._setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                  "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
        return a + ["--"] + cmd


def holds_home_directory(path: str | os.PathLike) -> bool:
    """Whether `path` is the home directory (links resolved) or a directory above it."""
    home = os.path.expanduser("~")
    if home == "~":  # no HOME and no passwd entry: no home directory to protect
        return False
    return _covered(os.path.realpath(home), [os.path.realpath(path)])


def _covered(path: str, bound: list[str]) -> bool:
    return any(path == b or path.startswith(b.rstrip("/") + "/") for b in bound)


def _ro_bind_with_parents(path: str) -> list[str]:
    # bwrap would create the missing parents (e.g. /root) 0700: unsearchable by the slot uid.
    # Binds as root happen before the uid drop, but the uid still traverses these parents, and
    # reads the bound files with its own permissions (they must be o+r, as a venv normally is).
    parts = Path(path).parts[1:-1]
    args: list[str] = []
    for i in range(1, len(parts) + 1):
        args += ["--perms", "0755", "--dir", "/" + "/".join(parts[:i])]
    return args + ["--ro-bind", path, path]


def _kill_uid(uid: int, patience_s: float = 2.0) -> None:
    """Without a pids cgroup: make sure nothing of a slot uid outlives its run (after a
    timeout the namespace's processes die asynchronously, a moment after bwrap)."""
    deadline = time.monotonic() + patience_s
    while True:
        left = []
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    if entry.stat().st_uid == uid:
                        left.append(int(entry.name))
                except OSError:
                    continue
        if not left:
            return
        if time.monotonic() > deadline:
            log.warning("processes of sandbox uid %d survive: %s", uid, left)
            return
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.005)


def _read_child_pid(fd: int, timeout_s: float) -> int | None:
    """bwrap's --info-fd JSON names the host pid of the sandbox's init; None if bwrap died."""
    buf = b""
    deadline = time.monotonic() + timeout_s
    while True:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        buf += chunk
        try:
            return int(json.loads(buf)["child-pid"])
        except ValueError:
            continue  # not all of it yet


def _user_process_count() -> int:
    """Processes the current user already runs (RLIMIT_NPROC counts them all)."""
    uid = os.getuid()
    n = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    n += 1
            except OSError:
                continue
    return n
