"""Two Ray nodes on one machine: a training run spread over both, then the sweep flow (a seeded
Optuna search over Ray Train trials, tracked in MLflow) whose trials land on both, its best
trial evaluated and registered. The one end-to-end check of sweep -> registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.e2e

SWEEP = """
metric: fcd
mode: min
search: optuna
seed: 0
num_samples: 2
max_concurrent_trials: 2
scheduler: {name: fifo}
space:
  loss.name: {choice: [nonsaturating, hinge]}
  optim.lr_g: {loguniform: [1.0e-4, 5.0e-4]}
overrides:
  train.steps: 30
  train.log_every: 10
  # Checkpoints at 10, 20, 30 and evaluations at 15, 30: Optuna gets results without the metric too.
  train.checkpoint_every: 10
  train.sample_every: 30
  eval.every: 15
  eval.num_samples: 100
  eval.during_training_samples: 100
  eval.classifier_steps: 100
  model.params.g_width: 8
  model.params.d_width: 8
"""


def _optuna_replay(space_path):
    """The draws a fresh searcher with the sweep's seed makes, in order."""
    from ganpipe.tune.runner import _searcher
    from ganpipe.tune.space import load_sweep, to_tune

    sweep = load_sweep(space_path)
    search = _searcher(sweep, "eval.fcd", "min")
    search.set_search_properties("eval.fcd", "min", to_tune(sweep.space, sweep.search))
    return [search.suggest(f"replay-{i}") for i in range(sweep.num_samples)]


def test_two_node_training_and_optuna_sweep_to_registry(project, prefect_server, tmp_path):
    from mlflow.tracking import MlflowClient
    from prefect.settings import PREFECT_API_URL

    space = tmp_path / "space.yaml"
    space.write_text(SWEEP)
    # The driver's flow runs report to this session's Prefect test server.
    env = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, "PREFECT_API_URL": PREFECT_API_URL.value()}
    r = subprocess.run([sys.executable, str(REPO / "tests/e2e/multinode_driver.py"), str(project.root), str(space)], cwd=project.root, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    # Ray may print its own warnings to stdout (e.g. about worker start-up); the result is the JSON line.
    out = json.loads([line for line in r.stdout.splitlines() if line.startswith("{")][-1])
    assert len(out["nodes"]) == 2
    assert out["world"] == [2, 2]
    assert sorted(set(out["train_nodes"])) == out["nodes"]  # one rank on each node

    s = out["sweep"]
    assert [(t["status"], t["steps"], t["error"]) for t in s["trials"]] == [("FINISHED", 30, None)] * 2, s["trials"]
    assert all(t["metric"] > 0 for t in s["trials"]) and s["trial_steps"] == 60
    assert sorted(set(out["trial_nodes"])) == out["nodes"]  # the two trials ran on different nodes
    # Seeded: the trials are exactly the draws of a fresh searcher with the same seed.
    assert sorted(sorted(t["params"].items()) for t in s["trials"]) == sorted(sorted(p.items()) for p in _optuna_replay(space))

    c = MlflowClient(f"sqlite:///{project.root / 'mlflow.db'}")
    parent = c.get_run(s["parent_run_id"])
    assert parent.data.metrics["trials"] == 2 and parent.data.metrics["trials_failed"] == 0
    children = c.search_runs([parent.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{s['parent_run_id']}'")
    assert sorted(r.info.run_id for r in children) == sorted(t["run_id"] for t in s["trials"])
    assert sorted(r.data.tags["loss"] for r in children) == sorted(t["params"]["loss.name"] for t in s["trials"])
    for run in children:
        # Reported while training (for the scheduler); the best run also gets the final evaluation.
        assert sorted({m.step for m in c.get_metric_history(run.info.run_id, "eval.fcd")}) == [15, 30]
    arts = {a.path for a in c.list_artifacts(s["parent_run_id"], "sweep")}
    assert {"sweep/summary.md", "sweep/summary.json", "sweep/metric_by_param.png"} <= arts

    best = min(s["trials"], key=lambda t: t["metric"])
    assert s["best"]["trial_id"] == best["trial_id"]
    assert s["evaluation"]["fcd"] > 0
    assert s["registered"]["alias"] == "champion"
    mv = c.get_model_version(s["registered"]["name"], s["registered"]["version"])
    assert mv.run_id == best["run_id"] and mv.tags["loss"] == best["params"]["loss.name"]
