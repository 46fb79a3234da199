"""`make bench` runs every script with the options run_all.py gives it; a renamed or dropped
option only shows after an hour of benchmarking, so check each one against the script's --help."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("bench_run_all", ROOT / "benchmarks" / "run_all.py")
assert _spec and _spec.loader
_run_all = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_run_all)
SUITE = _run_all.SUITE

SCRIPTS = sorted({args[0] for _, full, quick in SUITE for args in (full, quick)})


@pytest.fixture(scope="module")
def helps() -> dict[str, subprocess.CompletedProcess]:
    """Every script's --help, the processes started at once (each spends seconds importing)."""
    procs = {
        s: subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / s), "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        for s in SCRIPTS
        if (ROOT / "benchmarks" / s).exists()
    }
    out = {}
    for s, p in procs.items():
        stdout, stderr = p.communicate(timeout=240)
        out[s] = subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr)
    return out


# One lane runs them all: the fixture starts a process per script, which a second lane would repeat.
@pytest.mark.xdist_group("bench-help")
@pytest.mark.parametrize("script", SCRIPTS)
def test_every_option_run_all_passes_is_one_the_script_takes(script: str, helps) -> None:
    assert (ROOT / "benchmarks" / script).exists(), f"run_all.py runs benchmarks/{script}, which is missing"
    out = helps[script]
    assert out.returncode == 0, out.stderr[-2000:]
    takes = set(re.findall(r"--[a-z][a-z0-9-]*", out.stdout))
    passed = {a for _, full, quick in SUITE for args in (full, quick) if args[0] == script for a in args[1:] if a.startswith("--")}
    assert passed <= takes, f"run_all.py passes {sorted(passed - takes)} to {script}, whose --help lists {sorted(takes)}"
