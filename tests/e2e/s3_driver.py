"""Runs in its own process, as a cluster node would: S3 credentials and endpoint in its
environment (the test gives them to this process only), its own local Ray whose workers inherit
them, MLflow on a tracking server (MLFLOW_TRACKING_URI) that keeps artifacts in the bucket, and
a project whose `ganpipe.yaml` puts every shared thing under one `s3://` prefix.

Prepares the digits with DVC (pushed to the bucket), trains with a worker killed mid-run
(resumed from the checkpoint in the bucket), evaluates and registers, then runs a synchronous
PBT sweep whose Tune checkpoints live in the bucket. Prints one JSON line.

Usage: s3_driver.py PROJECT"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

TINY = [
    "train.steps=30", "train.log_every=10", "train.checkpoint_every=10", "train.sample_every=30",
    "train.max_failures=1", "eval.num_samples=200", "model.params.g_width=8", "model.params.d_width=8",
    # Sliced Wasserstein distance: no classifier to train first (storage is the subject here).
    "eval.metrics=[swd]", "registry.gate_metric=swd", "registry.mode=min",
]  # fmt: skip

PBT = {
    "metric": "swd",
    "mode": "min",
    "search": "random",
    "num_samples": 2,
    "seed": 0,
    "max_concurrent_trials": 2,
    # synch: both trials are ranked at step 20, so the worse one restarts from the better one's
    # checkpoint, which Tune reads back from the bucket.
    "scheduler": {"name": "pbt", "synch": True, "perturbation_interval": 20, "mutations": {"optim.lr_g": {"loguniform": [1.0e-4, 1.0e-3]}}},
    "space": {"optim.lr_g": {"loguniform": [1.0e-4, 1.0e-3]}},
    "overrides": {
        "train.steps": 30, "train.log_every": 10, "train.checkpoint_every": 10, "train.sample_every": 30,
        "eval.every": 20, "eval.during_training_samples": 100, "eval.metrics": ["swd"],
        "model.params.g_width": 8, "model.params.d_width": 8, "train.run_name": "s3-pbt",
    },
}  # fmt: skip


def main(root: Path) -> None:
    import yaml

    from ganpipe import stages
    from ganpipe.config import load_config
    from ganpipe.project import Project
    from ganpipe.train.faults import Faults
    from ganpipe.train.local_ray import ensure_ray
    from ganpipe.tune.runner import run_sweep
    from ganpipe.tune.space import SweepConfig

    ensure_ray(num_cpus=2, log_to_driver=False, state_api=True)  # one instance for the run and the sweep
    config = REPO / "configs/dcgan-digits.yaml"
    cfg = load_config(config, TINY)
    project = Project.load(root, cfg.storage)
    prepared = stages.prepare_stage(cfg, project)
    _wait_for(os.environ["MLFLOW_TRACKING_URI"])  # the test starts the server beside this process
    # The worker dies hard at step 25, after the step-20 checkpoint reached the bucket.
    trained = stages.train_stage(cfg, prepared, project, progress=False, faults=Faults(exit_at_step=25))
    evaluated = stages.evaluate_stage(cfg, trained, prepared, project)
    registered = stages.register_stage(cfg, evaluated, prepared, project)
    # What the registered model must give back elsewhere: the trained generator's samples.
    from ganpipe.gans.base import sampler_from_export
    from ganpipe.train.checkpoint import load_export

    sample = sampler_from_export(*load_export(trained.checkpoint)).generate(3, seed=5)

    base = yaml.safe_load(config.read_text())
    t0 = time.perf_counter()
    sweep = run_sweep(base, SweepConfig.model_validate(PBT), prepared.path, project, name="s3-pbt")
    print(json.dumps({
        "project": project.describe(),
        "train": {"run_id": trained.run_id, "step": trained.metrics.get("step"), "start_step": trained.metrics.get("start_step"), "checkpoint": str(trained.checkpoint)},
        "model_uri": evaluated.model_uri,
        "sample": {"shape": list(sample.shape), "sum": float(sample.double().sum()), "abs_sum": float(sample.double().abs().sum())},
        "registered": {"name": registered.name, "version": registered.version, "alias": registered.alias} if registered else None,
        "seconds": {"prepare": prepared.seconds, "train": trained.seconds, "evaluate": evaluated.seconds, "register": registered.seconds if registered else 0, "sweep": time.perf_counter() - t0},
        "sweep": {
            "parent_run_id": sweep.parent_run_id, "rows": [r.__dict__ for r in sweep.rows],
            "best": sweep.best.__dict__ if sweep.best else None, "best_lr_g": sweep.best_config.optim.lr_g if sweep.best_config else None,
        },
    }, default=str))  # fmt: skip


def _wait_for(url: str, timeout: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"the MLflow server at {url} did not answer within {timeout:.0f} s")
        time.sleep(0.3)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
