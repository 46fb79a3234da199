"""Two Ray nodes on one machine: training and sweep trials spread over both, result registered."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.e2e


def test_two_node_training_and_sweep(project):
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    r = subprocess.run([sys.executable, str(REPO / "tests/e2e/multinode_driver.py"), str(project.root)], cwd=project.root, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    # Ray may print its own warnings to stdout (e.g. about worker start-up); the result is the JSON line.
    out = json.loads([line for line in r.stdout.splitlines() if line.startswith("{")][-1])
    assert len(out["nodes"]) == 2
    assert out["world"] == [2, 2]
    assert sorted(set(out["train_nodes"])) == out["nodes"]  # one rank on each node
    assert out["registered"]["alias"] == "champion" and out["eval"]["fcd"] > 0
    assert [t["status"] for t in out["trials"]] == ["FINISHED", "FINISHED"]
    assert sorted(set(out["trial_nodes"])) == out["nodes"]  # the two trials ran on different nodes
