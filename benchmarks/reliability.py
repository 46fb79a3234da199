"""Fault drills: inject each fault for real, and measure recovery.

    python benchmarks/reliability.py [--runs 2]

Columns: fault, runs tried, runs recovered (finished, or stopped with a named reason where
stopping is the right outcome), progress redone (steps), data lost, time to recover (wall
time of the faulty run minus a clean run of the same config).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from _common import REPO, result_line  # also puts the repo on sys.path

TINY = ["train.log_every=50", "model.params.g_width=8", "model.params.d_width=8", "eval.num_samples=100"]


def node_removed(root: Path, runs: int, steps: int = 600, every: int = 100) -> tuple:
    """Runs tests/reliability/node_removal_driver.py (its own 2-node cluster, in a subprocess):
    one clean run, then `runs` runs whose worker node is killed after the first checkpoint."""
    import os
    import subprocess

    def drive(name: str, *extra: str) -> dict:
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        cmd = [sys.executable, str(REPO / "tests/reliability/node_removal_driver.py"), str(root / "nodes"), str(root / "data"),
               "--steps", str(steps), "--every", str(every), "--run-name", name, *extra]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        lines = r.stdout.strip().splitlines()
        return json.loads(lines[-1]) if r.returncode == 0 and lines else {"error": r.stderr[-300:]}

    clean = drive("nodes-clean", "--no-kill")
    tried = ok = 0
    redone, recover = [], []
    for i in range(runs):
        tried += 1
        out = drive(f"nodes-kill-{i}")
        m, k = out.get("metrics", {}), out.get("killed", {})
        if not out.get("error") and m.get("step") == steps and m.get("start_step", 0) > 0 and "ckpt_after_kill" in k:
            ok += 1
            # The run had reached fewer than ckpt_after_kill + every steps when the node went.
            redone.append(k["ckpt_after_kill"] + every - 1 - int(m["start_step"]))
            if "fit_s" in clean.get("timing", {}):
                recover.append(out["timing"]["fit_s"] - clean["timing"]["fit_s"])
    return (
        f"Ray node removed after checkpoint {every} (2 nodes, replacement added)",
        tried,
        ok,
        f"<= {max(redone)}" if redone else "-",
        f"none (final step {steps})" if ok else "-",
        f"{sum(recover) / len(recover):.1f}s" if recover else "-",
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    import os

    import torch

    from ganpipe.config import DataConfig, load_config
    from ganpipe.data.prepare import prepare
    from ganpipe.data.sources import fetch
    from ganpipe.errors import CheckpointError, TrainingError
    from ganpipe.tracking.sink import MlflowSink
    from ganpipe.train.checkpoint import save_checkpoint, verify
    from ganpipe.train.driver import fit
    from ganpipe.train.faults import Faults
    from ganpipe.train.local_ray import ensure_ray
    from ganpipe.train.loop import run_training

    ensure_ray(num_cpus=2, log_to_driver=False)  # the product's own local Ray
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        fetch("digits", root / "data")
        data = root / "prepared"
        prepare("digits", data, DataConfig(raw_root=str(root / "data")))
        cfg_args = TINY + ["train.steps=500", "train.checkpoint_every=100", "train.max_failures=2"]

        # 1. worker process dies hard mid-run (os._exit in the worker at a known step)
        t0 = time.time()
        from ganpipe.project import Project

        project = Project.load(root, env={})
        fit(load_config(REPO / "configs/dcgan-digits.yaml", cfg_args + ["train.run_name=clean"]), data, project)
        clean = time.time() - t0
        tried = ok = 0
        redone, recover = [], []
        for i in range(args.runs):
            tried += 1
            t0 = time.time()
            res = fit(load_config(REPO / "configs/dcgan-digits.yaml", cfg_args + [f"train.run_name=kill-{i}"]), data, project, faults=Faults(exit_at_step=250))
            wall = time.time() - t0
            if res.metrics["step"] == 500:
                ok += 1
                redone.append(250 - int(res.metrics["start_step"]))
                recover.append(wall - clean)
        rows.append(("worker process killed at step 250 (interval 100)", tried, ok, f"{max(redone) if redone else '-'}", "none (final step 500)", f"{sum(recover) / max(len(recover), 1):.1f}s"))

        # 2. losses turn NaN: the run stops with a named reason instead of training on garbage
        tried = ok = 0
        for i in range(args.runs):
            tried += 1
            try:
                run_training(load_config(REPO / "configs/dcgan-digits.yaml", TINY + ["train.steps=120"]), data, faults=Faults(nan_loss_at_step=60))
            except TrainingError as e:
                ok += "diverged at step" in e.message
        rows.append(("NaN loss at step 60 (stop with reason)", tried, ok, "n/a (stopped at the next log point)", "none", "immediate"))

        # 3. tracking server unreachable during training: metrics buffered, spooled, none dropped
        tried = ok = 0
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "2"
        for i in range(args.runs):
            tried += 1
            rid = f"{i:032d}"
            sink = MlflowSink("http://127.0.0.1:9", rid, spool_dir=str(root / "spool"))
            run_training(load_config(REPO / "configs/dcgan-digits.yaml", TINY + ["train.steps=200", "train.sample_every=1000"]), data, sink=sink)
            lines = (root / "spool" / f"unsent-metrics-{rid}.jsonl").read_text().splitlines()
            steps = {json.loads(x)["step"] for x in lines}
            ok += steps == {50, 100, 150, 200}
        rows.append(("MLflow unreachable mid-run", tried, ok, "0", "none (spooled to disk)", "0s (training not blocked)"))

        # 4. disk full while writing a checkpoint: refused, no checkpoint that looks valid
        tried = ok = 0
        for i in range(args.runs):
            tried += 1
            good = save_checkpoint(root / f"good-{i}", step=100, recipe_state={"x": torch.ones(2)}, export=({"family": "dcgan"}, {"w": torch.ones(4)}), config={})
            bad = root / f"bad-{i}"
            bad.mkdir()
            (bad / "state.pt.partial").symlink_to("/dev/full")
            try:
                save_checkpoint(bad, step=200, recipe_state={"x": torch.ones(10000)}, export=({"family": "dcgan"}, {"w": torch.ones(4)}), config={})
            except CheckpointError:
                try:
                    verify(bad)
                except CheckpointError:
                    ok += verify(good)["step"] == 100
        rows.append(("disk full while checkpointing", tried, ok, "<= 1 interval (previous checkpoint kept)", "none", "n/a"))

        # 5. a Ray node is removed mid-run (2-node cluster, one rank per node), a replacement joins
        rows.append(node_removed(root, args.runs))

    t = Table(title=f"Reliability drills, {time.strftime('%Y-%m-%d')}, 2-core CPU")
    for c in ("fault injected", "runs tried", "runs recovered", "progress redone (steps)", "data lost", "time to recover"):
        t.add_column(c)
    for r in rows:
        t.add_row(*map(str, r))
    Console().print(t)
    recovered = sum(r[2] for r in rows)
    tried = sum(r[1] for r in rows)
    result_line("reliability", f"{recovered}/{tried} drill runs recovered across {len(rows)} kinds of fault", "every drill handled", recovered == tried,
                drills={r[0]: [r[2], r[1]] for r in rows})


if __name__ == "__main__":
    main()
