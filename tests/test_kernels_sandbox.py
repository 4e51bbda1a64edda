"""Kernel candidates build and run inside the local sandbox: the venv's torch is importable
there, but files outside the build directory, the network and the venv (for writing) are not.
The same candidate run with --unsafe-no-sandbox (a plain process) does escape, which shows
the sandboxed run is what stops it. Needs torch + triton (CPU, Triton interpreter) and bwrap."""

from __future__ import annotations

import os
import shutil
import socket
import threading
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="kernel-mode tests need torch: pip install -e '.[kernels]'")
pytest.importorskip("triton", reason="kernel-mode tests need triton (interpreter mode on CPU)")
if shutil.which("bwrap") is None:
    pytest.skip("the local sandbox needs bubblewrap", allow_module_level=True)

from assay.kernels.evaluate import EvalConfig, KernelEvaluator  # noqa: E402
from assay.kernels.problem import load_problem  # noqa: E402
from assay.kernels.sandbox import compiler_roots, kernel_sandbox, nvidia_devices, python_paths  # noqa: E402
from assay.sandbox.unsafe import UnsafeSandbox  # noqa: E402

HERE = Path(__file__).parent / "kernels"
LEGIT = (HERE / "candidates" / "legit_triton_relu.py").read_text()

# The legit Triton ReLU, whose forward also tries to escape. Any escape that works makes it
# raise; inside the sandbox each one fails, so the candidate is correct there.
PROBE = LEGIT + '''

import os as _os
import socket as _socket

_Legit = ModelNew


class ModelNew(_Legit):
    def forward(self, x):
        escaped = []
        try:
            escaped.append("read " + open({secret!r}).read())
        except OSError:
            pass
        try:
            with open({outside!r}, "w") as f:
                f.write("x")
            escaped.append("wrote outside")
        except OSError:
            pass
        try:
            _socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
            escaped.append("connected")
        except OSError:
            pass
        if escaped:
            raise RuntimeError("escaped: " + "; ".join(escaped))
        return super().forward(x)
'''


@pytest.fixture(scope="module")
def relu():
    return load_problem(HERE / "problems" / "level1" / "1_ReLU.py", shrink=256)


@pytest.fixture()
def listener():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    accepted = []

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            accepted.append(1)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield srv.getsockname()[1], accepted
    srv.close()


def probe(tmp_path: Path, port: int) -> tuple[str, Path, Path]:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    outside = tmp_path / "written_by_candidate"
    return PROBE.format(secret=str(secret), outside=str(outside), port=port), secret, outside


def past_gate(ev: KernelEvaluator, problem, source: str):
    """The static gate rejects this probe (open, socket, try); a cheat can get past a static
    check, so the run behind it must hold on its own: build + evaluate with the gate bypassed."""
    assert not ev.gate(source).ok
    return ev.evaluate_built(problem, source, "probe", ev.build(problem, source))


def test_default_evaluator_runs_candidates_in_the_local_sandbox(tmp_path, relu, listener):
    port, accepted = listener
    ev = KernelEvaluator(EvalConfig(device="cpu", cache_dir=str(tmp_path / "cache")))
    assert ev.sandbox.name == "local"
    legit = ev.evaluate(relu, LEGIT, "legit")
    assert legit.correct, legit.message  # torch + triton import from the venv inside
    source, _, outside = probe(tmp_path, port)
    v = past_gate(ev, relu, source)
    assert v.correct, v.message  # every escape attempt failed inside the sandbox
    assert not outside.exists() and not accepted


def test_the_same_probe_escapes_without_the_sandbox(tmp_path, relu, listener):
    port, accepted = listener
    ev = KernelEvaluator(EvalConfig(device="cpu", cache_dir=str(tmp_path / "cache")), UnsafeSandbox())
    source, _, outside = probe(tmp_path, port)
    v = past_gate(ev, relu, source)
    assert v.status == "runtime"
    assert "escaped: read TOPSECRET; wrote outside; connected" in v.message
    assert outside.exists() and accepted


def test_kernel_sandbox_sees_the_venv_read_only(tmp_path):
    import sys

    from assay.sandbox.base import Limits

    sb = kernel_sandbox("cpu")
    assert sb.python() == sys.executable and sb.dev_paths == []
    assert sys.prefix in python_paths()
    code = ("import sys, torch, os; print(sys.prefix, os.getuid()); "
            "open(os.path.join(os.path.dirname(torch.__file__), 'assay_probe'), 'w')")
    res = sb.run([sb.python(), "-c", code], tmp_path, Limits(wall_s=120, memory_mb=8192, pids=256))
    assert res.stdout.split()[0] == sys.prefix, res.stderr[-2000:]
    assert "Read-only file system" in res.stderr or "Permission denied" in res.stderr
    assert res.exit_code != 0


