"""Every place ganpipe touches Ray's internals or tunes Ray itself, in one module: the private
local instance (`ensure_ray`), the lean trainer a training run gets on it (`trainer_class`), and
Ray Train's start-timeout setting. The rest of ganpipe uses Ray's public API only.

What here depends on one Ray release: the lean trainer subclasses Ray Train V2's internals
(`ray.train.v2._internal`: default callbacks, scaling policy), and `start_retry_limit` knows
the default of Train's worker-group start timeout. `SUPPORTED_RAY` names the releases they were
checked against; on any other, `trainer_class` keeps Ray Train's defaults.
`tests/unit/test_local_ray.py` checks the installed Ray against it and which actors a lean run
starts.

Why a lean trainer: every Ray actor process wakes up 100 times a second even when idle (the
core worker's 10 ms signal check, fixed in Ray's C++), and on a machine whose cores the
training fills, each wake-up that lands on one training thread also stalls the others at their
next OpenMP barrier. Ray Train starts four such actors per run. Two of them serve nothing on a
private instance: the dataset manager (created even when the run has no Ray Datasets) and Ray
Data's autoscaling coordinator (which tells a cluster autoscaler what Train needs; a private
instance has none), unless the run streams through Ray Data (`train.loader: stream`), which
uses both. Stopping just those two for a window took DCGAN on 2 threads on 2 cores from 0.938
to 0.969 of the plain loop's images/s (50 interleaved windows). The placement-group cleaner is
left out for another reason: it needs the State API, which a lean instance does not run.
"""

from __future__ import annotations

import math
import os
from typing import Any

from ray.train.torch import TorchTrainer

from ganpipe import logs

SUPPORTED_RAY = ">=2.60,<2.61"  # the releases whose internals the code below was checked against

LOCAL_DASHBOARD: str | None = None  # the dashboard (State API) of the local instance this process started
_LOCAL_ARGS: tuple[int, bool] | None = None  # (num_cpus, log_to_driver) of that instance; None: it did not start one

# What ganpipe's private local instance leaves out, unless the caller or the user asks for it.
# Each is a process or a poll that competes with training for the same cores (on a 2-core
# machine they took ~2% (preemption watcher, Train metrics) and ~2% (dashboard) of the CPU):
# a local instance has no cloud preemption notices to watch and nothing to scrape Train's
# Prometheus metrics, and only sweeps need the State API.
LEAN_LOCAL_ENV = {"RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0", "RAY_TRAIN_METRICS_ENABLED": "0"}
DASHBOARD_ENV = "GANPIPE_RAY_DASHBOARD"  # "1": the local instance always runs the dashboard


def ray_supported(version: str | None = None) -> bool:
    """Whether `version` (default: the installed Ray) is one of `SUPPORTED_RAY`."""
    from packaging.specifiers import SpecifierSet

    if version is None:
        import ray

        version = ray.__version__
    return SpecifierSet(SUPPORTED_RAY).contains(version, prereleases=True)


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
        from ganpipe.train.cluster import check_cluster, cluster_error

        check_cluster(address)
        try:
            ray.init(address=address, log_to_driver=log_to_driver, logging_level=logs.level())
        except Exception as e:  # what the probe could not foresee, in one line with its fix
            raise cluster_error(address, e) from None
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
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=want_dashboard, log_to_driver=log_to_driver, logging_level=logs.level(), **kwargs)
    _LOCAL_ARGS = (num_cpus, log_to_driver)


def is_private() -> bool:
    """Whether this process runs the private local instance `ensure_ray` started."""
    return _LOCAL_ARGS is not None


def autoscaler_max_resources() -> dict[str, float] | None:
    """The most of each resource the connected cluster's autoscaler can provide (its node types'
    resources times their max counts, capped by the cluster's max), as Ray Train checks a worker
    group against; None when no autoscaler has reported a config (a fixed cluster, or a local
    instance). Read from the GCS through Ray's private state API of `SUPPORTED_RAY`."""
    try:
        from ray._private.state import state

        found = state.get_max_resources_from_cluster_config()
    except Exception:  # another Ray release, or no GCS answer: as if there were no autoscaler
        return None
    return None if not found else {k: float(v) for k, v in found.items()}


