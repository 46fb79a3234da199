"""Runs in its own process (a Ray cluster of two nodes cannot share a process with the test
session's local Ray): head + worker node via ray.cluster_utils.Cluster, a 2-worker training
run spread over both, then the sweep flow (prepare -> tune -> evaluate best -> register) with
the given sweep file, whose trials land on both. Prints one JSON line with what happened.

Usage: multinode_driver.py PROJECT SWEEP_FILE (PREFECT_API_URL names the Prefect server)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

TINY = ["train.steps=30", "train.log_every=10", "train.checkpoint_every=15", "train.sample_every=30", "eval.num_samples=100", "eval.classifier_steps=100", "model.params.g_width=8", "model.params.d_width=8", "data.use_dvc=false"]


def main(root: Path, sweep_file: Path) -> None:
    import ray
    from ray.cluster_utils import Cluster

    # Each node waits for its raylet 30 s by default; two starting on a loaded machine can take longer.
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False, "wait": False})
    cluster.add_node(num_cpus=1, wait=False)
    cluster.wait_for_nodes(timeout=180)
    os.environ["RAY_ADDRESS"] = cluster.address
    ray.init(address=cluster.address, log_to_driver=False)
    nodes = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])

    from flows.sweep import sweep_flow
    from ganpipe import stages
    from ganpipe.config import load_config
    from ganpipe.project import Project

    project = Project.load(root, env={})
    config = REPO / "configs/dcgan-digits.yaml"
    cfg = load_config(config, TINY + ["train.num_workers=2"])
    stages.train_stage(cfg, stages.prepare_stage(cfg, project), project)
    runs_root = Path(project.runs_storage)
    placement = [json.loads(p.read_text()) for p in sorted((runs_root / cfg.run_name / "placement").glob("rank-*.json"))]

    s = sweep_flow(config_path=str(config), space_path=str(sweep_file), overrides=["data.use_dvc=false"], project=str(root))
    # Every run folder but the training run's is a trial's.
    trial_nodes = [json.loads(p.read_text())["node_id"] for p in runs_root.glob("*/placement/rank-*.json") if p.parts[-3] != cfg.run_name]
    print(json.dumps({
        "nodes": nodes,
        "train_nodes": sorted(p["node_id"] for p in placement),
        "world": [p["world"] for p in placement],
        "sweep": s,
        "trial_nodes": sorted(trial_nodes),
    }, default=str))
    ray.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
