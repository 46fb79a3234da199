"""The Ray Train driver: builds a TorchTrainer from the config and fits it.

The run name is deterministic (config name + config hash), so running the same config again
resumes from its latest checkpoint instead of starting over (Ray Train V2 resumes a run
found under the same storage path and name).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ganpipe.config import PipelineConfig
from ganpipe.errors import TrainingError
from ganpipe.project import Project
from ganpipe.train import host


@dataclass
class FitResult:
    checkpoint: Path
    metrics: dict[str, Any]
    storage: str


LOCAL_DASHBOARD: str | None = None  # the dashboard (State API) of the local instance this process started
_LOCAL_ARGS: tuple[int, bool] | None = None  # (num_cpus, log_to_driver) of that instance; None: it did not start one

# What ganpipe's private local instance leaves out, unless the caller or the user asks for it.
# Each is a process or a poll that competes with training for the same cores (on a 2-core
# machine they took ~2% (preemption watcher, Train metrics) and ~2% (dashboard) of the CPU):
# a local instance has no cloud preemption notices to watch and nothing to scrape Train's
# Prometheus metrics, and only sweeps need the State API.
LEAN_LOCAL_ENV = {"RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0", "RAY_TRAIN_METRICS_ENABLED": "0"}
DASHBOARD_ENV = "GANPIPE_RAY_DASHBOARD"  # "1": the local instance always runs the dashboard


def ensure_ray(num_cpus: int | None = None, log_to_driver: bool = True, state_api: bool = False) -> None:
    """Connect to RAY_ADDRESS when set, else start a private local instance.

    `state_api=True` (sweeps) runs Ray's dashboard on 127.0.0.1 with the local instance, because
    Ray Train's placement-group cleaner asks its State API whether a run's controller is still
    alive: without it, a Tune trial that is stopped early (ASHA) keeps its workers' CPUs
    reserved until the sweep ends and later trials time out waiting for them
    (ray-project/ray#54305). A training run does not need it, and the dashboard's processes
    cost training ~2% of a 2-core machine; a local instance this process started without it is
    restarted with it when a sweep asks (nothing else runs on a private instance between stages).
    """
    import ray

    global LOCAL_DASHBOARD, _LOCAL_ARGS
    want_dashboard = state_api or os.environ.get(DASHBOARD_ENV, "") not in ("", "0")
    if ray.is_initialized():
        if not (want_dashboard and _LOCAL_ARGS is not None and LOCAL_DASHBOARD is None):
            return
        num_cpus, log_to_driver = _LOCAL_ARGS
        ray.shutdown()
    LOCAL_DASHBOARD, _LOCAL_ARGS = None, None
    address = os.environ.get("RAY_ADDRESS")
    if address and address != "local":
        ray.init(address=address, log_to_driver=log_to_driver)
        return
    # Ray runs its workers at nice 15 to keep its own daemons responsive; here the workers are
    # the job, and at nice 15 any other process on the machine (a browser, a second run)
    # starves training. Export RAY_worker_niceness=15 to get Ray's default back.
    os.environ.setdefault("RAY_worker_niceness", "0")
    for k, v in LEAN_LOCAL_ENV.items():  # read by the Train driver and passed on to its actors
        os.environ.setdefault(k, v)
    num_cpus = num_cpus or max(2, os.cpu_count() or 2)
    kwargs: dict[str, Any] = {}
    if want_dashboard:
        port = _free_port()
        LOCAL_DASHBOARD = f"http://127.0.0.1:{port}"
        # This job's tasks and actors (Train's cleaner among them) ask this instance's State API
        # even when other Ray instances run on the machine (without it they refuse to guess).
        # Set for the job only, not in os.environ: a child process joining another cluster must
        # not inherit it.
        kwargs = {"dashboard_host": "127.0.0.1", "dashboard_port": port, "runtime_env": {"env_vars": {"RAY_API_SERVER_ADDRESS": LOCAL_DASHBOARD}}}
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=want_dashboard, log_to_driver=log_to_driver, **kwargs)
    _LOCAL_ARGS = (num_cpus, log_to_driver)


def _trainer_class() -> Any:
    """TorchTrainer; on a private local instance without the State API, `lean.LeanTorchTrainer`,
    which starts none of Ray Train's actors that a one-machine run has no use for, and not its
    placement-group cleaner, which could not tell whether a controller lives: it polled the
    absent State API and logged a warning every second of the run. Such an instance ends with
    this process and takes its placement groups with it, so there is nothing to clean."""
    from ray.train.torch import TorchTrainer

    if _LOCAL_ARGS is None or LOCAL_DASHBOARD is not None:
        return TorchTrainer
    try:
        from ganpipe.train.lean import LeanTorchTrainer
    except ImportError:  # another Ray version moved Train's internals: keep its defaults
        return TorchTrainer
    return LeanTorchTrainer


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resolve_gpu(cfg: PipelineConfig) -> bool:
    import ray

    if cfg.train.use_gpu == "auto":
        return ray.cluster_resources().get("GPU", 0) >= 1
    return bool(cfg.train.use_gpu)


# Ray Train V2 gives each attempt to start the worker group this long (env var, default 60 s)
# and, by default, retries failed starts forever: a run whose node is gone and never replaced
# would wait for ever. `train.worker_wait_s` bounds the total.
START_TIMEOUT_ENV = "RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S"


def start_retry_limit(wait_s: int) -> int:
    """FailureConfig.controller_failure_limit for a total wait of `wait_s` seconds (-1: forever)."""
    if wait_s <= 0:
        return -1
    per_attempt = float(os.environ.get(START_TIMEOUT_ENV) or 60.0)
    return max(0, math.ceil(wait_s / per_attempt) - 1)


def fit(
    cfg: PipelineConfig,
    data_dir: Path,
    project: Project,
    run_id: str | None = None,
    callbacks: list[Any] | None = None,
    on_step: Callable[[int], None] | None = None,
) -> FitResult:
    """Train `cfg` on `data_dir` with Ray Train, checkpoints in the project's runs storage.

    `run_id`: the MLflow run rank 0 logs to (None: no tracking). `on_step`: called by rank 0
    after every step (pickled to the worker; benchmarks use it to follow a run from outside)."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ganpipe.train.loop import train_loop_per_worker

    ensure_ray()
    use_gpu = resolve_gpu(cfg)
    storage = project.runs_storage
    run_dir = project.run_dir(cfg.run_name)  # None on remote storage
    tracking = None if run_id is None else {"tracking_uri": project.tracking_uri, "run_id": run_id, "spool_dir": str(project.spool)}
    datasets = None
    if cfg.train.loader == "stream":  # Ray Data reads the shards on the cluster and splits them over the workers
        from ganpipe.data.streaming import parquet_dataset

        datasets = {"train": parquet_dataset(data_dir)}
    trainer = _trainer_class()(
        train_loop_per_worker,
        train_loop_config={
            "cfg": cfg.to_dict(),
            "data_dir": str(Path(data_dir).resolve()),
            "tracking": tracking,
            "on_step": on_step,
            "malloc_tuning": host.wanted(),
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
        ),
    )
    try:
        result = trainer.fit()
    except Exception as e:
        cause = _root_cause(e)
        if isinstance(cause, TrainingError):
            raise cause from None
        if type(cause).__name__ == "WorkerGroupStartupTimeoutError":
            t = cfg.train
            raise TrainingError(
                f"training run {cfg.run_name} failed: the cluster did not place {t.num_workers} worker(s) "
                f"({t.cpus_per_worker} CPU{', 1 GPU' if use_gpu else ''} each) within train.worker_wait_s={t.worker_wait_s}s",
                hint="add nodes (or check the autoscaler), lower train.num_workers / cpus_per_worker, or raise train.worker_wait_s",
            ) from e
        raise TrainingError(f"training run {cfg.run_name} failed: {type(cause).__name__}: {str(cause)[:500]}") from e
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
