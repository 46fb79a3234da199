"""Where the pipeline's evaluation stage runs: where a GPU is.

On a cluster the pipeline's driver is usually the head node, which has no GPU; generating a
BigGAN's thousands of samples there, on its CPU, would take longer than training did. So:

- with Ray running in this process (or RAY_ADDRESS naming a cluster) and GPUs advertised
  (`ray.cluster_resources()["GPU"]`), the stage's work runs as a Ray task holding one GPU,
  whose generator samples on it ("cuda": Ray sets the task's visible devices);
- otherwise it runs in this process, on this machine's GPU when torch sees one, else on the CPU.

Ray is not imported to decide that when nothing has started it: a cached re-run stays free
of it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Placement:
    remote: bool  # a Ray task (True) or this process
    device: str  # where the work's tensors go: "cuda" or "cpu"
    num_gpus: int = 0  # the Ray task's GPU request
    num_cpus: int = 1

    def describe(self) -> str:
        return f"ray task ({self.num_gpus} GPU, {self.num_cpus} CPU)" if self.remote else f"in-process ({self.device})"

    def ray_options(self) -> dict[str, Any]:
        """The Ray task's resource request (`ray.remote(**...)`)."""
        return {"num_gpus": self.num_gpus, "num_cpus": self.num_cpus}


def cluster_gpus() -> float:
    """GPUs the Ray cluster advertises; 0 when no cluster is in use."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS")
        if not address or address == "local":
            return 0.0  # no cluster: this machine is where the work runs
        from ganpipe.train.local_ray import ensure_ray

        ensure_ray()
        import ray
    return float(ray.cluster_resources().get("GPU", 0))


def choose_placement() -> Placement:
    if cluster_gpus() >= 1:
        return Placement(remote=True, device="cuda", num_gpus=1)
    import torch

    return Placement(remote=False, device="cuda" if torch.cuda.is_available() else "cpu")


def run_placed(placement: Placement, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, device=placement.device, **kwargs)` where `placement` says. `fn` must be a
    module-level function (a Ray task imports it by name); a `GanpipeError` it raises comes
    back as itself, not wrapped in Ray's task error."""
    if not placement.remote:
        return fn(*args, device=placement.device, **kwargs)
    import ray
    from ray.exceptions import RayTaskError

    from ganpipe.errors import GanpipeError

    task = ray.remote(**placement.ray_options())(fn)
    try:
        return ray.get(task.remote(*args, device=placement.device, **kwargs))
    except RayTaskError as e:
        if isinstance(e.cause, GanpipeError):
            raise e.cause from None
        raise
