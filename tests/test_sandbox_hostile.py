"""Hostile code against every sandbox backend: each attack must fail and leave the host clean
(no process, cgroup, mount or temp file left behind)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from assay.sandbox.base import Limits
from assay.types import ExecResult
from procs import procs_naming

pytestmark = pytest.mark.timeout(60)  # each case takes seconds; a hang is a failure, fast


def _procs_with(marker: str) -> list[str]:
    return [f"{pid}: {cmdline.replace(bytes(1), b' ')[:120]!r}" for pid, cmdline in procs_naming(marker).items()]


def _mounts_with(*needles: str) -> list[str]:
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [line for line in lines if any(n in line for n in needles)]


def _tmp_entries() -> set[str]:
    return set(os.listdir(tempfile.gettempdir()))


class Host:
    """What an attack could leave behind, checked after each test."""

    def __init__(self, sandbox, tmp_path: Path):
        # These attacks (kill -9 -1, fork bombs) hit the whole machine without isolation.
        if sandbox.name not in ("local", "docker"):
            raise RuntimeError(f"refusing to run hostile code on the {sandbox.name!r} backend")
        self.sandbox = sandbox
        self.marker = f"assaymark{uuid.uuid4().hex[:10]}"
        self.ws = tmp_path / "ws"
        self.ws.mkdir()
        self.tmp_path = tmp_path
        self.tmp_before = _tmp_entries()

    def run(self, code: str, **limits) -> ExecResult:
        limits.setdefault("wall_s", 3.0)
        # the marker lands in the cmdline of the process and of everything it forks
        src = f"# {self.marker}\nMARKER = {self.marker!r}\n{code}"
        return self.sandbox.run([self.sandbox.python(), "-c", src], self.ws, Limits(**limits))

    def assert_clean(self) -> None:
        # local: gone when run() returns (its cgroup is empty by then); docker kills by exec
        deadline = time.monotonic() + (0.0 if self.sandbox.name == "local" else 3.0)
        while _procs_with(self.marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _procs_with(self.marker) == [], "sandboxed processes outlived their run"
        assert _mounts_with(self.marker, str(self.ws)) == []
        new = _tmp_entries() - self.tmp_before
        leaked = [n for n in new if self.marker in n]
        assert leaked == [], f"left in {tempfile.gettempdir()}: {leaked}"
        for p in [self.ws, *self.ws.rglob("*")]:
            assert _owner(p) == os.getuid(), f"{p} still belongs to uid {_owner(p)}"
        if self.sandbox.name == "local":
            for parent in self.sandbox.cgroups.parents:
                assert list(parent.glob(f"assay-{os.getpid()}-*")) == [], "per-run cgroup not removed"


def _owner(p: Path) -> int | None:
    try:
        return p.lstat().st_uid
    except FileNotFoundError:
        return None


@pytest.fixture
def host(sandbox, tmp_path):
    h = Host(sandbox, tmp_path)
    yield h
    h.assert_clean()


def _json(res: ExecResult) -> dict:
    assert res.exit_code == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_network_egress_fails(host):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    port = listener.getsockname()[1]
    code = f"""
import json, socket
out = {{}}
for name, addr in [("loopback", ("127.0.0.1", {port})), ("external", ("1.1.1.1", 80)),
                   ("external_dns", ("8.8.8.8", 53))]:
    s = socket.socket()
    s.settimeout(1.0)
    try:
        s.connect(addr)
        out[name] = "connected"
    except OSError as e:
        out[name] = type(e).__name__
    s.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    u.sendto(b"x", ("8.8.8.8", 53))
    out["udp"] = "sent"
except OSError as e:
    out["udp"] = type(e).__name__
try:
    socket.getaddrinfo("pypi.org", 443)
    out["dns"] = "resolved"
except OSError as e:
    out["dns"] = type(e).__name__
print(json.dumps(out))
"""
    try:
        out = _json(host.run(code, wall_s=8))
        assert set(out) == {"loopback", "external", "external_dns", "udp", "dns"}
        assert not {k for k, v in out.items() if v in ("connected", "sent", "resolved")}, out
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing reached the test's listener
    finally:
        listener.close()


def test_home_and_ssh_keys_unreadable(host):
    home = host.tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    secret = f"SECRET-{uuid.uuid4().hex}"
    key = home / ".ssh" / "id_rsa"
    key.write_text(secret)
    key.chmod(0o600)
    code = f"""
import json, os, glob
out = {{}}
for path in [{str(key)!r}, "/root/.ssh/id_rsa", os.path.expanduser("~/.ssh/id_rsa")]:
    try:
        out[path] = open(path).read()
    except OSError as e:
        out[path] = type(e).__name__
for d in [{str(home)!r}, "/root", "/home"]:
    try:
        out[d] = sorted(os.listdir(d))
    except OSError as e:
        out[d] = type(e).__name__
