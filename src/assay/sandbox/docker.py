"""Docker backend: a warm pool of locked-down containers, each running a small job agent.

Each container runs, under docker-init (which reaps orphans), a shell agent as root with only
CAP_SETUID/SETGID/KILL, with no network, a read-only root, tmpfs /tmp and /workspace,
memory/pids/CPU caps and no-new-privileges. A run checks one container out of the pool and
sends the agent a job over the attached stdin (a header line, then a tar of the caller's
workspace, the command's stdin and its argv/env): no `docker exec` and no put_archive per
run. The agent runs the command as the `sandbox` user (uid 1000, no capabilities) with a
cleared environment and rlimits; we demultiplex stdout/stderr with per-stream caps and a
wall-clock deadline. After the command the agent kills every uid-1000 process left (setsid
grandchildren included) and reports the exit code and whether the workspace changed; only
then is it copied back (a `tar -c` exec) so the caller's directory reflects the writes. A
container whose job timed out, ran out of memory, flooded output or did not end cleanly is
replaced in the background. Containers carry the labels `assay=sandbox`, `assay.run=<run_id>`
and `assay.owner=<host>:<pid>`; close(), atexit, SIGTERM/SIGHUP and `assay sandbox gc`
remove them.
"""

from __future__ import annotations

import atexit
import io
import itertools
import os
import queue
import shlex
import shutil
import signal
import socket
import struct
import tarfile
import threading
import time
import uuid
import weakref
from pathlib import Path

from assay.sandbox.base import Limits, SandboxUnavailable
from assay.types import ExecResult

LABEL = "assay"
LABEL_VALUE = "sandbox"
RUN_LABEL = "assay.run"
PID_LABEL = "assay.owner"  # host:pid of the process that started it (gc spares live owners)
SANDBOX_UID = 1000
WORKDIR = "/workspace"
_CHUNK = 65536

# The agent: the container's main process (under docker-init), root but with only
# CAP_SETUID/SETGID/KILL, so the command (uid 1000, no capabilities, no-new-privileges) can
# neither kill it nor read its memory. It reads jobs from the attached stdin, one header line
# "<n> <cpu s> <fsize blocks> <payload bytes> <tag>" then a tar holding the workspace (`<n>/`),
# the command's stdin (`<n>.stdin`) and its argv and environment (`<n>.cmd`, `set --` / export
# lines we generate). Per job, as uid 1000 it clears the previous candidate's files and /tmp
# and unpacks; it marks the time in root-owned stamps (spinning, without forking, until the
# clock ticks, so every later write is strictly newer); it sets rlimits (dash/busybox count -f
# in 512-byte blocks) and runs the command as uid 1000; then it kills every uid-1000 process
# left (setsid grandchildren included) and ends stdout with "<tag>" and stderr with
# "<tag><state><rc:03d>": state 0 unchanged, 1 the workspace changed (copy it back), 2 the
# clean-up could not run (the container is replaced). The tag is secret to the command, so it
# cannot forge the end of a job. No `docker exec` per run: that costs ~60-150 ms on its own.
_AS_USER = "setpriv --reuid=1000 --regid=1000 --clear-groups --inh-caps=-all"
_AGENT = (
    'exec 3>&2 2>/dev/null; u="' + _AS_USER + '"; cd /workspace || exit 125; '
    'while read -r n cpu fsz len tag; do '
    '$u sh -c \'rm -rf -- ./* ./.[!.]* ./..?* /tmp/* /tmp/.[!.]* /tmp/..?*; '
    'head -c "$0" | tar -x -i -f -\' "$len" || { printf "%s" "$tag"; printf "\\n%s2125" "$tag" >&3; exit 125; }; '
    ': >/tmp/.assay-a; : >/tmp/.assay-b; '
    'until [ /tmp/.assay-b -nt /tmp/.assay-a ]; do : >/tmp/.assay-b; done; '
    '(ulimit -c 0; ulimit -t "$cpu"; ulimit -f "$fsz"; cd "$n" || exit 125; . "../$n.cmd"; '
    'exec $u "$@" <"../$n.stdin" 2>&3 3>&-); rc=$?; '
    'if out=$($u sh -c \'kill -9 -1; exec find "$0" -cnewer /tmp/.assay-a -print -quit\' "$n" 2>&1); '
    'then if [ -z "$out" ]; then ch=0; else ch=1; fi; else ch=2; fi; '
    'printf "%s" "$tag"; printf "\\n%s%s%03d" "$tag" "$ch" "$rc" >&3; '
    'done'
)

