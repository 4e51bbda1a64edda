"""Finding CUDA's compiler (a system toolkit or PyPI's wheels) and what a build process is given."""

from __future__ import annotations

import os
from pathlib import Path

from assay.kernels import toolkit as TK


def fake_toolkit(root: Path, *, unversioned: bool) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "nvcc").write_text("#!/bin/sh\n")
    (root / "bin" / "nvcc").chmod(0o755)
    (root / "lib").mkdir()
    (root / "lib" / "libcudart.so.13").write_text("")
    if unversioned:
        (root / "lib" / "libcudart.so").write_text("")
    return root


def test_cuda_home_prefers_the_environment_then_path_then_pypi_wheels(tmp_path):
    site, nowhere = tmp_path / "site-packages", tmp_path / "no-cuda"
    wheel_root = fake_toolkit(site / "nvidia" / "cu13", unversioned=False)
    system = fake_toolkit(tmp_path / "cuda-13", unversioned=True)

    def home(env, sites=(str(site),), root=nowhere):
        return TK.cuda_home({"PATH": "/nonexistent", **env}, list(sites), root)

    assert home({}) == wheel_root
    assert home({}, root=system) == system
    assert home({"PATH": str(system / "bin")}) == system
    assert home({"CUDA_HOME": "/opt/x", "PATH": str(system / "bin")}) == Path("/opt/x")
    assert home({}, sites=[str(tmp_path / "empty")]) is None


def test_linker_dir_names_the_versioned_runtime_only_when_needed(tmp_path):
    wheel_root = fake_toolkit(tmp_path / "cu13", unversioned=False)
    d = TK.linker_dir(wheel_root, tmp_path / "ws" / ".cudart")
    assert d is not None and os.readlink(d / "libcudart.so") == str(wheel_root / "lib" / "libcudart.so.13")
    assert TK.linker_dir(wheel_root, tmp_path / "ws" / ".cudart") == d  # idempotent
    assert TK.linker_dir(fake_toolkit(tmp_path / "full", unversioned=True), tmp_path / "ws2") is None
    env = TK.build_env(tmp_path / "ws3", {"CUDA_HOME": str(wheel_root), "TORCH_CUDA_ARCH_LIST": "8.0"})
    assert env == {"CUDA_HOME": str(wheel_root), "LIBRARY_PATH": ".cudart", "TORCH_CUDA_ARCH_LIST": "8.0"}
    assert (tmp_path / "ws3" / ".cudart" / "libcudart.so").is_symlink()


def test_arch_list_falls_back_when_no_gpu_answers(tmp_path, monkeypatch):
    monkeypatch.setattr(TK, "gpu_arch_list", lambda: None)
    env = TK.build_env(tmp_path, {"CUDA_HOME": str(tmp_path / "none")})
    assert env["TORCH_CUDA_ARCH_LIST"] == TK.FALLBACK_ARCH and "LIBRARY_PATH" not in env
    monkeypatch.setattr(TK, "gpu_arch_list", lambda: "8.0;9.0")
    assert TK.build_env(tmp_path, {"CUDA_HOME": str(tmp_path)})["TORCH_CUDA_ARCH_LIST"] == "8.0;9.0"


def test_pip_requirements_follow_torchs_cuda():
    assert TK.pip_requirements("13.2") == ["nvidia-cuda-nvcc==13.2.*", "nvidia-nvvm==13.2.*",
                                           "nvidia-cuda-crt==13.2.*", "nvidia-cuda-cccl==13.2.*"]
    assert TK.pip_requirements("12.8") == [] and TK.pip_requirements(None) == []
