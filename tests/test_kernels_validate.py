"""The GPU validation script's CPU dry run: gate + correctness flow over one problem's
fast/slow/wrong kernels and the three generated cheats (not a GPU result)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="needs torch: pip install -e '.[kernels]'")
pytest.importorskip("triton", reason="needs triton (interpreter mode on CPU)")

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_validate_cpu_dry_run(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "benches" / "kernels" / "gpu_validate.py"), "--cpu",
                        "--problems", "1_Swish", "--out", str(tmp_path), "--parallel", "2"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rep = json.loads((tmp_path / "kernels_gpu_validate_cpu_dryrun.json").read_text())
    assert rep["passed"] and rep["cpu_dry_run"]
    runs = rep["problems"]["level1/1_Swish"]["runs"]
    assert runs["fast"]["correct"] and runs["slow"]["correct"]
    assert not runs["wrong"]["correct"] and not runs["reuse"]["correct"] and not runs["pointer_cache"]["correct"]
    gate = rep["problems"]["level1/1_Swish"]["gate"]
    assert "stream-thread" in gate["side_stream"] and "output-cache" in gate["pointer_cache"]
    assert "CPU DRY RUN" in (tmp_path / "kernels_gpu_validate_cpu_dryrun.md").read_text()
