"""ASHA against running every trial to the end, on the same space and budget.

    python benchmarks/asha_vs_full.py [--config configs/toy-grid25.yaml --space configs/sweeps/toy-grid25-losses.yaml] [--steps N]

Prints, per scheduler: best metric found, trials finished/stopped, compute spent (trial-steps)
and wall time. Both sweeps run in one process on the same Ray instance.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from _common import result_line


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/dcgan-digits.yaml")
    ap.add_argument("--space", default="configs/sweeps/dcgan-digits-arch.yaml")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=6)
    args = ap.parse_args()

    from ganpipe import stages
    from ganpipe.config import load_config
    from ganpipe.train.local_ray import ensure_ray
    from ganpipe.tune.runner import run_sweep
    from ganpipe.tune.space import load_sweep

    ensure_ray(num_cpus=2, log_to_driver=False)  # the product's own local Ray
    base = yaml.safe_load(Path(args.config).read_text())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        from ganpipe.project import Project

        project = Project.load(tmp, env={})
        cfg = load_config(args.config, ["data.use_dvc=false"])
        prepared = stages.prepare_stage(cfg, project)
        for sched in ("asha", "fifo"):
            sweep = load_sweep(args.space)
            sweep.num_samples = args.samples if sweep.search != "grid" else sweep.num_samples
            sweep.seed = 0  # both schedulers see the same trial configurations
            sweep.overrides = {**sweep.overrides, "train.steps": args.steps, "eval.every": max(args.steps // 8, 1), "train.log_every": max(args.steps // 8, 1), "train.checkpoint_every": max(args.steps // 8, 1), "data.use_dvc": False}
            sweep.scheduler.name = sched
            sweep.scheduler.grace_period = max(args.steps // 8, 1)
            t0 = time.time()
            res = run_sweep(base, sweep, prepared.path, project, name=f"bench-{sched}")
            wall = time.time() - t0
            best = res.best.metric if res.best else float("nan")
            rows.append((sched, best, sum(r.status == "FINISHED" for r in res.rows), sum(r.status == "STOPPED_EARLY" for r in res.rows), sum(r.status == "ERROR" for r in res.rows), res.trial_steps, wall))
    t = Table(title=f"ASHA vs full runs: {args.space}, {args.steps} steps/trial, {time.strftime('%Y-%m-%d')}")
    for c in ("scheduler", f"best {res.metric}", "finished", "stopped early", "failed", "trial-steps", "wall s"):
        t.add_column(c, justify="right")
    for r in rows:
        t.add_row(r[0], f"{r[1]:.4g}", *map(str, r[2:6]), f"{r[6]:.0f}")
    console = Console(width=140)
    console.print(t)
    a, f = rows
    share = a[5] / max(f[5], 1)
    console.print(f"ASHA spent {share:.0%} of the compute of full runs; best metric {a[1]:.4g} vs {f[1]:.4g}")
    result_line("asha_vs_full", f"ASHA best {res.metric} {a[1]:.4g} with {share:.0%} of the trial-steps of full runs (best {f[1]:.4g})", "less compute, comparable best", None, asha=a[1], full=f[1], compute_share=share)


if __name__ == "__main__":
    main()
