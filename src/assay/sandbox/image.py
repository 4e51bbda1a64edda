"""Build the Docker sandbox image, with or without a registry.

Without a base image we `debootstrap --variant=minbase` a Debian bookworm rootfs (Python
3.11, git, ca-certificates) from the apt mirror, add a non-root `sandbox` user (uid 1000)
and `docker import` it with its config (Cmd, WorkingDir, User, Env). With `from_image` we
build a two-line Dockerfile on top of an image the engine already has (never pulled).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

from assay.errors import UserError

DEFAULT_IMAGE = "assay-sandbox:py311"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ["python3", "git", "ca-certificates"]
UID = 1000
WORKDIR = "/workspace"

# Config the imported image carries (a rootfs tar has none of its own).
CHANGES = [
    'CMD ["/bin/sleep", "infinity"]',
    f"WORKDIR {WORKDIR}",
    f"USER {UID}:{UID}",
    "ENV PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 HOME=/tmp",
    "LABEL assay.image=sandbox",
]

Progress = Callable[[str], None]


def image_exists(client, name: str) -> bool:
    import docker

    try:
        client.images.get(name)
        return True
    except docker.errors.ImageNotFound:
        return False


def build_image(client, name: str = DEFAULT_IMAGE, *, from_image: str | None = None,
                rebuild: bool = False, progress: Progress = lambda msg: None,
                mirror: str = MIRROR) -> dict:
    """Build `name` unless it exists (or `rebuild`); return {"image", "built", "seconds", "size_mb"}."""
    start = time.monotonic()
    if not rebuild and image_exists(client, name):
        progress(f"{name} exists; skipping build (use --rebuild to rebuild)")
        return _summary(client, name, built=False, start=start)
    if from_image:
        _build_from(client, name, from_image, progress)
    else:
        _build_debootstrap(client, name, progress, mirror)
    return _summary(client, name, built=True, start=start)


def _summary(client, name: str, *, built: bool, start: float) -> dict:
    img = client.images.get(name)
    return {"image": name, "id": img.short_id, "built": built,
            "seconds": round(time.monotonic() - start, 1),
            "size_mb": round(img.attrs.get("Size", 0) / 1e6, 1)}


def _dockerfile(base: str) -> str:
    # Works on Debian/Ubuntu (useradd), Alpine/busybox (adduser -D) and images whose uid 1000 exists.
    return f"""FROM {base}
USER root
RUN id -u {UID} >/dev/null 2>&1 || useradd -u {UID} -m -s /bin/sh sandbox 2>/dev/null \\
    || adduser -D -u {UID} sandbox; mkdir -p {WORKDIR} && chown {UID}:{UID} {WORKDIR}
WORKDIR {WORKDIR}
USER {UID}:{UID}
ENV LANG=C.UTF-8 HOME=/tmp
LABEL assay.image=sandbox
CMD ["/bin/sleep", "infinity"]
"""


def _build_from(client, name: str, base: str, progress: Progress) -> None:
    import docker

    if not image_exists(client, base):
        raise UserError(f"base image {base!r} is not on this Docker engine; load or pull it first "
                        f"(assay never pulls), or drop --from to build offline with debootstrap.")
    progress(f"building {name} FROM {base}")
    try:
        _, logs = client.images.build(fileobj=io.BytesIO(_dockerfile(base).encode()), tag=name,
                                      rm=True, forcerm=True, pull=False)
        for chunk in logs:
            line = (chunk.get("stream") or "").strip()
            if line:
                progress(line)
    except docker.errors.BuildError as e:
        raise UserError(f"building {name} from {base} failed ({e.msg}); check that the base image "
                        f"has a shell and useradd or adduser.") from None


def _build_debootstrap(client, name: str, progress: Progress, mirror: str) -> None:
    if shutil.which("debootstrap") is None:
        raise UserError("debootstrap is not installed; install it (apt-get install debootstrap) or "
                        "pass --from IMAGE with a base image the engine already has.")
    tmp = Path(tempfile.mkdtemp(prefix="assay-rootfs-"))
    root = tmp / "rootfs"
    try:
        progress(f"debootstrap {SUITE} ({', '.join(PACKAGES)}) from {mirror}")
        t = time.monotonic()
        cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
               SUITE, str(root), mirror]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        tail: list[str] = []
        for line in proc.stdout:
            line = line.rstrip()
            tail = (tail + [line])[-20:]
            if line.startswith(("I: Retrieving", "I: Validating", "I: Configuring", "I: Unpacking",
                                "I: Installing", "I: Extracting", "I: Base system")):
                progress(line[3:])
        if proc.wait() != 0:
            raise UserError(f"debootstrap failed (exit {proc.returncode}): {' | '.join(tail[-3:])}; "
                            f"check that {mirror} is reachable.")
        progress(f"debootstrap done in {time.monotonic() - t:.0f} s; adding user and trimming")
        _prepare_rootfs(root)
        progress(f"importing rootfs as {name}")
        _import(client, root, name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _prepare_rootfs(root: Path) -> None:
    etc = root / "etc"
    with open(etc / "passwd", "a") as f:
        f.write(f"sandbox:x:{UID}:{UID}:assay sandbox:/home/sandbox:/bin/sh\n")
    with open(etc / "group", "a") as f:
        f.write(f"sandbox:x:{UID}:\n")
    if (etc / "shadow").exists():
        with open(etc / "shadow", "a") as f:
            f.write("sandbox:!:19000:0:99999:7:::\n")
    for d in ("home/sandbox", WORKDIR.lstrip("/")):
        (root / d).mkdir(parents=True, exist_ok=True)
        os.chown(root / d, UID, UID)
    # Lean: no package caches, lists, docs or man pages inside the image.
    for pattern in ("var/cache/apt/archives/*.deb", "var/lib/apt/lists/*", "usr/share/doc/*",
                    "usr/share/man/*", "usr/share/locale/*", "var/log/*.log"):
        for p in root.glob(pattern):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            elif p.name != "lock":
                p.unlink(missing_ok=True)


def _import(client, root: Path, name: str) -> None:
    repo, _, tag = name.rpartition(":") if ":" in name.split("/")[-1] else (name, "", "latest")
    # GNU tar keeps device nodes, hard links, owners and xattrs exactly; stream it to the engine.
    tar = subprocess.Popen(["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-cf", "-", "."],
                           stdout=subprocess.PIPE)
    try:
        out = client.api.import_image_from_data(_chunks(tar.stdout), repository=repo, tag=tag, changes=CHANGES)
    finally:
        tar.stdout.close()
        rc = tar.wait()
    if rc != 0:
        raise UserError(f"packing the rootfs for {name} failed (tar exit {rc}).")
    if "error" in str(out).lower() and "errorDetail" in str(out):
        raise UserError(f"docker import of {name} failed: {out}")


def _chunks(f, size: int = 1 << 20):
    while block := f.read(size):
        yield block


def ensure_image(name: str = DEFAULT_IMAGE, progress: Progress = lambda msg: None) -> dict:
    """Build `name` offline if this engine lacks it (used by the test suite on a fresh machine)."""
    from assay.sandbox.docker import connect

    client = connect()
    try:
        return build_image(client, name, progress=progress)
    finally:
        client.close()
