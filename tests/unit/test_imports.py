"""Every ganpipe module imports on its own, in a process that imported nothing of ganpipe
before: no import cycles, no module that works only after another one was imported.

One process importing all modules in a loop would miss a cycle that only bites in some
orders, so each module gets a fresh child (see import_probe.py: forked after the third-party
libraries are loaded once, which keeps the test fast on a small machine).
"""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("import_probe.py")
SKIP = {"ganpipe.__main__"}  # runs the CLI when imported


def modules(folder: Path, prefix: str) -> dict[str, str]:
    """Module name -> source file for every module and package under `folder`."""
    out = {}
    for m in pkgutil.iter_modules([str(folder)]):
        name = prefix + m.name
        if m.ispkg:
            out[name] = str(folder / m.name / "__init__.py")
            out |= modules(folder / m.name, name + ".")
        else:
            out[name] = str(folder / f"{m.name}.py")
    return {k: v for k, v in out.items() if k not in SKIP}


@pytest.fixture(scope="module")
def imported() -> dict[str, dict]:
    mods = {"ganpipe": str(REPO / "ganpipe" / "__init__.py"), **modules(REPO / "ganpipe", "ganpipe.")}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    r = subprocess.run(
        [sys.executable, str(PROBE)], input=json.dumps(mods), capture_output=True, text=True, cwd=REPO, env=env, timeout=600
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the probe forks one child per module")
def test_every_module_imports_alone(imported):
    assert len(imported) > 50  # the walk found the package
    failed = {name: r["error"] for name, r in imported.items() if r["error"]}
    assert not failed, "modules that fail when imported alone:\n" + "\n".join(f"--- {n}\n{e}" for n, e in failed.items())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the probe forks one child per module")
def test_config_is_a_leaf(imported):
    """Anything may import the config types: they import nothing of ganpipe but its errors."""
    assert imported["ganpipe.config"]["own"] == ["ganpipe", "ganpipe.config", "ganpipe.errors"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the probe forks one child per module")
def test_probe_catches_a_cycle_that_only_one_order_hits(tmp_path):
    """a imports b, b takes a name from a: importing b first works, a first fails."""
    pkg = tmp_path / "cyclepkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("import cyclepkg.b\nA = 1\n")
    (pkg / "b.py").write_text("from cyclepkg.a import A\n")
    mods = {f"cyclepkg.{m}": str(pkg / f"{m}.py") for m in ("b", "a")}
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    r = subprocess.run([sys.executable, str(PROBE)], input=json.dumps(mods), capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["cyclepkg.b"]["error"] is None
    assert "partially initialized module" in out["cyclepkg.a"]["error"]
