"""The evaluation stage's placement on a two-node Ray cluster whose head has no GPU. Runs in
its own process (a `ray.cluster_utils.Cluster` cannot share a process with the test session's
local Ray); prints one JSON line.

1. head only (1 CPU, no GPU): the stage runs in-process, on the CPU;
2. a worker node advertising one GPU joins (a resource count: no device is needed): the
   stage runs as a Ray task requesting that GPU, and the task lands on the GPU node;
3. a PBT sweep's trial with train.use_gpu asks Tune for what `tune.runner` asks (its own
   trainable and resource request, a probe in place of the training): it lands on the GPU
   node and holds the GPU.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def probe(device: str = "cpu") -> dict:
    """What a placed function sees: where it runs and which GPUs Ray gave it."""
    import ray

    return {"device": device, "node": ray.get_runtime_context().get_node_id(), "gpu_ids": [str(g) for g in ray.get_gpu_ids()]}


def trial_probe(params: dict, ctx: dict) -> None:
    from ray import tune

    Path(ctx["out"]).write_text(json.dumps(probe("cuda" if ctx["use_gpu"] else "cpu")))
    tune.report({"done": 1})


def pbt_trial_on_gpu(tmp: Path) -> dict:
    from ray import tune

    from ganpipe.config import load_config
    from ganpipe.tune.runner import make_trainable, trial_resources

    cfg = load_config(Path(__file__).resolve().parents[2] / "configs/dcgan-digits.yaml", ["train.use_gpu=true"])
    out = tmp / "trial.json"
    resources = trial_resources(cfg, pbt=True, use_gpu=True)
    trainable = make_trainable(trial_probe, {"out": str(out), "use_gpu": True}, resources)
    tune.Tuner(trainable, run_config=tune.RunConfig(name="pbt-gpu", storage_path=str(tmp / "tune"), verbose=0)).fit()
    return {"resources": resources, "ran": json.loads(out.read_text())}


def main() -> None:
    import ray
    from ray.cluster_utils import Cluster

    from ganpipe.evaluate.placement import choose_placement, run_placed

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 0})
    out: dict = {}
    try:
        ray.init(address=cluster.address, log_to_driver=False)
        out["head"] = ray.get_runtime_context().get_node_id()
        cpu_only = choose_placement()
        out["cpu_only"] = {"remote": cpu_only.remote, "device": cpu_only.device, "ran": run_placed(cpu_only, probe)}
        gpu_node = cluster.add_node(num_cpus=1, num_gpus=1)
        deadline = time.time() + 60
        while ray.cluster_resources().get("GPU", 0) < 1 and time.time() < deadline:
            time.sleep(0.2)
        placed = choose_placement()
        out["gpu_node"] = gpu_node.node_id
        out["with_gpu"] = {"remote": placed.remote, "device": placed.device, "options": placed.ray_options(), "ran": run_placed(placed, probe)}
        import tempfile

        out["pbt_trial"] = pbt_trial_on_gpu(Path(tempfile.mkdtemp(prefix="ganpipe-pbt-gpu-")))
    finally:
        ray.shutdown()
        cluster.shutdown()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