_live: "weakref.WeakSet[DockerSandbox]" = weakref.WeakSet()
_hooks_installed = False


def connect(timeout: int = 30):
    """A docker client whose engine answers, else SandboxUnavailable (one clear sentence)."""
    try:
        import docker
        import requests
    except ImportError:  # pragma: no cover - docker is a core dependency
        raise SandboxUnavailable("the docker Python package is missing; pip install docker.") from None
    host = os.environ.get("DOCKER_HOST", "the default socket /var/run/docker.sock")
    msg = (f"no Docker engine answers at {host}; start Docker (or set DOCKER_HOST), "
           f"or use --sandbox local.")
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError):
        raise SandboxUnavailable(msg) from None
    return client


def engine_available() -> bool:
    try:
        connect(timeout=5).close()
        return True
    except SandboxUnavailable:
        return False


def _close_all() -> None:
    for sb in list(_live):
        sb.close()


def _install_exit_hooks() -> None:
    """Remove containers at interpreter exit and on SIGTERM/SIGHUP (chaining earlier handlers)."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_close_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        previous = signal.getsignal(sig)

        def handler(signum, frame, previous=previous):
            _close_all()
            if callable(previous):
                previous(signum, frame)
            elif previous != signal.SIG_IGN:
                raise SystemExit(128 + signum)

        signal.signal(sig, handler)


class _Container:
    """One pool member and the bookkeeping its runs need."""

    def __init__(self, container, key):
        self.c = container
        self.key = key
        self.oom_kills = 0
        self.sock = self.raw = None  # the attached stdin/stdout/stderr of the agent
        self.pending = bytearray()  # bytes read past the end of the last job (none, normally)


class DockerSandbox:
    name = "docker"

    def __init__(self, image: str = "assay-sandbox:py311", run_id: str | None = None,
                 pool_size: int = 2, cpus: float = 1.0, tmpfs_mb: int = 512, client=None):
        self.image = image
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.pool_size = max(1, pool_size)
        self.cpus = cpus
        self.tmpfs_mb = tmpfs_mb
        self.client = client or connect()
        self.api = self.client.api
        import docker

        try:
            img = self.client.images.get(image)
        except docker.errors.ImageNotFound:
            raise SandboxUnavailable(f"the Docker image {image!r} does not exist; build it with "
                                     f"`assay sandbox build --name {image}`.") from None
        # Variables the agent inherits from the image and the engine; jobs unset them.
        self._image_env = {e.split("=", 1)[0] for e in img.attrs["Config"].get("Env") or []}
        self._image_env |= {"HOSTNAME"}
        self._lock = threading.Lock()
        self._pools: dict[tuple[int, int, int], queue.Queue] = {}
        self._counts: dict[tuple[int, int, int], int] = {}
        self._all: dict[str, _Container] = {}
        self._reapers: list[threading.Thread] = []
        self._seq = itertools.count()
        self._closed = False
        self.started: list[str] = []  # ids of the containers started, replacements included
        _live.add(self)
        _install_exit_hooks()

    # -- pool ---------------------------------------------------------------------------

    def _start(self, key: tuple[int, int, int]) -> _Container:
        memory_mb, pids, fsize_mb = key
        tmpfs = "rw,nosuid,nodev,size={}m"
        c = self.client.containers.run(
            self.image,
            command=["/bin/sh", "-c", _AGENT],
            detach=True,
            stdin_open=True,
            log_config={"type": "none"},  # the engine must not write job output to disk
            init=True,  # docker-init reaps orphans, so killed grandchildren never pile up
            user="0:0",  # only docker-init and the agent are root, with 3 capabilities
            network_mode="none",
            read_only=True,
            # /tmp and /dev/shm hold at most one file's worth (like the local backend).
            tmpfs={"/tmp": tmpfs.format(fsize_mb) + ",mode=1777",
                   WORKDIR: tmpfs.format(self.tmpfs_mb) + f",mode=755,uid={SANDBOX_UID},gid={SANDBOX_UID}"},
            shm_size=f"{fsize_mb}m",
            working_dir=WORKDIR,
            # tmpfs pages count towards the memory cgroup; + headroom for the agent's shells.
            mem_limit=f"{memory_mb + 64}m",
            memswap_limit=f"{memory_mb + 64}m",
            pids_limit=pids + 2,  # + init and the agent
            nano_cpus=int(self.cpus * 1e9),
            cap_drop=["ALL"],
            cap_add=["SETUID", "SETGID", "KILL"],  # for the agent; the command gets none
            security_opt=["no-new-privileges"],
            ipc_mode="private",
            labels={LABEL: LABEL_VALUE, RUN_LABEL: self.run_id, PID_LABEL: _owner()},
            name=f"assay-{self.run_id}-{uuid.uuid4().hex[:6]}",
        )
        box = _Container(c, key)
        with self._lock:
            self._all[c.id] = box
            self.started.append(c.id)
            closed = self._closed
        if closed:  # close() ran while we were starting it
            self._remove(box)
            raise RuntimeError("DockerSandbox is closed")
        try:
            box.sock = self.api.attach_socket(c.id, params={"stdin": 1, "stdout": 1, "stderr": 1,
                                                            "stream": 1})
        except Exception:
            self._remove(box)
            raise
        box.raw = getattr(box.sock, "_sock", box.sock)
        return box

    def _checkout(self, limits: Limits) -> _Container:
        key = (limits.memory_mb, limits.pids, limits.fsize_mb)
        while True:
            with self._lock:
                if self._closed:
                    raise RuntimeError("DockerSandbox is closed")
                pool = self._pools.setdefault(key, queue.Queue())
                try:
                    return pool.get_nowait()
                except queue.Empty:
                    pass
                grow = self._counts.get(key, 0) < self.pool_size
                if grow:
                    self._counts[key] = self._counts.get(key, 0) + 1
            if grow:
                try:
                    return self._start(key)
                except Exception:
                    with self._lock:
                        self._counts[key] -= 1
                    raise
            try:  # wait for a container to come back (or for a failed replacement to free a slot)
                return pool.get(timeout=1.0)
            except queue.Empty:
                continue

    def _checkin(self, box: _Container, healthy: bool) -> None:
        if healthy:
            self._pools[box.key].put(box)
            return
        # Replace it in the background: the caller does not wait for the removal or the start.
        with self._lock:
            self._all.pop(box.c.id, None)
            closed = self._closed
            if not closed:
                t = threading.Thread(target=self._replace, args=(box,), daemon=True)
                self._reapers = [r for r in self._reapers if r.is_alive()] + [t]
        if closed:
            self._remove(box)
        else:
            t.start()

    def _replace(self, box: _Container) -> None:
        self._remove(box)
        try:
            fresh = self._start(box.key)
        except Exception:
            with self._lock:
                self._counts[box.key] -= 1  # the next checkout starts one instead
            return
        self._pools[box.key].put(fresh)

    def _remove(self, box: _Container) -> None:
        import docker

        with self._lock:
            self._all.pop(box.c.id, None)
        for s in (box.raw, box.sock):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass
        try:
            box.c.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass

    # -- one run -------------------------------------------------------------------------

    def python(self) -> str:
        return "/usr/bin/python3"

    def run(self, cmd: list[str], workspace: Path, limits: Limits, stdin: bytes | None = None) -> ExecResult:
        import docker

        workspace = Path(workspace)
        for attempt in (0, 1):
            box = self._checkout(limits)
            n = f"w{next(self._seq)}"
            healthy = False
            try:
                try:
                    res, changed, clean = self._job(box, n, workspace, cmd, limits, stdin)
                except (docker.errors.APIError, BrokenPipeError, ConnectionError):
                    if attempt == 0 and not self._running(box):
                        continue  # the container died under an earlier run; use a fresh one
                    raise
                if self._oom(box) and res.killed_reason is None:
                    res = res.model_copy(update={"killed_reason": "memory"})
                healthy = clean and res.killed_reason is None
                if changed:
                    res = self._copy_back(box, n, workspace, res)
                return res
            finally:
                self._checkin(box, healthy)
        raise AssertionError("unreachable")

    def _job(self, box: _Container, n: str, workspace: Path, cmd: list[str], limits: Limits,
             stdin: bytes | None) -> tuple[ExecResult, bool, bool]:
        cpu = int(limits.cpu_s if limits.cpu_s is not None else limits.wall_s + 1) + 1
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": f"{WORKDIR}/{n}", "LANG": "C.UTF-8"}
        env.update(limits.env)
        bad = [k for k in env if not k.isidentifier() or not k.isascii()]
        if bad:
            raise ValueError(f"environment variable names must be shell identifiers: {bad}")
        drop = sorted((self._image_env | {"OLDPWD"}) - set(env))
        script = (("unset " + " ".join(drop) + "\n" if drop else "")
                  + "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
                  + "set -- " + " ".join(shlex.quote(c) for c in cmd) + "\n")
        payload = _pack(workspace, n, stdin or b"", script)
        token = "#assay-" + uuid.uuid4().hex + ":"
        header = f"{n} {cpu} {limits.fsize_mb * 2048} {len(payload)} {token}\n".encode()
        cap = limits.output_bytes
        tail = len(token) + 5
        start = time.monotonic()  # the wall clock starts here, not while waiting for a container
        # Write from a thread: a command that never reads stdin must not block us.
        threading.Thread(target=_feed, args=(box.raw, header + payload), daemon=True).start()
        out, err, reason = _read_frames(box, start + limits.wall_s, cap, token, tail)
        if reason in ("timeout", "output"):
            self._kill_all(box)
            _, _, end = _read_frames(box, time.monotonic() + 3.0, cap, token, tail, out, err, flood=False)
            if end != "done":
                reason = reason or "eof"
        changed = clean = False
        code = None
        last = err.get("tail", b"")
        marker = ("\n" + token).encode()
        if last[-len(marker) - 4:-4] == marker and last[-3:].isdigit():
            state, code = last[-4:-3], int(last[-3:])
            changed, clean = state != b"0", state in (b"0", b"1")
        # drop the markers from what the command wrote
        for buf, mark in ((out, token.encode()), (err, marker)):
            i = bytes(buf["buf"]).rfind(mark)
            if i >= 0 and buf["buf"][i:].startswith(mark) and len(buf["buf"]) - i <= len(mark) + 4:
                del buf["buf"][i:]
        for buf in (out, err):
            if len(buf["buf"]) > cap:
                del buf["buf"][cap:]
                buf["truncated"] = True
        timed_out = reason == "timeout"
        if timed_out:
            code = 124
        elif code is None:
            code = 137  # the agent died with the job (the container is replaced)
        res = ExecResult(
            exit_code=code,
            stdout=bytes(out["buf"]).decode("utf-8", "replace"),
            stderr=bytes(err["buf"]).decode("utf-8", "replace"),
            stdout_truncated=out["truncated"],
            stderr_truncated=err["truncated"],
            duration_s=time.monotonic() - start,
            timed_out=timed_out,
            killed_reason=reason if reason in ("timeout", "output") else None,
        )
        if not clean:
            changed = True  # the job did not finish cleanly: copy back whatever is there
        return res, changed, clean

    def _copy_back(self, box: _Container, n: str, workspace: Path, res: ExecResult) -> ExecResult:
        """Mirror the container's workspace into `workspace`; if that is impossible (the
        container died), leave it as it was and say so at the end of stderr."""
        import docker

        try:
            data = self._copy_out(box, n)
            if data:
                _unpack(data, workspace)
                return res
            why = "the container returned no files"
        except (docker.errors.APIError, tarfile.TarError) as e:
            why = f"{type(e).__name__}: {e}"
        note = f"\n[assay] the workspace was not copied back ({why})\n"
        return res.model_copy(update={"stderr": res.stderr + note})

    def _copy_out(self, box: _Container, n: str) -> bytes:
        """The container's workspace as a tar (`<n>/...`), read by the sandbox user."""
        ex = self.api.exec_create(box.c.id, ["tar", "-c", "-f", "-", "-C", WORKDIR, n],
                                  stdout=True, stderr=True, user=f"{SANDBOX_UID}:{SANDBOX_UID}")
        out, _ = self.api.exec_start(ex["Id"], demux=True)
        return out or b""

    def _kill_all(self, box: _Container) -> None:
        """SIGKILL every uid-1000 process in the container (not init or the agent)."""
        import docker

        # Detached: the caller keeps draining the command's stream meanwhile, so the engine
        # never blocks on a flood we stopped reading.
        try:
            ex = self.api.exec_create(box.c.id, ["/bin/sh", "-c", "kill -9 -1"],
                                      user=f"{SANDBOX_UID}:{SANDBOX_UID}")
            self.api.exec_start(ex["Id"], detach=True)
        except docker.errors.APIError:
            pass  # a stopped container is replaced at check-in

    def _running(self, box: _Container) -> bool:
        import docker

        try:
            box.c.reload()
        except docker.errors.NotFound:
            return False
        return box.c.status == "running"

    def _oom(self, box: _Container) -> bool:
        """Whether the kernel OOM-killed something in this container since the last check."""
        kills = _oom_kills(box.c.id)
        if kills is None or kills <= box.oom_kills:
            return False
        box.oom_kills = kills
        return True

    def close(self) -> None:
        with self._lock:
            self._closed = True
            reapers = list(self._reapers)
        for t in reapers:
            t.join(timeout=30)
        with self._lock:
            boxes = list(self._all.values())
        for box in boxes:
            self._remove(box)
        _live.discard(self)

    def __enter__(self) -> "DockerSandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_alive(owner: str | None) -> bool:
    host, _, pid = (owner or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return int(pid) != os.getpid() or bool(_live)


def gc(client=None, run_id: str | None = None, include_live: bool = False) -> int:
    """Remove containers labelled assay=sandbox (optionally only one run's) whose owning process
    is gone (or all of them with `include_live`); return how many were removed."""
    import docker

    client = client or connect()
    filters = {"label": [f"{LABEL}={LABEL_VALUE}"] + ([f"{RUN_LABEL}={run_id}"] if run_id else [])}
    removed = 0
    for c in client.containers.list(all=True, filters=filters):
        if not include_live and _owner_alive(c.labels.get(PID_LABEL)):
            continue  # a running assay process is using it
        try:
            c.remove(force=True, v=True)
            removed += 1
        except docker.errors.NotFound:
            pass
    return removed


# -- helpers ------------------------------------------------------------------------------


def _oom_kills(container_id: str) -> int | None:
    """The cgroup v1 oom_kill counter of a container, where the host cgroup tree is visible."""
    for parent in ("docker", "system.slice/docker-{id}.scope"):
        base = Path("/sys/fs/cgroup/memory") / (parent.format(id=container_id) if "{id}" in parent
                                                else f"{parent}/{container_id}")
        try:
            text = (base / "memory.oom_control").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
    return None


def _feed(raw, data: bytes) -> None:
    try:
        raw.sendall(data)
    except OSError:
        pass  # the agent died (the reader sees EOF and the container is replaced)


def _read_frames(box: _Container, deadline: float, cap: int, token: str, tail: int,
                 out: dict | None = None, err: dict | None = None, flood: bool = True):
    """Demultiplex docker's 8-byte-header frames from the agent until both end markers of the
    job arrived ("done"), the deadline ("timeout"), an output flood ("output"), or EOF ("eof").
    Output beyond `cap` (plus room for the markers) is dropped and flagged."""
    out = out if out is not None else {"buf": bytearray(), "truncated": False}
    err = err if err is not None else {"buf": bytearray(), "truncated": False}
    streams = {1: out, 2: err}
    marks = {1: token.encode(), 2: ("\n" + token).encode()}
    seen = {1: False, 2: False}
    pending = box.pending
    raw = box.raw
    dropped = 0
    while True:
        while len(pending) >= 8:
            kind = pending[0]
            size = struct.unpack(">I", pending[4:8])[0]
            if len(pending) < 8 + size:
                break
            payload = bytes(pending[8:8 + size])
            del pending[:8 + size]
            s = streams.get(kind)
            if s is None:
                continue
            s["tail"] = (s.get("tail", b"") + payload)[-tail:]
            room = cap + tail - len(s["buf"])
            if room > 0:
                s["buf"] += payload[:room]
            if len(payload) > room:
                s["truncated"] = True
                dropped += len(payload) - max(room, 0)
            t = s["tail"]
            i = t.rfind(marks[kind])
            if i >= 0 and (kind == 1 and i + len(marks[1]) == len(t)
                           or kind == 2 and len(t) - i - len(marks[2]) == 4 and t[-3:].isdigit()):
                seen[kind] = True
            if seen[1] and seen[2]:
                return out, err, "done"
            if flood and dropped > 4 * cap + _CHUNK:
                return out, err, "output"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return out, err, "timeout"
        raw.settimeout(min(remaining, 0.5))
        try:
            data = raw.recv(_CHUNK)
        except socket.timeout:
            continue
        except OSError:
            return out, err, "eof"
        if not data:
            return out, err, "eof"
        pending += data


def _pack(workspace: Path, top: str, stdin: bytes, script: str) -> bytes:
    """The workspace as a tar whose members live under `top/`, owned by the sandbox user,
    plus the command's stdin as `top.stdin`."""
    buf = io.BytesIO()

    def owner(ti: tarfile.TarInfo) -> tarfile.TarInfo:
        ti.uid = ti.gid = SANDBOX_UID
        ti.uname = ti.gname = ""
        return ti

    with tarfile.open(fileobj=buf, mode="w") as tar:
        top_info = owner(tar.gettarinfo(str(workspace), arcname=top))
        top_info.mode = 0o755  # the agent (root without DAC override) must enter it
        tar.addfile(top_info)
        for child in sorted(os.listdir(workspace)):
            tar.add(str(workspace / child), arcname=f"{top}/{child}", filter=owner)
        for name, data in ((f"{top}.stdin", stdin), (f"{top}.cmd", script.encode())):
            ti = owner(tarfile.TarInfo(name))
            ti.size, ti.mode = len(data), 0o644  # read by the agent, which has no DAC override
            tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _unpack(data: bytes, workspace: Path) -> None:
    """Make `workspace` mirror the container's copy (tar stream of `<top>/...`).

    The tar is untrusted: members are extracted with tarfile's "data" filter (no absolute
    paths, no links leaving the directory, no devices); rejected members are skipped."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        members = []
        keep: set[str] = set()
        for m in tar.getmembers():
            parts = m.name.split("/", 1)
            if len(parts) < 2 or not parts[1]:
                continue
            m.name = parts[1]
            if m.islnk():
                m.linkname = m.linkname.split("/", 1)[1] if "/" in m.linkname else m.linkname
            members.append(m)
            keep.add(os.path.normpath(m.name))
        _prune(workspace, keep)

        def safe(member: tarfile.TarInfo, dest: str):
            try:
                member = tarfile.data_filter(member, dest)
            except tarfile.FilterError:
                return None
            member.uid = member.gid = None
            member.uname = member.gname = None
            return member

        for m in members:
            target = workspace / m.name
            if target.is_symlink() or (target.exists() and not target.is_dir() and m.isdir()):
                target.unlink()
            elif target.is_dir() and not target.is_symlink() and not m.isdir():
                shutil.rmtree(target)
            tar.extract(m, workspace, filter=safe)


def _prune(workspace: Path, keep: set[str]) -> None:
    """Delete what the command deleted: host paths absent from the container's copy."""
    for dirpath, dirnames, filenames in os.walk(workspace, topdown=False):
        rel_dir = os.path.relpath(dirpath, workspace)
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if rel not in keep:
                os.unlink(os.path.join(dirpath, name))
        for name in dirnames:
            p = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if rel not in keep and not os.path.islink(p):
                os.rmdir(p) if not os.listdir(p) else None

