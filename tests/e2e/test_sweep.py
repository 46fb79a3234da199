"""Real Ray Tune sweeps tracked in MLflow: ASHA over Ray Train trials here. PBT (its exploit
and explore, one MLflow run per trial) runs with its checkpoints in an S3 bucket in
test_s3_storage.py; the sweep flow (Optuna search, best trial evaluated and registered) on two
Ray nodes in test_multinode.py."""

from __future__ import annotations

import pytest

from conftest import REPO

pytestmark = pytest.mark.e2e


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
                "model.params.ema_decay": 0.0,  # the raw G: an EMA lags the learning trial at a 40-step rung
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
