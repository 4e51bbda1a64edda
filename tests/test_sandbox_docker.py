"""The Docker backend's contract, against a real engine (skipped only where none answers)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from assay.sandbox.base import Limits, SandboxUnavailable

pytestmark = pytest.mark.docker

IMAGE = "assay-sandbox:py311"


@pytest.fixture(scope="module")
def client(docker_image):
    from assay.sandbox.docker import connect

    c = connect()
    yield c
    c.close()


@pytest.fixture(scope="module")
def sb(client):
    from assay.sandbox.docker import DockerSandbox

    box = DockerSandbox(IMAGE, run_id="pytest-docker", pool_size=1)
    yield box
    box.close()


@pytest.fixture
def ws(tmp_path):
    d = tmp_path / "ws"
    d.mkdir()
    return d


def py(sb, ws, code, stdin=None, **limits):
    limits.setdefault("wall_s", 5.0)
    return sb.run([sb.python(), "-c", code], ws, Limits(**limits), stdin=stdin)


def test_exit_code_stdout_stderr(sb, ws):
    r = py(sb, ws, "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)")
    assert (r.exit_code, r.stdout, r.stderr) == (3, "out\n", "err\n")
    assert not r.timed_out and r.killed_reason is None
    assert py(sb, ws, "pass").exit_code == 0


def test_python_is_the_image_interpreter(sb, ws):
    r = py(sb, ws, "import sys; print(sys.executable, sys.version_info[:2])")
    assert r.stdout.strip() == "/usr/bin/python3 (3, 11)"


def test_stdin_is_piped(sb, ws):
    r = py(sb, ws, "import sys, json; print(json.load(sys.stdin)['x'] * 2)", stdin=b'{"x": 21}')
    assert r.stdout == "42\n"
    # no stdin: reading gets EOF at once instead of hanging
    r = py(sb, ws, "import sys; print(repr(sys.stdin.read()))", wall_s=3)
    assert r.stdout == "''\n" and not r.timed_out


def test_large_stdin(sb, ws):
    data = b"x" * (3 << 20)
    r = py(sb, ws, "import sys; print(len(sys.stdin.buffer.read()))", stdin=data)
    assert r.stdout == f"{len(data)}\n"


def test_timeout_is_124_and_kills_everything(sb, ws):
    t = time.monotonic()
    r = py(sb, ws, "import subprocess, time; subprocess.Popen(['sleep', '60'], start_new_session=True);"
                   "print('started', flush=True); time.sleep(60)", wall_s=1.0)
    assert time.monotonic() - t < 5
    assert r.exit_code == 124 and r.timed_out and r.killed_reason == "timeout"
    assert r.stdout == "started\n"
    # the container that ran it was replaced; nothing of it survives into the next run
    r = sb.run(["sh", "-c", "ls /proc | grep -c '^[0-9]'"], ws, Limits(wall_s=5))
    assert r.exit_code == 0 and int(r.stdout) <= 6, r.stdout  # init, sleep, sh, ls, grep


def test_setsid_grandchild_does_not_outlive_the_run(sb, ws):
    r = py(sb, ws, "import os, subprocess; subprocess.Popen(['sleep', '60'], start_new_session=True,"
                   "stdout=subprocess.DEVNULL); print('ok')", wall_s=3)
    assert r.exit_code == 0 and r.stdout == "ok\n" and r.duration_s < 2.5
    r = sb.run(["sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"], ws, Limits(wall_s=5))
    assert "sleep 60" not in r.stdout


def test_command_cannot_kill_the_agent_or_leave_a_process_behind(sb, ws):
    r = sb.run(["sh", "-c", "setsid sleep 61 & kill -9 $PPID; echo rc=$?"], ws, Limits(wall_s=5))
    assert r.exit_code == 0 and r.stdout == "rc=1\n", r
    r = sb.run(["sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"], ws, Limits(wall_s=5))
    assert "sleep 61" not in r.stdout and "docker-init" in r.stdout


def test_output_is_capped_and_flagged(sb, ws):
    r = py(sb, ws, "import sys; sys.stdout.write('a' * 5000); sys.stderr.write('b' * 10)",
           output_bytes=1000)
    assert r.stdout == "a" * 1000 and r.stdout_truncated
    assert r.stderr == "b" * 10 and not r.stderr_truncated
    started = len(sb.started)
    r = py(sb, ws, "import sys; sys.stderr.write('e' * 3000); print('done')", output_bytes=1000)
    assert r.stderr == "e" * 1000 and r.stderr_truncated and r.stdout == "done\n"
    assert py(sb, ws, "print('again')").stdout == "again\n"
    assert len(sb.started) == started  # a capped (but finished) run keeps its warm container
    r = py(sb, ws, "import sys\nwhile True: sys.stdout.write('x' * 65536)", output_bytes=1000, wall_s=10)
    assert r.killed_reason == "output" and r.stdout_truncated and len(r.stdout) == 1000
    assert r.duration_s < 8


def test_environment_is_cleared(sb, ws):
    os.environ["ASSAY_SECRET_TEST"] = "leak"
    try:
        r = py(sb, ws, "import os, json; print(json.dumps(dict(os.environ)))", env={"MY_VAR": "1"})
    finally:
        del os.environ["ASSAY_SECRET_TEST"]
    import json

    env = json.loads(r.stdout)
    assert env["MY_VAR"] == "1"
    assert set(env) <= {"PATH", "HOME", "LANG", "MY_VAR", "PWD", "LC_CTYPE"}, env


def test_no_network(sb, ws):
    r = py(sb, ws, "import socket\n"
                   "print(sorted(n for _, n in socket.if_nameindex()))\n"
                   "s = socket.socket(); s.settimeout(2)\n"
                   "try:\n    s.connect(('1.1.1.1', 80)); print('connected')\n"
                   "except OSError as e:\n    print('blocked', e.errno)")
    assert r.stdout.splitlines()[0] == "['lo']"
    assert r.stdout.splitlines()[1].startswith("blocked")


def test_read_only_root_and_non_root_user(sb, ws):
    r = py(sb, ws, "import os\nprint(os.getuid(), os.getgid())\n"
                   "for p in ('/etc/x', '/usr/lib/x', '/root/x'):\n"
                   "    try:\n        open(p, 'w'); print('wrote', p)\n"
                   "    except OSError as e:\n        print('denied', e.errno)\n"
                   "open('/tmp/t', 'w').write('ok'); open('here', 'w').write('ok'); print('tmp ok')")
    lines = r.stdout.splitlines()
    assert lines[0] == "1000 1000"
    assert all(line.startswith("denied") for line in lines[1:4]), lines
    assert lines[4] == "tmp ok"


def test_no_privilege_escalation(sb, ws):
    r = sb.run(["sh", "-c", "grep -E 'CapEff|NoNewPrivs' /proc/self/status"], ws, Limits(wall_s=5))
    caps = dict(line.split(":\t") for line in r.stdout.splitlines())
    assert int(caps["CapEff"], 16) == 0 and caps["NoNewPrivs"].strip() == "1"


def test_workspace_round_trip(sb, ws):
    (ws / "keep.txt").write_text("keep\n")
    (ws / "gone.txt").write_text("gone\n")
    (ws / "sub").mkdir()
    (ws / "sub" / "edit.py").write_text("x = 1\n")
    r = sb.run(["sh", "-c", "cat keep.txt; rm gone.txt; echo 'x = 2' > sub/edit.py; mkdir -p new/d;"
                            "echo hi > new/d/f; ln -s /etc/passwd evil; ln -s keep.txt ok"],
               ws, Limits(wall_s=5))
    assert r.exit_code == 0 and r.stdout == "keep\n", r
    assert not (ws / "gone.txt").exists()
    assert (ws / "sub" / "edit.py").read_text() == "x = 2\n"
    assert (ws / "new" / "d" / "f").read_text() == "hi\n"
    assert not (ws / "evil").is_symlink()  # a link out of the workspace is not copied back
    assert os.readlink(ws / "ok") == "keep.txt"
    # a run that writes nothing leaves the directory alone and sees only its own files
    before = sorted(p.relative_to(ws).as_posix() for p in ws.rglob("*"))
    r = sb.run(["sh", "-c", "ls -A . /tmp | sort"], ws, Limits(wall_s=5))
    assert sorted(p.relative_to(ws).as_posix() for p in ws.rglob("*")) == before
    assert "gone.txt" not in r.stdout


def test_memory_hog_is_killed_and_the_pool_recovers(sb, ws):
    r = py(sb, ws, "b = bytearray(400 << 20); print('survived')", memory_mb=128, wall_s=10)
    assert r.exit_code != 0 and "survived" not in r.stdout
    assert py(sb, ws, "print('fine')", memory_mb=128).stdout == "fine\n"


def test_fork_bomb_is_contained(sb, ws):
    r = py(sb, ws, "import os, time\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n"
                   "            time.sleep(30); os._exit(0)\n        n += 1\n"
                   "except OSError:\n    print('limited at', n, flush=True)", pids=32, wall_s=5)
    assert r.stdout.startswith("limited at"), r
    assert int(r.stdout.split()[-1]) <= 32
    assert r.duration_s < 4  # the sleeping children did not keep the run alive
    r = sb.run(["sh", "-c", "ls /proc | grep -c '^[0-9]'"], ws, Limits(wall_s=5))
    assert int(r.stdout) <= 6, r.stdout


def test_container_removed_after_close_and_labels(client, ws):
    from assay.sandbox.docker import DockerSandbox

    box = DockerSandbox(IMAGE, run_id="pytest-close", pool_size=1)
    assert box.run(["true"], ws, Limits()).exit_code == 0
    running = client.containers.list(filters={"label": "assay.run=pytest-close"})
    assert len(running) == 1
    attrs = running[0].attrs["HostConfig"]
    assert attrs["NetworkMode"] == "none" and attrs["ReadonlyRootfs"] is True
    assert attrs["CapDrop"] == ["ALL"] and attrs["PidsLimit"] > 0 and attrs["Memory"] > 0
    assert running[0].labels["assay"] == "sandbox"
    box.close()
    assert client.containers.list(all=True, filters={"label": "assay.run=pytest-close"}) == []


def test_gc_removes_leftover_labelled_containers(client):
    from assay.sandbox.docker import gc

    c = client.containers.create(IMAGE, ["sleep", "infinity"],
                                 labels={"assay": "sandbox", "assay.run": "pytest-gc"})
    other = client.containers.create(IMAGE, ["sleep", "infinity"], labels={"assay.test": "unrelated"})
    import socket

    owner = subprocess.Popen(["sleep", "60"])
    live = client.containers.create(IMAGE, ["sleep", "infinity"], labels={
        "assay": "sandbox", "assay.run": "pytest-gc-live", "assay.owner": f"{socket.gethostname()}:{owner.pid}"})
    try:
        assert gc(client, run_id="pytest-gc") == 1
        assert client.containers.list(all=True, filters={"label": "assay.run=pytest-gc"}) == []
        assert other.id in [x.id for x in client.containers.list(all=True)]
        assert gc(client, run_id="pytest-gc-live") == 0  # its owner is still running
        owner.kill()
        owner.wait()
        assert gc(client, run_id="pytest-gc-live") == 1
    finally:
        other.remove(force=True)
        owner.kill()
        owner.wait()
        if live.id in [x.id for x in client.containers.list(all=True)]:
            live.remove(force=True)


def test_leftover_containers_are_removed_when_a_process_is_terminated(client, tmp_path):
    script = (
        "import sys, time; from pathlib import Path; from assay.sandbox.docker import DockerSandbox;"
        "from assay.sandbox.base import Limits;"
        "sb = DockerSandbox('%s', run_id='pytest-sigterm', pool_size=1);"
        "sb.run(['true'], Path(sys.argv[1]), Limits()); print('ready', flush=True); time.sleep(60)" % IMAGE)
    p = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    assert len(client.containers.list(filters={"label": "assay.run=pytest-sigterm"})) == 1
    p.terminate()
    p.wait(timeout=30)
    assert client.containers.list(all=True, filters={"label": "assay.run=pytest-sigterm"}) == []


def test_missing_image_is_a_user_error(client):
    from assay.sandbox.docker import DockerSandbox

    with pytest.raises(SandboxUnavailable, match="assay sandbox build"):
        DockerSandbox("assay-no-such-image:none", run_id="pytest-missing")


def test_no_engine_is_one_clear_sentence(monkeypatch):
    from assay.sandbox.docker import DockerSandbox, connect

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent")
    with pytest.raises(SandboxUnavailable) as e:
        connect()
    assert "no Docker engine answers at unix:///nonexistent" in str(e.value)
    assert e.value.exit_code == 2
    with pytest.raises(SandboxUnavailable):
        DockerSandbox(IMAGE)


def test_no_engine_with_pinned_api_version(monkeypatch):
    import docker

    from assay.sandbox.docker import connect

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent")
    monkeypatch.setattr(docker, "from_env", lambda **kw: docker.DockerClient(
        base_url="unix:///nonexistent", version="1.41"))
    with pytest.raises(SandboxUnavailable, match="no Docker engine"):
        connect()


def test_cli_no_engine_exits_2(monkeypatch, tmp_path):
    env = dict(os.environ, DOCKER_HOST="unix:///nonexistent")
    p = subprocess.run([sys.executable, "-m", "assay.cli", "sandbox", "gc"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().startswith("assay: no Docker engine answers") and "Traceback" not in p.stderr


def test_build_is_cached_and_base_images_are_never_pulled(client):
    from assay.errors import UserError
    from assay.sandbox.image import build_image

    msgs = []
    info = build_image(client, IMAGE, progress=msgs.append)
    assert info["built"] is False and info["seconds"] < 5 and "skipping build" in msgs[0]
    cfg = client.images.get(IMAGE).attrs["Config"]
    assert cfg["User"] == "1000:1000" and cfg["WorkingDir"] == "/workspace"
    with pytest.raises(UserError, match="never pulls"):
        build_image(client, "assay-test:never", from_image="assay-no-such-base:latest")


def test_cli_gc_reports_count(client):
    client.containers.create(IMAGE, ["sleep", "infinity"], labels={"assay": "sandbox", "assay.run": "pytest-cli"})
    p = subprocess.run([sys.executable, "-m", "assay.cli", "sandbox", "gc", "--run", "pytest-cli"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "removed 1 sandbox container" in p.stdout, p.stderr