def test_cuda_kernel_sandbox_binds_the_nvidia_nodes_and_sysfs(tmp_path):
    from assay.sandbox.base import Limits

    sb = kernel_sandbox("cuda:0")
    assert sb.dev_paths == nvidia_devices()  # [] on a machine without a GPU
    code = "import os; print(os.path.isdir('/sys/module'), sorted(n for n in os.listdir('/dev') if 'nvidia' in n))"
    res = sb.run([sb.python(), "-S", "-c", code], tmp_path, Limits(wall_s=30))
    assert res.exit_code == 0, res.stderr
    assert res.stdout.strip() == f"True {[p.split('/')[-1] for p in nvidia_devices()]}"
    cpu = kernel_sandbox("cpu")
    res = cpu.run([cpu.python(), "-S", "-c", code], tmp_path, Limits(wall_s=30))
    assert cpu.dev_paths == [] and res.stdout.strip() == "False []", res.stderr


def test_cuda_kernel_sandbox_shows_a_toolkit_outside_usr_read_only(tmp_path, monkeypatch):
    from assay.sandbox.base import Limits

    toolkit = tmp_path / "opt-cuda"
    (toolkit / "bin").mkdir(parents=True)
    (toolkit / "bin" / "nvcc").write_text("toolkit marker\n")
    monkeypatch.setenv("CUDA_HOME", str(toolkit))
    ws = tmp_path / "ws"
    ws.mkdir()
    code = (f"print(open('{toolkit}/bin/nvcc').read().strip())\n"
            f"open('{toolkit}/bin/x', 'w')")
    sb = kernel_sandbox("cuda:0")
    res = sb.run([sb.python(), "-S", "-c", code], ws, Limits(wall_s=30))
    assert res.stdout.strip() == "toolkit marker", res.stderr
    assert res.exit_code != 0 and ("Read-only" in res.stderr or "Permission denied" in res.stderr)
    cpu = kernel_sandbox("cpu")  # a CPU run has no use for the toolkit
    res = cpu.run([cpu.python(), "-S", "-c", code], ws, Limits(wall_s=30))
    assert "toolkit marker" not in res.stdout