def ray_logs_dir() -> str | None:
    """The session's log folder on this node (Ray Train's DEBUG logs under `train/`), where a
    failed run's full story is; None when unknown."""
    try:
        import ray._private.worker as worker

        node = worker._global_node
        return None if node is None else str(node.get_logs_dir_path())
    except Exception:
        return None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def trainer_class() -> type[TorchTrainer]:
    """TorchTrainer; on a private local instance without the State API, `LeanTorchTrainer`,
    which starts none of Ray Train's actors that a one-machine run has no use for, and not its
    placement-group cleaner, which could not tell whether a controller lives: it polled the
    absent State API and logged a warning every second of the run. Such an instance ends with
    this process and takes its placement groups with it, so there is nothing to clean. Sweeps
    and clusters keep Ray Train's defaults, and so does a Ray outside `SUPPORTED_RAY`."""
    if _LOCAL_ARGS is None or LOCAL_DASHBOARD is not None:
        return TorchTrainer
    if _LeanTrainer is None or not ray_supported():
        return TorchTrainer
    return _LeanTrainer


# Ray Train V2's worker-group start timeout: the env var its controller reads, and its default.
START_TIMEOUT_ENV = "RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S"
_START_TIMEOUT_DEFAULT_S = 60.0


def start_retry_limit(wait_s: int) -> int:
    """FailureConfig.controller_failure_limit for a total wait of `wait_s` seconds (-1: forever).

    Ray Train V2 gives each attempt to start the worker group `START_TIMEOUT_ENV` seconds and,
    by default, retries failed starts forever: a run whose node is gone and never replaced would
    wait for ever."""
    if wait_s <= 0:
        return -1
    per_attempt = float(os.environ.get(START_TIMEOUT_ENV) or _START_TIMEOUT_DEFAULT_S)
    return max(0, math.ceil(wait_s / per_attempt) - 1)


# -- the lean trainer: Ray Train V2 internals of SUPPORTED_RAY ------------------------------------

_LeanTrainer: type[TorchTrainer] | None = None
try:
    from ray.train.v2._internal.callbacks.datasets import DatasetsCallback
    from ray.train.v2._internal.callbacks.placement_group_callback import PlacementGroupCleanerCallback
    from ray.train.v2._internal.execution.scaling_policy.fixed import FixedScalingPolicy
except ImportError:  # another Ray release moved them: `trainer_class` keeps Ray Train's defaults
    pass
else:

    class LocalScalingPolicy(FixedScalingPolicy):
        """A fixed-size worker group that sends no resource requests to Ray Data's autoscaling
        coordinator, so that actor is never created. Pickled to Train's controller actor by
        reference: it must stay importable at module level."""

        def after_controller_start(self, train_run_context: Any) -> None:
            pass  # the base class creates the coordinator client and sends the first request here

        def _maybe_send_resource_request(self) -> None:
            pass  # called by every scaling decision; the base class needs the client made above

    class LeanTorchTrainer(TorchTrainer):
        """TorchTrainer without the placement-group cleaner and, when the run has no Ray Datasets
        (`train.loader: memory`), without the dataset manager and with `LocalScalingPolicy`."""

        def _create_default_callbacks(self) -> list[Any]:
            skip: tuple[type, ...] = (PlacementGroupCleanerCallback,) if self.datasets else (PlacementGroupCleanerCallback, DatasetsCallback)
            return [c for c in super()._create_default_callbacks() if not isinstance(c, skip)]

        def _initialize_and_run_controller(self, **kwargs: Any) -> Any:
            # Elastic runs keep their policy, and so do runs with Ray Datasets: Ray Data sizes its
            # share of the instance from what the coordinator says Train has reserved.
            if not self.datasets and type(kwargs.get("scaling_policy")) is FixedScalingPolicy:
                kwargs["scaling_policy"] = LocalScalingPolicy(self.scaling_config)
            return super()._initialize_and_run_controller(**kwargs)

    _LeanTrainer = LeanTorchTrainer
