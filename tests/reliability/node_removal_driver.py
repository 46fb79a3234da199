"""A Ray node removed mid-run, for real. Runs in its own process (a two-node Ray cluster cannot
share a process with the test session's local Ray):

1. a head node and a worker node (ray.cluster_utils.Cluster, one CPU each) and a 2-worker
   training run spread over both (one rank per node);
2. once a checkpoint past `--kill-after` is on disk, the worker node is killed outright
   (raylet and every process on it, no graceful drain), as when a machine disappears;
3. a replacement node joins (what an autoscaler does when the restarted run asks for
   resources), and Ray Train restarts the run from its latest checkpoint.

Prints one JSON line with what happened. Used by tests/reliability/test_node_removal.py and
benchmarks/reliability.py.

    python tests/reliability/node_removal_driver.py PROJECT RAW_ROOT [--steps N] [--every K]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

TINY = [
    "data.image_size=8",
    "data.use_dvc=false",
    "model.params.g_width=8",
    "model.params.d_width=8",
    "train.batch_size=32",
    "train.num_workers=2",
    "train.sample_every=100000",
]


def _checkpoint_steps(run_dir: Path) -> list[int]:
    steps = []
    for meta in run_dir.glob("checkpoint_*/meta.json"):
        try:
            steps.append(json.loads(meta.read_text())["step"])
        except (OSError, ValueError, KeyError):
            pass
    return sorted(steps)


def _complete_checkpoint_steps(run_dir: Path) -> list[int]:
    """Steps of the checkpoints that are complete (a half-uploaded one fails verification)."""
    from ganpipe.errors import CheckpointError
    from ganpipe.train.checkpoint import verify

    steps = []
    for meta in run_dir.glob("checkpoint_*/meta.json"):
        try:
            steps.append(int(verify(meta.parent)["step"]))
        except (CheckpointError, OSError, ValueError, KeyError):
            pass
    return sorted(steps)


def _placement(run_dir: Path) -> list[dict]:
    out = []
    for p in sorted((run_dir / "placement").glob("rank-*.json")):
        try:
            out.append(json.loads(p.read_text()))
        except (OSError, ValueError):
            pass
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("project", type=Path)
    ap.add_argument("raw_root", type=Path, help="folder holding the materialised digits/ folder")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--every", type=int, default=100, help="checkpoint interval (steps)")
    ap.add_argument("--kill-after", type=int, default=None, help="kill once a checkpoint at or past this step exists (default: --every)")
    ap.add_argument("--run-name", default="node-removal")
    ap.add_argument("--timeout", type=float, default=480, help="give up (and report) after this many seconds of training")
    ap.add_argument("--no-replace", dest="replace", action="store_false", help="do not add a replacement node")
    ap.add_argument("--no-kill", dest="kill", action="store_false", help="a clean run on the same cluster (baseline)")
    args = ap.parse_args()
    kill_after = args.kill_after or args.every
    project = args.project.resolve()

    from ganpipe.config import DataConfig, load_config
    from ganpipe.data.prepare import prepare

    prepared = project / "prepared" / "digits-8"
    if not (prepared / "manifest.json").exists():
        prepare("digits", prepared, DataConfig(raw_root=str(args.raw_root), image_size=8))

    import ray
    from ray.cluster_utils import Cluster

    # As ganpipe.train.local_ray.ensure_ray does for a local instance: workers at the driver's
    # priority, not Ray's nice 15 (which lets any other process on the machine starve them).
    os.environ.setdefault("RAY_worker_niceness", "0")
    t_start = time.time()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    worker = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    os.environ["RAY_ADDRESS"] = cluster.address
    ray.init(address=cluster.address, log_to_driver=False)
    head_id = ray.get_runtime_context().get_node_id()
    nodes_before = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])
    t_cluster = time.time() - t_start

    from ganpipe.train.driver import fit

    cfg = load_config(
        REPO / "configs/dcgan-digits.yaml",
        TINY + [f"train.steps={args.steps}", f"train.checkpoint_every={args.every}", f"train.log_every={args.every}", "train.max_failures=2", f"train.run_name={args.run_name}"],
    )
    from ganpipe.project import Project

    settings = Project.load(project, env={})
    run_dir = settings.run_dir(cfg.run_name)
    seen: dict = {}
    result: dict = {}

    def train() -> None:
        try:
            res = fit(cfg, prepared, settings)
            result["metrics"] = {k: v for k, v in res.metrics.items() if isinstance(v, (int, float))}
        except BaseException as e:  # reported, not raised: the test shows it with the timings
            result["error"] = f"{type(e).__name__}: {e}"[:3000]

    # Training runs in a thread: adding a node (signal handlers) only works in the main thread.
    t0 = time.time()
    trainer = threading.Thread(target=train, daemon=True)
    trainer.start()
    while trainer.is_alive() and time.time() - t0 < args.timeout:
        steps = _checkpoint_steps(run_dir)
        placed = _placement(run_dir)
        on_worker = [p for p in placed if p["node_id"] == worker.node_id]
        if args.kill and steps and steps[-1] >= kill_after and len(placed) == 2 and on_worker:
            seen.update(ckpt_step=steps[-1], killed_node=worker.node_id, killed_rank=on_worker[0]["rank"], killed_pid=on_worker[0]["pid"])
            seen["placement_before"] = sorted(p["node_id"] for p in placed)
            seen["t_kill"] = time.time()
            cluster.remove_node(worker, allow_graceful=False)  # raylet and its workers SIGKILLed
            seen["kill_s"] = time.time() - seen["t_kill"]
            # Every process of the node is gone now and a rank alone cannot pass the next
            # checkpoint's barrier, so the run had reached fewer than this + every steps.
            seen["ckpt_after_kill"] = (_complete_checkpoint_steps(run_dir) or [0])[-1]
            if args.replace:  # as an autoscaler would, once the restarted run asks for resources
                seen["replacement_node"] = cluster.add_node(num_cpus=1).node_id
                seen["replace_s"] = time.time() - seen["t_kill"]
            break
        time.sleep(0.05)
    trainer.join(timeout=max(1.0, args.timeout - (time.time() - t0)))
    fit_s = time.time() - t0
    error = result.get("error") or (f"timed out after {args.timeout}s" if trainer.is_alive() else None)
    metrics = result.get("metrics", {})
    placed_after = _placement(run_dir)
    out = {
        "error": error,
        "head": head_id,
        "nodes_before": nodes_before,
        "killed": {k: seen[k] for k in ("ckpt_step", "ckpt_after_kill", "killed_node", "killed_rank", "killed_pid", "placement_before", "replacement_node") if k in seen},
        "placement_after": sorted(p["node_id"] for p in placed_after),
        "pids_after": sorted(p["pid"] for p in placed_after),
        "checkpoints_on_disk": _complete_checkpoint_steps(run_dir),
        "metrics": metrics,
        "checkpoint_every": cfg.train.checkpoint_every,
        "steps": cfg.train.steps,
        "timing": {
            "cluster_s": round(t_cluster, 1),
            "fit_s": round(fit_s, 1),
            "kill_s": round(seen.get("kill_s", 0.0), 1),
            "replace_s": round(seen.get("replace_s", 0.0), 1),
            "after_kill_s": round(time.time() - seen["t_kill"], 1) if "t_kill" in seen else None,
        },
    }
    print(json.dumps(out), flush=True)
    ray.shutdown()
    cluster.shutdown()
    os._exit(0)  # a training thread still waiting on a dead cluster must not keep the process up


if __name__ == "__main__":
    main()
