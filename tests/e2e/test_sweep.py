"""A real Ray Tune sweep over Ray Train trials, tracked in MLflow, best trial registered."""

from __future__ import annotations

import pytest

from conftest import REPO

pytestmark = pytest.mark.e2e


def test_sweep_flow_trials_children_and_registration(project, ray_session, prefect_server, tmp_path):
    from mlflow.tracking import MlflowClient

    from flows.sweep import sweep_flow

    space = tmp_path / "space.yaml"
    space.write_text(
        """
metric: fcd
mode: min
search: grid
max_concurrent_trials: 2
scheduler: {name: fifo}
space:
  loss.name: {grid: [nonsaturating, wgan-gp]}
  model.params.d_norm: {grid: [none]}
overrides:
  train.steps: 40
  train.log_every: 20
  train.checkpoint_every: 20
  train.sample_every: 40
  eval.every: 20
  eval.num_samples: 200
  eval.during_training_samples: 100
  eval.classifier_steps: 150
  model.params.g_width: 8
  model.params.d_width: 8
"""
    )
    s = sweep_flow(config_path=str(REPO / "configs/dcgan-digits.yaml"), space_path=str(space), project=str(project))
    assert len(s["trials"]) == 2
    assert {t["params"]["loss.name"] for t in s["trials"]} == {"nonsaturating", "wgan-gp"}
    assert all(t["status"] == "FINISHED" and t["steps"] == 40 and t["metric"] > 0 for t in s["trials"])
    assert s["trial_steps"] == 80
    c = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    parent = c.get_run(s["parent_run_id"])
    assert parent.data.metrics["trials"] == 2 and parent.data.metrics["trials_failed"] == 0
    children = c.search_runs([parent.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{s['parent_run_id']}'")
    assert len(children) == 2 and {r.data.tags["loss"] for r in children} == {"nonsaturating", "wgan-gp"}
    for r in children:
        hist = c.get_metric_history(r.info.run_id, "eval.fcd")
        # reported while training (for the scheduler); the best run also gets the final evaluation
        assert sorted({m.step for m in hist}) == [20, 40]
    arts = {a.path for a in c.list_artifacts(s["parent_run_id"], "sweep")}
    assert {"sweep/summary.md", "sweep/summary.json", "sweep/metric_by_param.png"} <= arts
    best = min(s["trials"], key=lambda t: t["metric"])
    assert s["best"]["trial_id"] == best["trial_id"]
    assert s["registered"]["alias"] == "champion"
    mv = c.get_model_version(s["registered"]["name"], s["registered"]["version"])
    assert mv.run_id == best["run_id"] and mv.tags["loss"] == best["params"]["loss.name"]


def test_trials_stopped_by_asha_release_their_workers(project, ray_session, monkeypatch):
    """Each trial's worker needs both CPUs, so a trial ASHA stopped must give them back
    before the next one can start (Ray Train's cleaner needs the State API of the local Ray)."""
    import yaml

    from ganpipe import stages
    from ganpipe.config import load_config
    from ganpipe.train.local_ray import START_TIMEOUT_ENV
    from ganpipe.tune.runner import run_sweep
    from ganpipe.tune.space import SweepConfig

    monkeypatch.setenv(START_TIMEOUT_ENV, "10")  # a leaked reservation fails a trial in ~30 s, not 15 min
    base = yaml.safe_load((REPO / "configs/dcgan-digits.yaml").read_text())
    sweep = SweepConfig.model_validate(
        {
            "metric": "fcd",
            "mode": "min",
            "search": "grid",
            "max_concurrent_trials": 1,
            "scheduler": {"name": "asha", "grace_period": 40, "reduction_factor": 2},
            # The first trial learns; the others barely move from the untrained FCD, so ASHA stops them at step 40.
            "space": {"optim.lr_g": {"grid": [5.0e-4, 1.0e-9, 2.0e-9]}},
            "overrides": {
                "optim.lr_d": 5.0e-4, "train.steps": 80, "train.log_every": 20, "train.checkpoint_every": 40,
                "train.sample_every": 80, "train.cpus_per_worker": 2, "train.worker_wait_s": 30, "eval.every": 40,
                "eval.during_training_samples": 100, "eval.classifier_steps": 150, "model.params.g_width": 8,
                "model.params.d_width": 8, "data.use_dvc": False,
            },
        }
    )
    cfg = load_config(REPO / "configs/dcgan-digits.yaml", ["data.use_dvc=false"])
    res = run_sweep(base, sweep, stages.prepare_stage(cfg, project).path, project)
    by_lr = {r.params["optim.lr_g"]: r for r in res.rows}
    assert by_lr[5.0e-4].status == "FINISHED" and by_lr[5.0e-4].steps == 80, by_lr[5.0e-4]
    # Stopped at the rung, and the trial after the first stopped one still got both CPUs.
    assert [by_lr[lr].status for lr in (1.0e-9, 2.0e-9)] == ["STOPPED_EARLY", "STOPPED_EARLY"], res.rows
    assert all(by_lr[lr].steps == 40 and by_lr[lr].error is None for lr in (1.0e-9, 2.0e-9))
    assert res.trial_steps == 160 and res.best is by_lr[5.0e-4]
