"""Faults injected for real: a killed worker, a crashing/NaN trial (both `ganpipe.train.faults`),
a killed pipeline, an unreachable tracking server, a full disk. Each run must recover or fail
clearly, losing nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from conftest import REPO

TINY = ["train.log_every=10", "eval.num_samples=100", "eval.classifier_steps=100", "model.params.g_width=8", "model.params.d_width=8"]


def test_killed_worker_resumes_from_latest_checkpoint(ray_session, digits_prepared, tmp_path):
    from ganpipe.config import load_config
    from ganpipe.train.driver import fit
    from ganpipe.train.faults import Faults

    from ganpipe.project import Project

    cfg = load_config(REPO / "configs/dcgan-digits.yaml", TINY + ["train.steps=300", "train.checkpoint_every=100", "train.max_failures=2", "train.run_name=kill-test"])
    t0 = time.time()
    # The worker process exits hard at step 250 (no clean-up, no report), as if killed.
    res = fit(cfg, digits_prepared, Project.load(tmp_path, env={}), faults=Faults(exit_at_step=250))
    # Resumed from the latest checkpoint (step 200, on disk before the worker died): one
    # checkpoint interval at most is redone and none is lost (final step 300).
    assert res.metrics["step"] == 300
    assert res.metrics["start_step"] == 200
    print(f"worker exited at step 250, resumed at {res.metrics['start_step']}, total {time.time() - t0:.1f}s")


def test_sweep_survives_a_diverging_and_a_crashing_trial(project, ray_session, tmp_path):

    from ganpipe import stages
    from ganpipe.config import load_config
    from ganpipe.train.faults import Faults
    from ganpipe.tune.runner import run_sweep
    from ganpipe.tune.space import SweepConfig

    import yaml

    base = yaml.safe_load((REPO / "configs/dcgan-digits.yaml").read_text())
    overrides = {o.split("=")[0]: yaml.safe_load(o.split("=")[1]) for o in TINY}
    sweep = SweepConfig.model_validate(
        {
            "metric": "fcd",
            "mode": "min",
            "search": "grid",
            "max_concurrent_trials": 2,
            "scheduler": {"name": "fifo"},
            "space": {"train.seed": {"grid": [0, 1]}},
            "overrides": {**overrides, "train.steps": 30, "train.checkpoint_every": 30, "train.max_failures": 0, "eval.every": 30, "eval.during_training_samples": 100, "data.use_dvc": False},
        }
    )
    cfg = load_config(REPO / "configs/dcgan-digits.yaml", TINY + ["data.use_dvc=false"])
    prepared = stages.prepare_stage(cfg, project)
    # The trial with seed 1 has NaN losses from step 10 on.
    res = run_sweep(base, sweep, prepared.path, project, faults=lambda params: Faults(nan_loss_at_step=10) if params["train.seed"] == 1 else None)
    status = {r.params["train.seed"]: r for r in res.rows}
    assert status[0].status == "FINISHED" and status[0].metric > 0
    assert status[1].status == "ERROR" and "diverged at step 10" in status[1].error
    assert res.best is status[0]
    c = project.store.client()
    failed = c.get_run(status[1].run_id)
    assert failed.info.status == "FAILED" and "diverged" in failed.data.tags["ganpipe.failure"]
    ev = stages.evaluate_stage(res.best_config, stages.Trained(res.best.run_id, Path(res.best.checkpoint), {}), prepared, project)
    reg = stages.register_stage(res.best_config, ev, prepared, project)
    assert reg.alias == "champion"


def test_unreachable_tracking_fails_before_training(project):
    from dataclasses import replace

    from ganpipe import stages
    from ganpipe.config import load_config
    from ganpipe.errors import TrackingError

    cfg = load_config(REPO / "configs/dcgan-digits.yaml", TINY + ["data.use_dvc=false", "train.steps=10"])
    prepared = stages.prepare_stage(cfg, project)
    unreachable = replace(project, tracking_uri="http://user:hunter2@127.0.0.1:9")  # nothing listens on port 9
    t0 = time.time()
    with pytest.raises(TrackingError) as e:
        stages.train_stage(cfg, prepared, unreachable)
    assert time.time() - t0 < 60
    assert "no MLflow tracking server answers" in e.value.message and "hunter2" not in e.value.message and "***" in e.value.message
    assert not Path(project.runs_storage).exists()  # no training started


def test_tracking_lost_mid_run_loses_no_metrics(tmp_path, digits_prepared, monkeypatch):
    from ganpipe.config import load_config
    from ganpipe.tracking.sink import MlflowSink
    from ganpipe.train.loop import run_training

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    sink = MlflowSink("http://127.0.0.1:9", "0" * 32, spool_dir=str(tmp_path / "spool"))
    cfg = load_config(REPO / "configs/dcgan-digits.yaml", TINY + ["train.steps=60", "train.sample_every=1000"])
    res = run_training(cfg, digits_prepared, sink=sink)
    assert res.step == 60  # training went on
    lines = [json.loads(x) for x in (tmp_path / "spool" / f"unsent-metrics-{'0' * 32}.jsonl").read_text().splitlines()]
    steps = sorted({x["step"] for x in lines if x["key"] == "loss_d"})
    assert steps == [10, 20, 30, 40, 50, 60]  # every point kept for replay


def test_disk_full_leaves_no_checkpoint_that_looks_valid(tmp_path):
    import torch

    from ganpipe.errors import CheckpointError
    from ganpipe.train.checkpoint import save_checkpoint, verify

    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / "generator.pt.partial").symlink_to("/dev/full")  # every write: ENOSPC
    with pytest.raises(CheckpointError, match="could not write checkpoint"):
        save_checkpoint(ck, step=1, recipe_state={"x": torch.ones(2)}, export=({"family": "dcgan"}, {"w": torch.ones(1000)}), config={})
    assert not (ck / "meta.json").exists() and not (ck / "generator.pt").exists()
    with pytest.raises(CheckpointError):
        verify(ck)


def test_divergence_stops_with_a_named_reason(digits_prepared):
    from ganpipe.config import load_config
    from ganpipe.errors import TrainingError
    from ganpipe.train.faults import Faults
    from ganpipe.train.loop import run_training

    cfg = load_config(REPO / "configs/dcgan-digits.yaml", TINY + ["train.steps=50"])
    with pytest.raises(TrainingError, match="diverged at step 20: loss_d is nan"):
        run_training(cfg, digits_prepared, faults=Faults(nan_loss_at_step=20))
