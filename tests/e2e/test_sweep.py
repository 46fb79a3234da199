"""Real Ray Tune sweeps tracked in MLflow: ASHA over Ray Train trials, and PBT's in-process
trials. The sweep flow (Optuna search, best trial evaluated and registered) runs on two Ray
nodes in test_multinode.py."""

from __future__ import annotations

import pytest

from conftest import REPO

pytestmark = pytest.mark.e2e


def test_pbt_exploits_the_better_trial_and_keeps_one_run_per_trial(project, ray_session):
    """Synchronous PBT over two trials: at the perturbation the worse trial restarts from the
    better one's checkpoint with explored params, and every trial keeps one MLflow run."""
    import yaml
    from mlflow.tracking import MlflowClient

    from ganpipe import stages
    from ganpipe.config import load_config
    from ganpipe.tune.runner import run_sweep
    from ganpipe.tune.space import SweepConfig

    base = yaml.safe_load((REPO / "configs/dcgan-digits.yaml").read_text())
    lr = [1.0e-4, 1.0e-3]
    sweep = SweepConfig.model_validate(
        {
            "metric": "fcd",
            "mode": "min",
            "search": "random",
            "num_samples": 2,
            "seed": 0,
            "max_concurrent_trials": 2,
            # synch: both trials are ranked at step 20, so the worse one is always exploited.
            "scheduler": {"name": "pbt", "synch": True, "perturbation_interval": 20, "mutations": {"optim.lr_g": {"loguniform": lr}}},
            "space": {"optim.lr_g": {"loguniform": lr}},
            # Checkpoints at 10, 20, 30 and evaluations at 20, 30: the step-10 result has no
            # metric (PBT skips it), step 20 is the one perturbation, 30 is too early for another.
            "overrides": {
                "train.steps": 30, "train.log_every": 10, "train.checkpoint_every": 10, "train.sample_every": 30,
                "eval.every": 20, "eval.during_training_samples": 100, "eval.classifier_steps": 150,
                "model.params.g_width": 8, "model.params.d_width": 8, "data.use_dvc": False,
            },
        }
    )
    cfg = load_config(REPO / "configs/dcgan-digits.yaml", ["data.use_dvc=false"])
    res = run_sweep(base, sweep, stages.prepare_stage(cfg, project).path, project)

    assert [(r.status, r.steps, r.error) for r in res.rows] == [("FINISHED", 30, None)] * 2, res.rows
    assert all(r.metric > 0 and r.run_id for r in res.rows)
    assert res.best is min(res.rows, key=lambda r: r.metric)
    assert res.best_config.optim.lr_g == res.best.params["optim.lr_g"]

    c = MlflowClient(f"sqlite:///{project.root / 'mlflow.db'}")
    parent = c.get_run(res.parent_run_id)
    children = c.search_runs([parent.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{res.parent_run_id}'")
    # One run per trial, however often PBT restarted it (every trial restarts at the perturbation).
    assert sorted(r.info.run_id for r in children) == sorted(r.run_id for r in res.rows)
    by_trial = {r.data.tags["ganpipe.trial_id"]: r for r in children}
    for run in children:
        assert run.info.status == "FINISHED" and run.data.tags["ganpipe.train_status"] == "FINISHED"
        assert "ganpipe.failure" not in run.data.tags  # a pause is not a failure
        assert sorted({m.step for m in c.get_metric_history(run.info.run_id, "eval.fcd")}) == [20, 30]
        assert run.data.metrics["start_step"] == 20  # restarted from a step-20 checkpoint
        assert "pbt/restore-step-20.json" in {a.path for a in c.list_artifacts(run.info.run_id, "pbt")}

    # Exactly one trial continued from the other's checkpoint, with that trial's lr explored:
    # scaled by 0.8 or 1.2, or resampled from the mutation's range. Its params keep the lr it started with.
    exploited = [t for t, run in by_trial.items() if not run.data.tags["ganpipe.restored_from"].startswith(f"{t}@")]
    assert len(exploited) == 1, {t: run.data.tags["ganpipe.restored_from"] for t, run in by_trial.items()}
    (source,) = set(by_trial) - set(exploited)
    assert by_trial[exploited[0]].data.tags["ganpipe.restored_from"] == f"{source}@20"
    row = {r.trial_id: r for r in res.rows}
    new, src_lr = row[exploited[0]].params["optim.lr_g"], row[source].params["optim.lr_g"]
    assert float(by_trial[exploited[0]].data.tags["trial.optim.lr_g"]) == pytest.approx(new)
    assert float(by_trial[exploited[0]].data.params["optim.lr_g"]) != pytest.approx(new)
    assert any(new == pytest.approx(f * src_lr) for f in (0.8, 1.2)) or lr[0] <= new <= lr[1]


def test_trials_stopped_by_asha_release_their_workers(project, ray_session, monkeypatch):
    """Each trial's worker needs both CPUs, so a trial ASHA stopped must give them back
    before the next one can start (Ray Train's cleaner needs the State API of the local Ray)."""
    import yaml

    from ganpipe import stages
    from ganpipe.config import load_config
    from ganpipe.train.local_ray import START_TIMEOUT_ENV
    from ganpipe.tune.runner import run_sweep
    from ganpipe.tune.space import SweepConfig

    # A leaked reservation is never given back, so a bounded wait still catches it (in 3 min, not
    # the default 15), while 30 s attempts leave a loaded machine time to release a stopped
    # trial's CPUs and place the next trial's worker.
    monkeypatch.setenv(START_TIMEOUT_ENV, "30")
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
                "train.sample_every": 80, "train.cpus_per_worker": 2, "train.worker_wait_s": 180, "eval.every": 40,
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
