"""Ray Train on ganpipe's private local instance, without the actors a one-machine run has no
use for.

Why: every Ray actor process wakes up 100 times a second even when idle (the core worker's
10 ms signal check, fixed in Ray's C++), and on a machine whose cores the training fills, each
wake-up that lands on one training thread also stalls the others at their next OpenMP barrier.
Ray Train starts four such actors per run. Two of them serve nothing here: the dataset manager
(created even when the run has no Ray Datasets) and Ray Data's autoscaling coordinator (which
tells a cluster autoscaler what Train needs; a private instance has none), unless the run
streams through Ray Data (`train.loader: stream`), which uses both. Stopping just those two for
a window took DCGAN on 2 threads on 2 cores from 0.938 to 0.969 of the plain loop's
images/s (50 interleaved windows). The placement-group cleaner is left out for another reason:
it needs the State API, which a lean instance does not run (see `driver.ensure_ray`).

Only `driver._trainer_class` uses this, and only for a private local instance without the
State API; sweeps and clusters keep Ray Train's defaults. It leans on Ray Train's internals of
the pinned release (callbacks, scaling policy); `tests/unit/test_local_ray.py` checks which
actors a lean run starts.
"""

from __future__ import annotations

from typing import Any

from ray.train.torch import TorchTrainer
from ray.train.v2._internal.callbacks.datasets import DatasetsCallback
from ray.train.v2._internal.callbacks.placement_group_callback import PlacementGroupCleanerCallback
from ray.train.v2._internal.execution.scaling_policy.fixed import FixedScalingPolicy


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
