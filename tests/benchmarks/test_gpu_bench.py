"""benchmarks/gpu.py is the one command for GPU figures; on a machine without CUDA it must say
so at once, and its CPU check mode must run the whole script."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GPU = ROOT / "benchmarks" / "gpu.py"

pytestmark = pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the behaviour without CUDA")


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(GPU), *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def test_without_cuda_it_fails_fast_and_says_what_is_missing():
    t0 = time.monotonic()
    r = _run()
    assert r.returncode == 2, r.stderr
    assert "CPU-only build" in r.stderr or "no CUDA device" in r.stderr, r.stderr
    assert "--allow-cpu" in r.stderr  # and how to check the script anyway
    result = json.loads(r.stdout.strip().splitlines()[-1].removeprefix("RESULT "))
    assert result["value"] is None and result["skipped"]
    assert "warm-up" not in r.stdout  # nothing was prepared or run
    assert time.monotonic() - t0 < 60  # imports only (torch), no data preparation
    assert _run("--skip-without-cuda").returncode == 0  # as benchmarks/run_all.py calls it


@pytest.mark.slow
def test_cpu_check_mode_runs_the_script_end_to_end():
    """The shipped configs resolve, the data prepares, the plain loop, FLOP count and table run
    (compile off: compiling on 2 CPU cores alone takes a minute)."""
    r = _run("--allow-cpu", "--models", "dcgan-64", "--compile", "off", "--no-ray", "--steps", "2", "--warmup", "1", "--set", "train.batch_size=4", timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = json.loads(r.stdout.strip().splitlines()[-1].removeprefix("RESULT "))["rows"]
    assert [(row["model"], row["compile"]) for row in rows] == [("dcgan-64", False)]
    assert all(row["images_per_s"] > 0 and row["flops_per_step"] > 1e6 for row in rows)
