"""LocalSandbox (bubblewrap): normal runs, stdin, exit codes, environment, limits, CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assay.sandbox.base import Limits, SandboxUnavailable, make_sandbox
from procs import procs_naming

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")


@pytest.fixture(scope="module")
def box():
    from assay.sandbox.local import LocalSandbox

    sb = LocalSandbox()
    yield sb
    sb.close()


def py(box, code: str) -> list[str]:
    return [box.python(), "-c", code]


def test_runs_python_in_workspace(box, tmp_path):
    (tmp_path / "data.txt").write_text("42")
    code = "import os; print(os.getcwd(), open('data.txt').read()); open('out.txt', 'w').write('ok')"
    res = box.run(py(box, code), tmp_path, Limits(wall_s=10))
    assert res.exit_code == 0, res.stderr
    assert res.stdout.split() == ["/workspace", "42"]
    assert (tmp_path / "out.txt").read_text() == "ok"
    assert not res.timed_out and res.killed_reason is None
    # the workspace and what the command wrote go back to the workspace's owner
    assert (tmp_path / "out.txt").stat().st_uid == tmp_path.stat().st_uid == os.getuid()


def test_script_path_on_host_is_translated(box, tmp_path):
    (tmp_path / "main.py").write_text("print('from main')")
    res = box.run([box.python(), str(tmp_path / "main.py")], tmp_path, Limits(wall_s=10))
    assert res.exit_code == 0, res.stderr
    assert res.stdout == "from main\n"


def test_python_is_base_interpreter_with_stdlib_only(box, tmp_path):
    assert os.path.realpath(sys.base_prefix) in box.python()
    code = "import sys, json, sqlite3, ssl; print(sys.prefix)"
    res = box.run(py(box, code), tmp_path, Limits(wall_s=10))
    assert res.exit_code == 0, res.stderr
    assert res.stdout.strip() == os.path.realpath(sys.base_prefix)


def test_stdin_is_streamed_both_ways(box, tmp_path):
    # the child writes more than a pipe holds before it reads stdin: feeding stdin all at
    # once before draining stdout would deadlock
    job = json.dumps({"items": list(range(50_000))}).encode()
    code = ("import sys, json; sys.stdout.write('x' * 300000 + '\\n'); sys.stdout.flush(); "
            "job = json.load(sys.stdin); print(json.dumps({'n': len(job['items'])}))")
    res = box.run(py(box, code), tmp_path, Limits(wall_s=10), stdin=job)
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout.splitlines()[-1]) == {"n": 50_000}


def test_no_stdin_means_empty_input(box, tmp_path):
    res = box.run(py(box, "import sys; print(repr(sys.stdin.read()))"), tmp_path, Limits(wall_s=10))
    assert res.stdout == "''\n"


def test_unread_stdin_is_dropped(box, tmp_path):
    res = box.run(py(box, "print('done')"), tmp_path, Limits(wall_s=10), stdin=b"z" * (1 << 20))
    assert res.exit_code == 0 and res.stdout == "done\n"


@pytest.mark.parametrize("code, expected", [
    ("raise SystemExit(3)", 3),
    ("raise ValueError('boom')", 1),
    ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", 137),
])
def test_exit_codes(box, tmp_path, code, expected):
    res = box.run(py(box, code), tmp_path, Limits(wall_s=10))
    assert res.exit_code == expected
    if expected == 1:
        assert "ValueError: boom" in res.stderr


def test_missing_command_is_a_result_not_an_exception(box, tmp_path):
    res = box.run(["no-such-command-xyz"], tmp_path, Limits(wall_s=10))
    assert res.exit_code == 127
    assert "no-such-command-xyz" in res.stderr


def test_environment_is_cleared(box, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_API_KEY", "sk-parent-secret")
    limits = Limits(wall_s=10, env={"ASSAY_JOB": "7"})
    res = box.run(py(box, "import os, json; print(json.dumps(dict(os.environ)))"), tmp_path, limits)
    env = json.loads(res.stdout)
    env.pop("PWD", None)  # set by the process itself
    assert set(env) == {"PATH", "HOME", "LANG", "ASSAY_JOB"}
    assert env["HOME"] == "/workspace" and env["ASSAY_JOB"] == "7"
    assert "sk-parent-secret" not in res.stdout


def test_unprivileged_uid_and_no_capabilities(box, tmp_path):
    code = ("import os; s = open('/proc/self/status').read(); "
            "print(os.getuid(), os.geteuid(), os.getgid(), os.getgroups()); "
            "print([l.split()[1] for l in s.splitlines() if l.startswith(('CapEff', 'CapPrm', 'CapBnd', 'NoNewPrivs'))])")
    res = box.run(py(box, code), tmp_path, Limits(wall_s=10))
    first, second = res.stdout.splitlines()
    uid, euid, gid = (int(x) for x in first.split()[:3])
    assert uid != 0 and euid != 0 and gid != 0
    assert first.endswith("[]")
    assert second == "['0000000000000000', '0000000000000000', '0000000000000000', '1']"


def test_only_system_dirs_are_visible(box, tmp_path):
    res = box.run(py(box, "import os; print(sorted(os.listdir('/')))"), tmp_path, Limits(wall_s=10))
    visible = set(eval(res.stdout))
    assert visible <= {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "root", "tmp",
                       "dev", "proc", "workspace"}
    assert {"usr", "etc", "tmp", "dev", "proc", "workspace"} <= visible
    assert "home" not in visible and "sys" not in visible and "work" not in visible


def test_limits_reach_the_command(box, tmp_path):
    code = ("import resource as r, os; print(r.getrlimit(r.RLIMIT_CPU)[0], r.getrlimit(r.RLIMIT_FSIZE)[0], "
            "r.getrlimit(r.RLIMIT_NPROC)[0]); st = os.statvfs('/tmp'); print(st.f_blocks * st.f_frsize)")
    limits = Limits(wall_s=5, cpu_s=3, pids=20, fsize_mb=7, memory_mb=300)
    res = box.run(py(box, code), tmp_path, limits)
    assert res.exit_code == 0, res.stderr
    cpu, fsize, nproc = (int(x) for x in res.stdout.split()[:3])
    assert cpu == 4  # whole seconds, rounded up past cpu_s
    assert fsize == 7 * 1024 * 1024
    assert nproc in (20, 21)  # 21: one above the pids cgroup, which then trips first
    assert int(res.stdout.split()[3]) == 7 * 1024 * 1024  # private /tmp is that big


def test_cpu_limit_kills_busy_loop(box, tmp_path):
    # generous wall time: on a loaded machine 2 s of CPU can take much longer than 2 s
    res = box.run(py(box, "while True: pass"), tmp_path, Limits(wall_s=30, cpu_s=1))
    assert not res.timed_out
    assert res.exit_code in (128 + 9, 128 + 24)  # SIGKILL or SIGXCPU


def test_memory_limit_where_cgroups_exist(box, tmp_path):
    code = "x = b'\\x01' * (400 * 1024 * 1024); print('survived')"
    res = box.run(py(box, code), tmp_path, Limits(wall_s=10, memory_mb=100))
    assert "survived" not in res.stdout
    assert res.exit_code != 0
    if box.cgroups.memory is not None:
        assert res.killed_reason == "memory"
    else:
        assert "MemoryError" in res.stderr


def test_parallel_runs_get_distinct_uids(box, tmp_path):
    def one(i):
        ws = tmp_path / f"w{i}"
        ws.mkdir()
        return box.run(py(box, "import os, time; time.sleep(0.3); print(os.getuid())"), ws, Limits(wall_s=10))

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, range(4)))
    assert all(r.exit_code == 0 for r in results), [r.stderr for r in results]
    uids = {int(r.stdout) for r in results}
    if os.geteuid() == 0:
        assert len(uids) == 4


def test_timeout_exit_124(box, tmp_path):
    res = box.run(py(box, "import time; time.sleep(10)"), tmp_path, Limits(wall_s=0.5))
    assert res.exit_code == 124 and res.timed_out and res.killed_reason == "timeout"
    assert res.duration_s < 3


def test_a_supervisor_killed_before_the_limits_are_set_leaves_a_command_that_never_runs(tmp_path):
    # SIGKILL lands once bwrap waits on --block-fd for its limits (after --info-fd named its pid).
    # bwrap takes EOF there as go, so only the seccomp program, written after the limits, keeps
    # the command from running without them, and with nobody left to stop it.
    ws = tmp_path / "ws"
    ws.mkdir()
    script = (
        "import os, resource, signal, sys, time\n"
        "from pathlib import Path\n"
        "from assay.sandbox.base import Limits\n"
        "from assay.sandbox.local import LocalSandbox\n"
        "box = LocalSandbox()\n"  # (it starts a sandbox of its own to check that bwrap works)
        "def die(pid, *_):\n"
        "    for _ in range(500):\n"  # until bwrap blocks reading --block-fd (a pipe)
        "        if 'pipe_read' in Path(f'/proc/{pid}/wchan').read_text(): break\n"
        "        time.sleep(0.01)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "resource.prlimit = die\n"
        "box.run([sys.argv[2], 'ran'], sys.argv[1], Limits(wall_s=10))\n"
    )
    # touch: a command that starts at once, before the sandbox dies with its (killed) bwrap
    proc = subprocess.run([sys.executable, "-c", script, str(ws), shutil.which("touch")], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == -9, proc.stderr
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and procs_naming(str(ws)):
        time.sleep(0.05)
    assert procs_naming(str(ws)) == {}  # the sandbox gave up, it is not waiting either
    assert not (ws / "ran").exists()


def test_missing_workspace_is_a_user_error(box, tmp_path):
    from assay.errors import UserError

    with pytest.raises(UserError, match="not a directory"):
        box.run(py(box, "pass"), tmp_path / "nope", Limits())


def test_unavailable_without_bwrap(monkeypatch, tmp_path):
    from assay.sandbox.local import LocalSandbox

    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no bwrap on PATH
    with pytest.raises(SandboxUnavailable) as err:
        LocalSandbox()
    msg = str(err.value)
    assert "apt-get install bubblewrap" in msg and "--unsafe-no-sandbox" in msg
    with pytest.raises(SandboxUnavailable):
        make_sandbox("local")
    assert isinstance(make_sandbox("local", unsafe_no_sandbox=True), object)


# ---------------------------------------------------------------------------- CLI


def invoke(args, **kw):
    from assay.cli import app

    return CliRunner().invoke(app, ["sandbox", "run", *args], **kw)


def test_cli_run_passes_output_and_exit_code(tmp_path):
    (tmp_path / "in.txt").write_text("hello")
    res = invoke(["--workspace", str(tmp_path), "--", "python3", "-c",
                  "import sys; print(open('in.txt').read()); print('err', file=sys.stderr); sys.exit(5)"])
    assert res.exit_code == 5
    assert "hello" in res.stdout and "err" in res.stderr


def test_cli_timeout_and_truncation_are_marked(tmp_path):
    res = invoke(["--timeout", "0.5", "--workspace", str(tmp_path), "--", "sleep", "5"])
    assert res.exit_code == 124
    assert "timeout" in res.stderr
    res = invoke(["--workspace", str(tmp_path), "--", "python3", "-c", "print('y' * (3 << 20))"])
    assert "stdout truncated" in res.stderr
    assert len(res.stdout) <= (1 << 20) + 1


def test_cli_fresh_workspace_is_removed(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    res = invoke(["--", "python3", "-c", "import os; open('f', 'w').write('x'); print(os.listdir('.'))"])
    assert res.exit_code == 0, res.stderr
    assert res.stdout.strip() == "['f']"
    assert list(tmp_path.iterdir()) == []


def test_cli_stdin_file(tmp_path):
    (tmp_path / "job.json").write_text('{"a": 1}')
    res = invoke(["--stdin", str(tmp_path / "job.json"), "--", "cat"])
    assert res.exit_code == 0 and res.stdout == '{"a": 1}'


def test_cli_through_the_entry_point_sets_exit_status(tmp_path):
    out = subprocess.run([sys.executable, "-m", "assay.cli", "sandbox", "run", "--workspace", str(tmp_path),
                          "--", "sh", "-c", "echo hi; exit 7"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 7 and out.stdout == "hi\n"
    out = subprocess.run([sys.executable, "-m", "assay.cli", "sandbox", "run", "--workspace",
                          str(tmp_path / "missing"), "--", "true"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--workspace" in out.stderr


def test_cli_unsafe_flag_uses_no_sandbox(tmp_path):
    res = invoke(["--unsafe-no-sandbox", "--workspace", str(tmp_path), "--", "python3", "-c",
                  "import os; print(os.getcwd())"])
    assert res.exit_code == 0
    assert res.stdout.strip() == str(tmp_path.resolve())


def test_site_packages_hidden_stdlib_only(box, tmp_path):
    code = ("import json, os, site; "
            "print(json.dumps({d: os.listdir(d) for d in site.getsitepackages() if os.path.isdir(d)}))")
    res = box.run(py(box, code), tmp_path, Limits(wall_s=10))
    assert res.exit_code == 0, res.stderr
    seen = json.loads(res.stdout)
    assert seen and all(entries == [] for entries in seen.values()), seen


def test_fallback_without_cgroups(tmp_path):
    from assay.sandbox.local import LocalSandbox

    sb = LocalSandbox(cgroups=False)
    assert sb.cgroups.parents == []
    res = sb.run(py(sb, "x = b'\\x01' * (400 << 20)"), tmp_path, Limits(wall_s=10, memory_mb=100))
    assert res.exit_code == 1 and res.killed_reason == "memory"  # RLIMIT_AS -> MemoryError
    code = ("import os, sys, time\nn = 0\ntry:\n    while n < 200:\n        if os.fork() == 0:\n"
            "            time.sleep(30); os._exit(0)\n        n += 1\nexcept OSError:\n    print(n)\n")
    res = sb.run(py(sb, code), tmp_path, Limits(wall_s=10, pids=16))
    assert res.exit_code == 0 and int(res.stdout) < 16  # RLIMIT_NPROC
    if os.geteuid() == 0:
        from assay.sandbox.local import UID_BASE

        left = [e.name for e in os.scandir("/proc") if e.name.isdigit() and _uid_of(e.path) in
                range(UID_BASE, UID_BASE + 512)]
        assert left == [] or _not_ours(left)


def _uid_of(path: str) -> int | None:
    try:
        return os.stat(path).st_uid
    except OSError:
        return None


def _not_ours(pids: list[str]) -> bool:
    """Other sandboxes (other tests, other engineers' runs) may be live at the same moment;
    ours slept with 'time.sleep(30)' in their cmdline."""
    for pid in pids:
        try:
            if b"time.sleep(30); os._exit(0)" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return False
        except OSError:
            continue
    return True


def test_cleanup_on_errors(box, tmp_path, monkeypatch):
    from assay.sandbox import local

    def boom(*a, **kw):
        raise RuntimeError("spawn failed")

    monkeypatch.setattr(local, "run_process", boom)
    with pytest.raises(RuntimeError, match="spawn failed"):
        box.run(py(box, "pass"), tmp_path, Limits())
    for parent in box.cgroups.parents:
        assert list(parent.glob(f"assay-{os.getpid()}-*")) == []
    assert tmp_path.stat().st_uid == os.getuid()
    assert local._slots._held == set()  # the uid slot was released


def test_stale_run_cgroups_of_dead_processes_are_removed(box):
    from assay.sandbox.local import CgroupLayout

    if not box.cgroups.parents:
        pytest.skip("no writable cgroups here")
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = [parent / f"assay-{dead.pid}-7" for parent in box.cgroups.parents]
    for d in stale:
        d.mkdir()
    CgroupLayout.detect()
    assert [d for d in stale if d.exists()] == []


def test_broken_bwrap_fails_at_construction(tmp_path, monkeypatch):
    from assay.sandbox.local import LocalSandbox

    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: Creating new namespace failed: Operation not permitted' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    with pytest.raises(SandboxUnavailable, match="Creating new namespace failed"):
        LocalSandbox()


# -- options for kernel mode: ro_paths, python_path, dev_paths ------------------------------------

def test_ro_paths_are_visible_read_only_even_under_a_0700_parent(tmp_path):
    from assay.sandbox.local import LocalSandbox

    locked = tmp_path / "locked"
    shared = locked / "venvlike"
    shared.mkdir(parents=True)
    (shared / "lib.txt").write_text("from the host")
    (shared / "private.txt").write_text("owner only")
    (shared / "private.txt").chmod(0o600)
    locked.chmod(0o700)  # like /root: the slot uid could not traverse it on the host
    sb = LocalSandbox(ro_paths=[str(shared), str(tmp_path / "missing")])
    ws = tmp_path / "ws"
    ws.mkdir()
    code = ("import os\nprint(open(%r).read())\n"
            "try:\n    open(%r, 'w')\nexcept OSError as e:\n    print('write', e.errno)\n"
            "try:\n    open(%r).read()\nexcept OSError as e:\n    print('private', e.errno)\n"
            "print(os.path.exists(%r))\n") % (str(shared / "lib.txt"), str(shared / "new.txt"),
                                               str(shared / "private.txt"), str(tmp_path / "missing"))
    res = sb.run(py(sb, code), ws, Limits(wall_s=10))
    assert res.exit_code == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "from the host"
    assert lines[1] == "write 30"  # EROFS
    if os.geteuid() == 0:  # the slot uid reads with its own permissions: files must be o+r
        assert lines[2] == "private 13"
    assert lines[-1] == "False"
    assert not (shared / "new.txt").exists()


def test_the_home_directory_and_the_folders_holding_it_are_never_shown(tmp_path, monkeypatch):
    from assay.sandbox.local import LocalSandbox

    home = tmp_path / "users" / "me"
    (home / "tools").mkdir(parents=True)
    (home / ".netrc").write_text("machine api login secret\n")
    (home / "tools" / "lib.txt").write_text("a tool")
    (tmp_path / "link-to-home").symlink_to(home)
    monkeypatch.setenv("HOME", str(home))
    for shown in (home, home / "tools" / "..", tmp_path / "link-to-home", tmp_path / "users", tmp_path, "/"):
        with pytest.raises(SandboxUnavailable, match="is or holds the home directory"):
            LocalSandbox(ro_paths=[str(shown)], self_check=False)
    # a folder of its own under the home directory is shown, and nothing beside it
    sb = LocalSandbox(ro_paths=[str(home / "tools")])
    code = ("print(open(%r).read())\ntry:\n    open(%r).read()\nexcept OSError as e:\n    print('netrc', e.errno)\n"
            % (str(home / "tools" / "lib.txt"), str(home / ".netrc")))
    ws = tmp_path / "ws"
    ws.mkdir()
    res = sb.run(py(sb, code), ws, Limits(wall_s=10))
    assert res.stdout.split("\n")[:2] == ["a tool", "netrc 2"], res.stderr  # ENOENT: not there at all


def test_python_path_is_returned_and_sees_its_site_packages(tmp_path):
    from assay.sandbox.local import LocalSandbox

    sb = LocalSandbox(ro_paths=[sys.prefix], python_path=sys.executable, site_packages=True)
    assert sb.python() == sys.executable
    code = "import sys, typer; print(sys.prefix); print(typer.__file__)"
    res = sb.run(py(sb, code), tmp_path, Limits(wall_s=30))
    assert res.exit_code == 0, res.stderr
    prefix, typer_file = res.stdout.split()
    assert prefix == sys.prefix and typer_file.startswith(sys.prefix)
    assert LocalSandbox(self_check=False).python() == os.path.realpath(os.path.join(sys.base_prefix, "bin", "python3"))


_SPARE_DEVICES = [d for d in ("/dev/fuse", "/dev/kvm", "/dev/vsock", "/dev/loop-control") if os.path.exists(d)]


@pytest.mark.skipif(not _SPARE_DEVICES, reason="no device node outside bwrap's default /dev to bind")
def test_dev_paths_are_bound_when_present_and_drop_rlimit_as(tmp_path):
    from assay.sandbox.local import LocalSandbox

    dev = _SPARE_DEVICES[0]
    sb = LocalSandbox(cgroups=False, dev_paths=[dev, "/dev/assay-no-such-device"])
    assert sb.dev_paths == [dev]
    code = ("import os, stat, resource as r; print(stat.S_ISCHR(os.stat(%r).st_mode)); "
            "print(r.getrlimit(r.RLIMIT_AS)[0])") % dev
    res = sb.run(py(sb, code), tmp_path, Limits(wall_s=10, memory_mb=300))
    assert res.exit_code == 0, res.stderr
    assert res.stdout.split() == ["True", str(resource_infinity())]
    # without dev_paths: the node is not there, and without cgroups memory falls back to RLIMIT_AS
    plain = LocalSandbox(cgroups=False)
    res = plain.run(py(plain, "import os, resource as r; print(os.path.exists(%r), r.getrlimit(r.RLIMIT_AS)[0])"
                       % dev), tmp_path, Limits(wall_s=10, memory_mb=300))
    assert res.stdout.split() == ["False", str(300 << 20)], res.stderr


def resource_infinity() -> int:
    import resource

    return resource.RLIM_INFINITY