out["found"] = [p for top in ("/root", "/home", "/tmp", "/workspace", "/mnt", "/media")
                for p in glob.glob(top + "/**/id_rsa", recursive=True)]
print(json.dumps(out))
"""
    res = host.run(code, wall_s=10)
    assert secret not in res.stdout + res.stderr
    out = _json(res)
    assert out[str(key)] in ("FileNotFoundError", "PermissionError")
    assert out["/root/.ssh/id_rsa"] in ("FileNotFoundError", "PermissionError")
    assert out[str(home)] in ("FileNotFoundError", "PermissionError")
    assert out["found"] == []
    if host.sandbox.name == "local":  # only the interpreter prefix of the host's /root is there
        assert out["/root"] in ("PermissionError", [], [".pyenv"])
        assert out["/home"] == "FileNotFoundError"


def test_host_environment_invisible(host, monkeypatch):
    secret = f"sk-{uuid.uuid4().hex}"
    monkeypatch.setenv("FAKE_API_KEY", secret)
    code = """
import json, os
seen = dict(os.environ)
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            seen["proc" + pid] = open(f"/proc/{pid}/environ", "rb").read().decode("latin-1")
        except OSError:
            pass
print(json.dumps(seen))
"""
    res = host.run(code)
    assert secret not in res.stdout + res.stderr
    assert "FAKE_API_KEY" not in _json(res)


def test_cannot_write_outside_workspace(host):
    outside = host.tmp_path / "outside"
    outside.mkdir()
    outside.chmod(0o777)
    targets = [str(outside / "pwn"), "/etc/pwn", "/usr/pwn", "/pwn", "/root/pwn", "/dev/pwn",
               "/proc/sys/kernel/hostname"]
    code = f"""
import json, os
out = {{}}
for path in {targets!r}:
    try:
        with open(path, "w") as f:
            f.write("pwned")
        out[path] = "written"
    except OSError as e:
        out[path] = type(e).__name__
with open("/tmp/" + MARKER, "w") as f:  # its private /tmp: allowed, but never the host's
    f.write("x")
with open("in-workspace", "w") as f:
    f.write("ok")
print(json.dumps(out))
"""
    out = _json(host.run(code))
    assert {p: v for p, v in out.items() if v == "written"} == {}
    assert not (outside / "pwn").exists()
    for path in ("/etc/pwn", "/usr/pwn", "/pwn", "/root/pwn", "/dev/pwn"):
        assert not os.path.exists(path)
    assert not (Path(tempfile.gettempdir()) / host.marker).exists()
    assert (host.ws / "in-workspace").read_text() == "ok"


def test_fork_bomb_is_bounded_and_leaves_nothing(host):
    code = """
import os, time
while True:
    try:
        os.fork()
    except OSError:
        time.sleep(0.01)
"""
    start = time.monotonic()
    res = host.run(code, wall_s=2.0, pids=32)
    assert res.exit_code == 124 and res.timed_out
    assert time.monotonic() - start < 10


def test_fork_count_stops_at_pids_limit(host):
    code = """
import os, sys, time
kids = 0
try:
    while kids < 500:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        kids += 1
except OSError as e:
    print(kids, type(e).__name__, flush=True)
    sys.exit(3)
print(kids, "unbounded", flush=True)
"""
    res = host.run(code, wall_s=5.0, pids=24)
    kids, error = res.stdout.split()
    assert res.exit_code == 3, res.stderr
    assert int(kids) < 24 and error == "BlockingIOError"
    if host.sandbox.name == "local" and host.sandbox.cgroups.pids is not None:
        assert res.killed_reason == "pids"


def test_memory_hog_is_killed(host):
    code = """
chunks = []
while True:
    chunks.append(b"\\x01" * (16 << 20))
"""
    res = host.run(code, wall_s=10.0, memory_mb=128)
    assert res.exit_code != 0 and not res.timed_out
    if host.sandbox.name == "local":
        if host.sandbox.cgroups.memory is not None:
            assert res.killed_reason == "memory"
        else:
            assert "MemoryError" in res.stderr
    else:
        assert res.killed_reason in ("memory", None)


def test_disk_fill_is_bounded(host):
    code = """
import errno, json
out = {}
try:
    with open("big", "wb") as f:
        for _ in range(64):
            f.write(b"\\0" * (1 << 20))
    out["big"] = "wrote"
except OSError as e:
    out["big"] = errno.errorcode[e.errno]
n = 0
try:
    for i in range(400):
        with open(f"/tmp/f{i}", "wb") as f:
            f.write(b"\\1" * (1 << 20))
        n += 1
    out["tmp"] = "wrote"
except OSError as e:
    out["tmp"] = errno.errorcode[e.errno]
out["tmp_mb"] = n
print(json.dumps(out))
"""
    out = _json(host.run(code, wall_s=10.0, fsize_mb=8))
    assert out["big"] == "EFBIG"
    assert (host.ws / "big").stat().st_size <= 8 << 20
    assert out["tmp"] in ("ENOSPC", "EFBIG", "EDQUOT") and out["tmp_mb"] < 400


def test_workspace_fill_is_bounded(host):
    """Many files, each under the file-size cap, must not fill the host disk via the workspace."""
    from assay.sandbox.quota import bounded_workspace

    code = """