def test_a_toolkit_whose_root_is_the_home_directory_is_refused_with_the_reason(tmp_path, monkeypatch):
    from assay.errors import UserError

    home = tmp_path / "home"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "nvcc").write_text("#!/bin/sh\necho nvcc straight in ~/bin\n")
    (home / "bin" / "nvcc").chmod(0o755)
    (home / ".netrc").write_text("machine api login secret\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("CUDA_HOME", raising=False)
    monkeypatch.delenv("CUDA_PATH", raising=False)
    monkeypatch.setenv("PATH", f"{home}/bin:{os.environ['PATH']}")
    # cuda_home() takes nvcc's folder's parent: the whole home directory
    with pytest.raises(UserError, match="is or holds the home directory"):
        kernel_sandbox("cuda:0")
    kernel_sandbox("cpu")  # a CPU run does not show the toolkit, so nothing is refused


@pytest.mark.parametrize("device", ["cpu", "cuda:0"])
def test_the_compilers_cc_and_cxx_name_run_in_the_sandbox_wherever_they_are_installed(tmp_path, monkeypatch, device):
    # The H200 image's CC=/opt/gcc/bin/gcc: outside /usr, so missing in the sandbox, and every
    # Triton launcher and CUDA extension build failed there. Here a wrapper in a prefix under
    # /tmp (which the sandbox replaces with its own) stands for it; CXX reaches its prefix by a link.
    from assay.sandbox.base import Limits

    gcc_root = tmp_path / "opt" / "gcc"
    (gcc_root / "bin").mkdir(parents=True)
    (gcc_root / "libexec").mkdir()
    (gcc_root / "libexec" / "cc1").write_text("the compiler proper\n")
    cc = gcc_root / "bin" / "gcc"
    cc.write_text(f"#!/bin/sh\ncat {gcc_root}/libexec/cc1\n")
    cc.chmod(0o755)
    (tmp_path / "other-bin").mkdir()
    (tmp_path / "other-bin" / "g++").symlink_to(cc)
    monkeypatch.setenv("CC", str(cc))
    monkeypatch.setenv("CXX", f"{tmp_path}/other-bin/g++ -std=c++17")
    ws = tmp_path / "ws"
    ws.mkdir()
    sb = kernel_sandbox(device)
    for compiler in (str(cc), f"{tmp_path}/other-bin/g++"):
        res = sb.run(["/bin/sh", "-c", f"{compiler} && touch {gcc_root}/bin/x"], ws, Limits(wall_s=30))
        assert res.stdout.strip() == "the compiler proper", (compiler, res.stderr)
        assert res.exit_code != 0 and not (gcc_root / "bin" / "x").exists()  # read-only
    assert str(tmp_path / "opt" / "gcc") in compiler_roots()
    assert compiler_roots({"CC": "/bin/sh"}) in (["/bin"], ["/bin", "/usr"])  # never the root itself
    assert compiler_roots({"CC": "no-such-compiler-anywhere"}) == []
    # a compiler in ~/bin: the home directory is never shown, only the compiler's file
    home = tmp_path / "home"
    (home / "bin").mkdir(parents=True)
    (home / ".netrc").write_text("machine api login secret\n")
    (home / "bin" / "cc").write_text("#!/bin/sh\necho home compiler\n")
    (home / "bin" / "cc").chmod(0o755)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CC", str(home / "bin" / "cc"))
    monkeypatch.delenv("CXX")
    assert compiler_roots() == [str(home / "bin" / "cc")]
    sb = kernel_sandbox(device)
    res = sb.run(["/bin/sh", "-c", f"{home}/bin/cc; cat {home}/.netrc"], ws, Limits(wall_s=30))
    assert res.stdout.strip() == "home compiler" and "secret" not in res.stdout, res.stderr


def test_check_device_runs_torch_where_the_candidates_run(tmp_path):
    from assay.sandbox.base import SandboxUnavailable
    from assay.sandbox.local import LocalSandbox

    KernelEvaluator(EvalConfig(device="cpu", cache_dir=str(tmp_path)), kernel_sandbox("cpu")).check_device()
    # a sandbox with the stdlib only (no venv inside): the same check fails, naming why
    bare = KernelEvaluator(EvalConfig(device="cpu", cache_dir=str(tmp_path)), LocalSandbox())
    with pytest.raises(SandboxUnavailable, match=r"torch cannot use cpu where candidates run "
                                                 r"\(local sandbox: .*No module named 'torch'\)"):
        bare.check_device()


def test_check_device_on_cuda_says_what_the_sandbox_cannot_reach(tmp_path):
    import torch

    from assay.sandbox.base import SandboxUnavailable

    ev = KernelEvaluator(EvalConfig(device="cuda:0", cache_dir=str(tmp_path)), kernel_sandbox("cuda:0"))
    if torch.cuda.is_available():
        ev.check_device()  # the GPU works inside the sandbox
        return
    with pytest.raises(SandboxUnavailable, match=r"torch cannot use cuda:0 where candidates run \(local sandbox: "
                                                 r".+\); the sandbox's uid must be able to open /dev/nvidia\*"):
        ev.check_device()
    assert list(tmp_path.iterdir()) == []  # the check's workspace is gone
    # --unsafe-no-sandbox is no way out of a check that already ran without one
    unsafe = KernelEvaluator(EvalConfig(device="cuda:0", cache_dir=str(tmp_path)), UnsafeSandbox())
    with pytest.raises(SandboxUnavailable, match=r"torch cannot use cuda:0 where candidates run \(a plain process "
                                                 r"with the candidates' environment: .+\); check the CUDA install") as e:
        unsafe.check_device()
    assert "--unsafe-no-sandbox" not in str(e.value)


def test_a_run_starts_from_a_workspace_holding_only_its_builds_and_fresh_files(tmp_path):
    """A candidate's earlier process (its build, or an earlier evaluation) could leave anything in
    its workspace: all of it but the extension builds goes before the next run, and the harness's
    files are written new, so a link left at one of their names writes nowhere outside."""
    import os

    from assay.kernels.evaluate import fresh_workspace

    ws, outside = tmp_path / "ws", tmp_path / "outside"
    (ws / "build" / "relu_ext").mkdir(parents=True)
    (ws / "build" / "relu_ext" / "relu_ext.so").write_bytes(b"\x7fELF built")
    (ws / "json.py").write_text("import os; os.write = None\n")  # beside the worker: first on sys.path
    (ws / "__pycache__").mkdir()
    (ws / "__pycache__" / "assay_kernel_timing.cpython-311.pyc").write_bytes(b"forged")
    (ws / ".local" / "lib" / "python3.11" / "site-packages").mkdir(parents=True)  # HOME is the workspace
    (ws / ".local" / "lib" / "python3.11" / "site-packages" / "x.pth").write_text("import os\n")
    (ws / "assay_kernel_timing.py").mkdir()  # a directory where a file goes
    (ws / "triton" / "cache").mkdir(parents=True)
    (ws / "triton" / "cache" / "kernel.cubin").write_bytes(b"forged")
    outside.mkdir()
    target = outside / "bashrc"
    target.write_text("the user's own\n")
    (ws / "spec_eval.json").symlink_to(target)  # the parent would write the spec through it
    (ws / "candidate.py").symlink_to(outside / "new_file")
    fresh_workspace(ws, {"candidate.py": "# the candidate\n", "spec_eval.json": "{}",
                         "assay_kernel_timing.py": "# timing\n"})
    assert sorted(p.name for p in ws.iterdir()) == ["assay_kernel_timing.py", "build", "candidate.py", "spec_eval.json"]
    assert (ws / "build" / "relu_ext" / "relu_ext.so").read_bytes() == b"\x7fELF built"
    assert not any(p.is_symlink() for p in ws.iterdir())
    assert (ws / "candidate.py").read_text() == "# the candidate\n" and (ws / "spec_eval.json").read_text() == "{}"
    assert target.read_text() == "the user's own\n" and sorted(p.name for p in outside.iterdir()) == ["bashrc"]

    (ws / "build").rename(ws / "real_build")
    (ws / "build").symlink_to(outside)  # a link in place of the build directory is not kept
    fresh_workspace(ws, {})
    assert list(ws.iterdir()) == [] and target.exists()


def test_a_workspace_whose_directories_the_candidate_closed_is_emptied_all_the_same():
    # the candidate's files are the user's, and a directory without read or write permission
    # stops shutil.rmtree for any user but root: emptied as an unprivileged user (forked)
    import os
    import tempfile

    from assay.kernels.evaluate import fresh_workspace

    top = Path(tempfile.mkdtemp(prefix="assay-closed-"))
    ws = top / "ws"
    try:
        (ws / "triton" / "cache").mkdir(parents=True)
        (ws / "triton" / "cache" / "kernel.cubin").write_bytes(b"forged")
        (ws / "build").mkdir()
        uid = 65534 if os.getuid() == 0 else os.getuid()  # root is let through any permission
        for d in (top, ws, ws / "triton", ws / "triton" / "cache", ws / "build"):
            os.chown(d, uid, -1)
        os.chmod(top, 0o755)
        os.chmod(ws / "triton" / "cache", 0)
        os.chmod(ws / "triton", 0o500)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit code
            code = 1
            try:
                os.setuid(uid)
                fresh_workspace(ws, {"candidate.py": "# the candidate\n"})
                code = 0 if sorted(p.name for p in ws.iterdir()) == ["build", "candidate.py"] else 3
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        for d in (ws / "triton", ws / "triton" / "cache"):
            if d.exists():
                os.chmod(d, 0o700)
        shutil.rmtree(top)


def test_the_worker_python_imports_nothing_from_its_workspace(tmp_path):
    """The worker runs as a script in its workspace: a plain Python puts that directory first on
    sys.path (and the cwd, for -c), so a json.py a candidate left there would run in place of json."""
    ev = KernelEvaluator(EvalConfig(device="cpu", cache_dir=str(tmp_path / "cache")))
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "json.py").write_text("raise SystemExit('the planted json ran')\n")
    (ws / "script.py").write_text("import json, sys\nprint(json.__file__, sys.flags.isolated)\n")
    for args in (["script.py"], ["-c", "import json, sys; print(json.__file__, sys.flags.isolated)"]):
        res = ev._launch(ws, args, timeout=60)
        assert res.exit_code == 0, (args, res.stdout, res.stderr)
        path, isolated = res.stdout.split()
        assert path.endswith("/json/__init__.py") and isolated == "1", res.stdout


def test_a_module_a_candidate_plants_in_its_workspace_does_not_run_in_its_next_process(tmp_path, relu):
    """cheat_planted_module.py's build writes a json.py that would turn the evaluation's
    "mismatch" into "correct" (it did, before runs started from a fresh workspace with an
    isolated Python): the kernel returns its input, and the verdict says so."""
    from assay.kernels.gate import GatePolicy
    from assay.kernels.evaluate import source_hash

    source = (HERE / "candidates" / "cheat_planted_module.py").read_text()
    ev = KernelEvaluator(EvalConfig(device="cpu", cache_dir=str(tmp_path), policy=GatePolicy(allow_cpp=True)))
    assert ev.gate(source).rules == ["dynamic-code"]  # its open(); the runs must hold without the gate
    v = ev.evaluate_built(relu, source, "planted", ev.build(relu, source))
    assert v.status == "mismatch", v.message
    assert (tmp_path / source_hash(source, "cpu") / "json.py").exists()  # it did plant one, in each process
