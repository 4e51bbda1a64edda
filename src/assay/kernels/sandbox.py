"""The sandbox kernel candidates build and run in: the local (bubblewrap) sandbox with this
interpreter's environment (a virtualenv with torch) visible read-only, the candidate's build
directory as the only writable path, no network, and on CUDA the /dev/nvidia* nodes."""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import site
import sys
from pathlib import Path

from assay.sandbox.local import LocalSandbox, holds_home_directory


def nvidia_devices() -> list[str]:
    """Every NVIDIA device node (nvidia0..N, nvidiactl, nvidia-uvm[-tools], nvidia-modeset,
    nvidia-caps/): CUDA_VISIBLE_DEVICES picks the GPU; device minors need not follow its order."""
    return sorted(glob.glob("/dev/nvidia*"))


def python_paths() -> list[str]:
    """What this interpreter needs to import torch: its prefix (a venv: pyvenv.cfg, bin/) and
    every site-packages on its path (the venv's, or the system's for --system-site-packages)."""
    paths = [sys.prefix, sys.base_prefix]
    paths += site.getsitepackages() if hasattr(site, "getsitepackages") else []
    if site.ENABLE_USER_SITE and site.getusersitepackages():
        paths.append(site.getusersitepackages())
    return list(dict.fromkeys(paths))


def compiler_roots(env: dict[str, str] | None = None) -> list[str]:
    """Where the compilers CC and CXX name are installed (the directory above their bin/), as
    given and with links resolved. The builds run them (torch's C++/CUDA extensions, Triton's
    launcher stubs), and one outside /usr is otherwise missing in the sandbox: the H200 image's
    CC=/opt/gcc/bin/gcc made every Triton and CUDA build fail with "No such file". Never the home
    directory or a directory above it (CC=~/bin/gcc would show candidates every file there, and
    what they print reaches the model): then only the compiler's own file."""
    env = os.environ if env is None else env
    roots: list[str] = []
    for key in ("CC", "CXX"):
        words = shlex.split(env.get(key, ""))
        exe = shutil.which(words[0]) if words else None
        if exe is None:
            continue
        for path in (Path(exe).absolute(), Path(exe).resolve()):
            folder = path.parent
            root = folder.parent if folder.name == "bin" and len(folder.parts) > 2 else folder
            roots.append(str(path if holds_home_directory(root) else root))
    return list(dict.fromkeys(roots))


def kernel_sandbox(device: str) -> LocalSandbox:
    """A LocalSandbox whose python() is this interpreter (unresolved, so a venv stays a venv).
    On CUDA: the /dev/nvidia* nodes, /sys read-only (without sysfs cuInit fails with
    CUDA_ERROR_OPERATING_SYSTEM: the driver reads /sys/module/nvidia* and the PCI topology), and
    the CUDA toolkit's root read-only wherever it is. On both: the compilers' roots read-only."""
    cuda = device.startswith("cuda")
    extra = []
    if cuda:
        from assay.kernels.toolkit import cuda_home

        home = cuda_home()  # a toolkit outside /usr (e.g. /opt/cuda) must be visible to the build
        extra = ["/sys"] + ([str(home)] if home is not None else [])
    return LocalSandbox(site_packages=True, ro_paths=python_paths() + compiler_roots() + extra,
                        python_path=sys.executable, dev_paths=nvidia_devices() if cuda else ())