import errno, json, os
n, err = 0, "wrote"
try:
    for i in range(2048):  # up to 2 GiB
        with open(f"w{i}", "wb") as f:
            f.write(b"\\1" * (1 << 20))
        n += 1
except OSError as e:
    err = errno.errorcode[e.errno]
for i in range(n + 1):  # leave nothing big to copy back
    try:
        os.unlink(f"w{i}")
    except FileNotFoundError:
        pass
print(json.dumps({"err": err, "mb": n}))
"""
    if host.sandbox.name == "docker":
        limit_mb = host.sandbox.tmpfs_mb  # the container's /workspace tmpfs
        res = host.run(code, wall_s=20.0, fsize_mb=8)
    else:
        if os.geteuid() != 0:
            pytest.skip("a size-bounded workspace needs root (tmpfs mount)")
        limit_mb = 64
        with bounded_workspace(limit_mb, prefix=f"assay-{host.marker}-") as ws:
            ws_name = str(ws)
            src = f"# {host.marker}\n{code}"
            res = host.sandbox.run([host.sandbox.python(), "-c", src], ws,
                                   Limits(wall_s=20.0, fsize_mb=8, workspace_mb=limit_mb))
        assert _mounts_with(ws_name) == [], "workspace tmpfs left mounted"
        assert not Path(ws_name).exists(), "workspace temp dir left behind"
    out = _json(res)
    assert out["err"] in ("ENOSPC", "EDQUOT"), out
    assert out["mb"] <= limit_mb + 1, out


def test_endless_output_is_truncated(host):
    code = """
import sys
while True:
    sys.stdout.write("A" * 65536)
    sys.stderr.write("B" * 65536)
"""
    cap = 64 * 1024
    res = host.run(code, wall_s=5.0, output_bytes=cap)
    assert res.stdout_truncated and res.stderr_truncated
    assert 0 < len(res.stdout) <= cap and set(res.stdout) == {"A"}
    assert 0 < len(res.stderr) <= cap and set(res.stderr) == {"B"}
    if host.sandbox.name == "local":
        assert res.killed_reason == "output" and res.duration_s < 4


def test_sigterm_ignored_killed_at_deadline(host):
    code = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                  "time.sleep(60)  # " + MARKER])
print("ready", flush=True)
time.sleep(60)
"""
    res = host.run(code, wall_s=1.5)
    assert res.exit_code == 124 and res.timed_out and res.killed_reason == "timeout", res
    assert res.stdout == "ready\n", res
    assert 1.5 <= res.duration_s < 6, res  # the deadline, plus slack for a loaded machine


def test_setsid_grandchildren_do_not_survive(host):
    code = """
import os, subprocess, sys, time
# a new session that still holds our stdout, and a classic double-fork daemon
subprocess.Popen([sys.executable, "-c", "import os, time; time.sleep(60)  # " + MARKER], start_new_session=True)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(60)
    os._exit(0)
print("spawned", flush=True)
"""
    res = host.run(code, wall_s=3.0)
    assert res.stdout == "spawned\n"
    assert res.exit_code == 0 and not res.timed_out  # did not wait for the daemons either


def test_killing_parents_does_not_reach_the_host(host):
    sentinel = subprocess.Popen(["sleep", "30"])
    try:
        code = f"""
import os, json
out = {{}}
for name, pid in [("ppid", os.getppid()), ("test", {os.getpid()}), ("sentinel", {sentinel.pid}), ("all", -1)]:
    try:
        os.kill(pid, 9)
        out[name] = "sent"
    except OSError as e:
        out[name] = type(e).__name__
print(json.dumps(out), flush=True)
os.system("kill -9 -1")
"""
        res = host.run(code)
        out = json.loads(res.stdout.splitlines()[0])
        if host.sandbox.name == "local":  # its parent is bwrap's pid 1, which runs as root
            assert out["ppid"] in ("PermissionError", "ProcessLookupError"), out
        assert sentinel.poll() is None, "a sandboxed process killed a host process"
        assert os.kill(os.getpid(), 0) is None  # and we are still here
    finally:
        sentinel.send_signal(signal.SIGKILL)
        sentinel.wait()


def test_no_nested_user_namespace(host):
    # a user namespace would hand the command every capability over namespaces it then makes
    code = """
import ctypes, json
libc = ctypes.CDLL(None, use_errno=True)
rc = libc.unshare(0x10000000)  # CLONE_NEWUSER
print(json.dumps({"rc": rc, "errno": ctypes.get_errno()}))
"""
    out = _json(host.run(code))
    assert out["rc"] == -1 and out["errno"] in (1, 22, 28, 38), out  # EPERM/EINVAL/ENOSPC/ENOSYS
