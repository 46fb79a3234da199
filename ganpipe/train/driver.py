"""The Ray Train driver: builds a TorchTrainer from the config and fits it.

The run name is deterministic (config name + config hash), so running the same config again
resumes from its latest checkpoint instead of starting over (Ray Train V2 resumes a run
found under the same storage path and name).
"""

from __future__ import annotations

import logging
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

log = logging.getLogger("ganpipe")


@dataclass
class FitResult:
    checkpoint: Path  # on this machine (a copy when the storage is remote)
    metrics: dict[str, Any]
    storage: str
    uri: str = ""  # where the checkpoint lives in the runs storage: what runs and trials record


@dataclass(frozen=True)
class DeviceChoice:
    use_gpu: bool
    reason: str
    fallback: bool = False  # `auto` chose the CPU on a cluster: said in the log and on the MLflow run


def choose_device(setting: bool | str, gpus_now: float, gpus_max: float | None, on_cluster: bool) -> DeviceChoice:
    """Whether workers get a GPU. `gpus_now`: GPUs the cluster has; `gpus_max`: the most its
    autoscaler can have (its node types times their max counts; None without an autoscaler).

    `auto` picks the GPU when the cluster has one now or its autoscaler can add one: on an
    autoscaling cluster the GPU workers often do not exist at submit time, and Ray Train's
    request for GPU workers is what makes the autoscaler start them. Training a GAN on a CPU
    head instead would be the silent waste this avoids. It picks the CPU only when no GPU can
    ever come; on a cluster that is a fallback the run records."""
    if setting != "auto":
        return DeviceChoice(bool(setting), f"train.use_gpu={str(bool(setting)).lower()}")
    if gpus_now >= 1:
        return DeviceChoice(True, f"the cluster has {gpus_now:g} GPU(s)")
    if gpus_max is not None and gpus_max >= 1:
        return DeviceChoice(True, f"no GPU yet, the cluster's autoscaler can add up to {gpus_max:g}: the run waits for them (train.worker_wait_s)")
    if not on_cluster:
        return DeviceChoice(False, "no GPU on this machine")
    why = "its autoscaler declares no GPU node type" if gpus_max is not None else "it has no autoscaler config to say GPU nodes could come"
    return DeviceChoice(False, f"the cluster has no GPU and {why}; set train.use_gpu=true to wait for GPU workers", fallback=True)


def resolve_device(cfg: PipelineConfig) -> DeviceChoice:
    """`choose_device` for the Ray instance this process is connected to."""
    import ray

    from ganpipe.train.local_ray import autoscaler_max_resources, is_private

    gpus_max = None
    if cfg.train.use_gpu == "auto" and not is_private():
        declared = autoscaler_max_resources()
        gpus_max = None if declared is None else float(declared.get("GPU", 0))
    return choose_device(cfg.train.use_gpu, ray.cluster_resources().get("GPU", 0), gpus_max, on_cluster=not is_private())


def resolve_gpu(cfg: PipelineConfig) -> bool:
    """Whether `cfg`'s workers get a GPU on the connected Ray instance (`resolve_device`)."""
    return resolve_device(cfg).use_gpu


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

    tracking = None if run_id is None else {"tracking_uri": project.tracking_uri, "run_id": run_id, "spool_dir": str(project.spool)}
    device = resolve_device(cfg)
    use_gpu = device.use_gpu
    if device.fallback:
        log.warning("training %s on CPU: %s", cfg.run_name, device.reason)
    if tracking is not None:
        from ganpipe.tracking import runs

        runs.set_tags(project.store, run_id, {"ganpipe.device": "gpu" if use_gpu else "cpu", "ganpipe.device_reason": device.reason})
    storage = project.runs_storage
    run_dir = project.run_dir(cfg.run_name)  # None on remote storage
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
            # resume from the newest verified checkpoint, on a local path or object storage
            "run_dir": f"{storage.rstrip('/')}/{cfg.run_name}" if run_dir is None else str(run_dir),
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
    from ganpipe.train.storage import local_copy, uri_of

    uri = uri_of(result.checkpoint, storage)
    # On object storage: a local copy for evaluation, in the project's cache.
    return FitResult(checkpoint=local_copy(uri, project.cache), metrics=dict(result.metrics or {}), storage=storage, uri=uri)


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
