"""Shared fixtures."""

from __future__ import annotations

import pytest

DOCKER_IMAGE = "assay-sandbox:py311"


@pytest.fixture(scope="session")
def docker_image() -> str:
    """The sandbox image's name, built first where the engine answers and it is missing (a fresh
    machine builds it offline once, about a minute); skipped only when no engine answers."""
    from assay.sandbox.docker import engine_available
    from assay.sandbox.image import ensure_image

    if not engine_available():
        pytest.skip("no Docker engine reachable")
    ensure_image(DOCKER_IMAGE)
    return DOCKER_IMAGE


@pytest.fixture(scope="session", params=["local", pytest.param("docker", marks=pytest.mark.docker)])
def sandbox(request):
    """Each sandbox backend that can run here; the rest are skipped with the reason."""
    from assay.sandbox.base import SandboxUnavailable, make_sandbox

    if request.param == "docker":
        request.getfixturevalue("docker_image")
    try:
        box = make_sandbox(request.param, image=DOCKER_IMAGE if request.param == "docker" else None)
    except SandboxUnavailable as e:
        pytest.skip(f"{request.param} backend unavailable: {e}")
    yield box
    box.close()


@pytest.fixture(scope="session")
def local_sandbox():
    """The bubblewrap sandbox alone, for tests of what runs inside it (skipped without bwrap)."""
    from assay.sandbox.base import SandboxUnavailable, make_sandbox

    try:
        box = make_sandbox("local")
    except SandboxUnavailable as e:
        pytest.skip(f"local sandbox unavailable: {e}")
    yield box
    box.close()
