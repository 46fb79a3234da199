"""Runs in its own process (a Ray cluster of two nodes cannot share a process with the test
session's local Ray): head + worker node via ray.cluster_utils.Cluster, a 2-worker training
run spread over both, a sweep whose trials land on both, and registration of the result.
Prints one JSON line with what happened."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def main(root: Path) -> None:
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    os.environ["RAY_ADDRESS"] = cluster.address
    ray.init(address=cluster.address, log_to_driver=False)
    nodes = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])

    from ganpipe import stages
    from ganpipe.config import load_config
    from ganpipe.project import Project
    from ganpipe.tune.runner import run_sweep
    from ganpipe.tune.space import SweepConfig

    tiny = ["train.steps=30", "train.log_every=10", "train.checkpoint_every=15", "train.sample_every=30", "eval.num_samples=100", "eval.classifier_steps=100", "model.params.g_width=8", "model.params.d_width=8", "data.use_dvc=false"]
    cfg = load_config(REPO / "configs/dcgan-digits.yaml", tiny + ["train.num_workers=2"])
    project = Project.load(root, env={})
    prepared = stages.prepare_stage(cfg, project)
    trained = stages.train_stage(cfg, prepared, project)
    placement = [json.loads(p.read_text()) for p in sorted((project.run_dir(cfg.run_name) / "placement").glob("rank-*.json"))]
    ev = stages.evaluate_stage(cfg, trained, prepared, project)
    reg = stages.register_stage(cfg, ev, prepared, project)

    import yaml

    base = yaml.safe_load((REPO / "configs/dcgan-digits.yaml").read_text())
    sweep = SweepConfig.model_validate(
        {
            "metric": "fcd",
            "mode": "min",
            "search": "grid",
            "max_concurrent_trials": 2,
            "scheduler": {"name": "fifo"},
            "space": {"optim.lr_g": {"grid": [1e-4, 3e-4]}},
            "overrides": {**{o.split("=")[0]: yaml.safe_load(o.split("=")[1]) for o in tiny}, "eval.every": 15, "eval.during_training_samples": 100},
        }
    )
    res = run_sweep(base, sweep, prepared.path, project, name="multinode-sweep")
    trial_nodes = []
    for row in res.rows:
        trial_cfg = __import__("ganpipe.tune.space", fromlist=["trial_config"]).trial_config(base, sweep, row.params)
        for p in (project.run_dir(trial_cfg.run_name) / "placement").glob("rank-*.json"):
            trial_nodes.append(json.loads(p.read_text())["node_id"])
    print(json.dumps({
        "nodes": nodes,
        "train_nodes": sorted(p["node_id"] for p in placement),
        "world": [p["world"] for p in placement],
        "registered": {"name": reg.name, "version": reg.version, "alias": reg.alias},
        "eval": ev.metrics,
        "trials": [{"status": r.status, "steps": r.steps, "metric": r.metric} for r in res.rows],
        "trial_nodes": sorted(trial_nodes),
    }))
    ray.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
