"""The Ray Train driver: builds a TorchTrainer from the config and fits it.

The run name is deterministic (config name + config hash), so running the same config again
resumes from its latest checkpoint instead of starting over (Ray Train V2 resumes a run
found under the same storage path and name).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ganpipe import logs
from ganpipe.config import PipelineConfig
from ganpipe.errors import TrainingError
from ganpipe.project import Project
from ganpipe.train import host
from ganpipe.train.faults import Faults
from ganpipe.train.progress import Progress, View


@dataclass
class FitResult:
    checkpoint: Path
    metrics: dict[str, Any]
    storage: str


def resolve_gpu(cfg: PipelineConfig) -> bool:
    import ray

    if cfg.train.use_gpu == "auto":
        return ray.cluster_resources().get("GPU", 0) >= 1
    return bool(cfg.train.use_gpu)




def fit(
    cfg: PipelineConfig,
    data_dir: Path,
    project: Project,
    run_id: str | None = None,
    callbacks: list[Any] | None = None,
    on_step: Callable[[int], None] | None = None,
    faults: Faults | None = None,
    view: View | None = None,
) -> FitResult:
    """Train `cfg` on `data_dir` with Ray Train, checkpoints in the project's runs storage.

    `run_id`: the MLflow run rank 0 logs to (None: no tracking). `on_step`: called by rank 0
    after every step (pickled to the worker; benchmarks use it to follow a run from outside).
    `faults`: deliberate faults for drills and tests, injected in every worker (see
    `faults.Faults`). `view`: shows the run's progress on the driver (`progress.make_view`);
    rank 0 sends it a line at each log point (see `train/progress.py`)."""
    from ganpipe.train.local_ray import ensure_ray

    ensure_ray()
    if view is None:
        return _fit(cfg, data_dir, project, run_id, callbacks, on_step, faults, None)
    with Progress(view, _driver_host()) as progress:
        return _fit(cfg, data_dir, project, run_id, callbacks, on_step, faults, progress.worker_config())


def _driver_host() -> str:
    """Where rank 0 reaches the driver: loopback on a private instance, else this node's address."""
    from ganpipe.train.local_ray import is_private

    if is_private():
        return "127.0.0.1"
    import ray.util

    return ray.util.get_node_ip_address()


def _fit(
    cfg: PipelineConfig,
    data_dir: Path,
    project: Project,
    run_id: str | None,
    callbacks: list[Any] | None,
    on_step: Callable[[int], None] | None,
    faults: Faults | None,
    progress: dict[str, Any] | None,
) -> FitResult:
    from ray.train import CheckpointConfig, FailureConfig, LoggingConfig, RunConfig, ScalingConfig

    from ganpipe.train.local_ray import ray_logs_dir, start_retry_limit, trainer_class
    from ganpipe.train.loop import train_loop_per_worker

    use_gpu = resolve_gpu(cfg)
    storage = project.runs_storage
    run_dir = project.run_dir(cfg.run_name)  # None on remote storage
    tracking = None if run_id is None else {"tracking_uri": project.tracking_uri, "run_id": run_id, "spool_dir": str(project.spool)}
    datasets = None
    if cfg.train.loader == "stream":  # Ray Data reads the shards on the cluster and splits them over the workers
        from ganpipe.data.streaming import parquet_dataset

        datasets = {"train": parquet_dataset(data_dir)}
    trainer = trainer_class()(
        train_loop_per_worker,
        train_loop_config={
            "cfg": cfg.to_dict(),
            "data_dir": str(Path(data_dir).resolve()),
            "tracking": tracking,
            "on_step": on_step,
            "faults": faults,
            "malloc_tuning": host.wanted(),
            "progress": progress,
            "log_level": logs.level_name(),
            "cache_dir": str(project.cache),
            "placement_dir": None if run_dir is None else str(run_dir / "placement"),
            "run_dir": None if run_dir is None else str(run_dir),  # resume from the newest verified checkpoint
        },
        datasets=datasets,
        scaling_config=ScalingConfig(
            num_workers=cfg.train.num_workers,
            use_gpu=use_gpu,
            resources_per_worker={"CPU": cfg.train.cpus_per_worker, **({"GPU": 1} if use_gpu else {})},
        ),
        run_config=RunConfig(
            name=cfg.run_name,
            storage_path=storage,
            failure_config=FailureConfig(max_failures=cfg.train.max_failures, controller_failure_limit=start_retry_limit(cfg.train.worker_wait_s)),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
            callbacks=callbacks or [],
            # Ray Train's own lines (worker group, checkpoint and report dumps) at the terminal's
            # level; its session log files keep them all (DEBUG).
            logging_config=LoggingConfig(log_level=logs.level_name()),
        ),
    )
    try:
        result = trainer.fit()
    except Exception as e:
        cause = _root_cause(e)
        where = ray_logs_dir()
        if isinstance(cause, TrainingError):
            if where and not cause.hint:
                cause.hint = f"Ray's logs of this run: {where}"
            raise cause from None
        if type(cause).__name__ == "WorkerGroupStartupTimeoutError":
            t = cfg.train
            raise TrainingError(
                f"training run {cfg.run_name} failed: the cluster did not place {t.num_workers} worker(s) "
                f"({t.cpus_per_worker} CPU{', 1 GPU' if use_gpu else ''} each) within train.worker_wait_s={t.worker_wait_s}s",
                hint="add nodes (or check the autoscaler), lower train.num_workers / cpus_per_worker, or raise train.worker_wait_s",
            ) from e
        raise TrainingError(
            f"training run {cfg.run_name} failed: {type(cause).__name__}: {str(cause)[:500]}",
            hint=f"Ray's logs of this run: {where}" if where else None,
        ) from e
    if result.checkpoint is None:
        raise TrainingError(f"training run {cfg.run_name} finished without a checkpoint")
    local = Path(result.checkpoint.path)
    if not local.exists():  # remote storage: materialise locally for evaluation
        local = Path(result.checkpoint.to_directory())
    return FitResult(checkpoint=local, metrics=dict(result.metrics or {}), storage=storage)


def _root_cause(e: BaseException) -> BaseException:
    seen = set()
    while id(e) not in seen:
        seen.add(id(e))
        wf = getattr(e, "worker_failures", None)
        if isinstance(wf, dict) and wf:
            e = next(iter(wf.values()))
            continue
        cf = getattr(e, "controller_failure", None)  # ControllerError wraps e.g. a start timeout
        if isinstance(cf, BaseException):
            e = cf
            continue
        nxt = e.__cause__ or getattr(e, "cause", None)
        if nxt is None or not isinstance(nxt, BaseException):
            return e
        e = nxt
    return e
