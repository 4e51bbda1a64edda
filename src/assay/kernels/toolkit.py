"""Where CUDA's compiler is, and which GPU architectures to build for, without importing torch.

torch.utils.cpp_extension takes its toolkit from CUDA_HOME, else the nvcc on PATH, else
/usr/local/cuda. Users whose torch came from PyPI can take nvcc from PyPI too
(`nvidia-cuda-nvcc`, `nvidia-nvvm`, `nvidia-cuda-crt` and `nvidia-cuda-cccl` at torch's CUDA
version): those wheels unpack into site-packages/nvidia/cu13/{bin,include,lib,nvvm}, a toolkit
root torch can build with, except that the runtime wheel has only `libcudart.so.13` and the
linker's `-lcudart` needs `libcudart.so`. `linker_dir` supplies that name in a directory of the
build's own. CCCL is named because torch's headers include cuda_fp16.h, which needs its
<nv/target>; some torch releases pull it in (2.15, through nvshmem) and others do not (2.11).
"""

from __future__ import annotations

import functools
import glob
import os
import re
import shutil
import subprocess
from pathlib import Path

# Built for when no GPU can be asked (a compile-only check on a machine without one): the H200's.
FALLBACK_ARCH = "9.0"


def cuda_home(env: dict[str, str] | None = None, site_dirs: list[str] | None = None,
              default_root: Path = Path("/usr/local/cuda")) -> Path | None:
    """The toolkit root torch would use, or the newest PyPI one in `site_dirs`; None if none."""
    env = os.environ if env is None else env
    for key in ("CUDA_HOME", "CUDA_PATH"):
        if env.get(key):
            return Path(env[key])
    nvcc = shutil.which("nvcc", path=env.get("PATH"))
    if nvcc:
        return Path(nvcc).resolve().parent.parent
    if (default_root / "bin" / "nvcc").exists():
        return default_root
    if site_dirs is None:
        from assay.kernels.sandbox import python_paths

        site_dirs = python_paths()
    found = sorted(p for d in site_dirs for p in glob.glob(os.path.join(d, "nvidia", "cu*", "bin", "nvcc")))
    return Path(found[-1]).parent.parent if found else None


def linker_dir(home: Path, dest: Path) -> Path | None:
    """`dest` holding a `libcudart.so` link when the toolkit has only a versioned runtime
    library (the PyPI wheels); None when the toolkit is complete or has no runtime at all."""
    libs = [home / "lib64", home / "lib"]
    if any((d / "libcudart.so").exists() for d in libs):
        return None
    versioned = sorted(p for d in libs for p in d.glob("libcudart.so.*"))
    if not versioned:
        return None
    dest.mkdir(parents=True, exist_ok=True)
    link = dest / "libcudart.so"
    if link.is_symlink() and os.readlink(link) != str(versioned[0]):
        link.unlink()
    if not link.is_symlink():
        link.symlink_to(versioned[0])
    return dest


@functools.lru_cache(maxsize=1)
def gpu_arch_list() -> str | None:
    """The visible GPUs' compute capabilities as TORCH_CUDA_ARCH_LIST ("9.0", "8.0;9.0"), read
    from nvidia-smi so that build processes need not start CUDA beside a timing run; None when
    nvidia-smi is missing or answers nothing."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    caps = {c.strip() for c in out.stdout.splitlines() if re.fullmatch(r"\d+\.\d+", c.strip())}
    if out.returncode != 0 or not caps:
        return None
    return ";".join(sorted(caps, key=lambda c: tuple(int(x) for x in c.split("."))))


def build_env(ws: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """What a CUDA build process needs beyond the sandbox's clean environment: CUDA_HOME, the
    linker directory (LIBRARY_PATH, relative to the build directory `ws`, which the worker
    anchors at its cwd), and TORCH_CUDA_ARCH_LIST."""
    env = os.environ if env is None else env
    out: dict[str, str] = {}
    home = cuda_home(env)
    if home is not None:
        out["CUDA_HOME"] = str(home)
        if linker_dir(home, ws / ".cudart") is not None:
            out["LIBRARY_PATH"] = ".cudart"
    out["TORCH_CUDA_ARCH_LIST"] = env.get("TORCH_CUDA_ARCH_LIST") or gpu_arch_list() or FALLBACK_ARCH
    return out


def pip_requirements(torch_cuda: str | None) -> list[str]:
    """The PyPI wheels that make a toolkit root for torch built with CUDA `torch_cuda` ("13.2"):
    only CUDA 13 and later lay their wheels out as one root (site-packages/nvidia/cu13)."""
    if not torch_cuda or int(torch_cuda.split(".")[0]) < 13:
        return []
    major_minor = ".".join(torch_cuda.split(".")[:2])
    return [f"{name}=={major_minor}.*"
            for name in ("nvidia-cuda-nvcc", "nvidia-nvvm", "nvidia-cuda-crt", "nvidia-cuda-cccl")]


if __name__ == "__main__":  # `python -m assay.kernels.toolkit`: the pip requirements for nvcc
    import sys

    import torch

    reqs = pip_requirements(torch.version.cuda)
    if not reqs:
        print(f"no CUDA compiler on PyPI fits this torch (CUDA {torch.version.cuda}): install CUDA's "
              "toolkit and set CUDA_HOME", file=sys.stderr)
    print(" ".join(reqs))
