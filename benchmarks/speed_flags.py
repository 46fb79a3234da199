"""Training speed of the speed flags: `train.amp` (bf16 autocast), `train.channels_last` and
`train.compile` (torch.compile of G and D), each on alone, against the all-off baseline.

    python benchmarks/speed_flags.py [--quick] [--configs configs/dcgan-digits.yaml,configs/biggan-digits.yaml]
        [--steps 60] [--repeats 2] [--device auto|cpu|cuda] [--threads N]

Images/s of the recipe's own `train_step` in a bare loop (no Ray, no logging), in one process:
every variant builds its recipe from the same seed, is fed by the training loop's `Batcher`,
runs warm-up steps (torch.compile compiles during these; the time is reported) and then the
same number of timed steps, with one host sync at the end. Variants run in turn, `--repeats`
times in alternating order, and each keeps its best figure, so background load hits all alike.
Images per step = batch x n_critic. On the CPU the table also gives images per CPU-second of
this process (steadier than wall time when other work shares the machine). The last line is
`RESULT {json}` for benchmarks/run_all.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from _common import bare_recipe, prepared, timed_steps

from ganpipe.config import load_config

VARIANTS: dict[str, list[str]] = {
    "baseline (all off)": [],
    "amp (bf16 autocast)": ["train.amp=true"],
    "channels_last": ["train.channels_last=true"],
    "compile": ["train.compile=true"],
}
BASE = ["train.amp=false", "train.channels_last=false", "train.compile=false"]
WIN = 1.05  # a flag "wins" when it is at least 5% faster than the baseline


def measure(config: str, overrides: list[str], data_dir: Path, device: torch.device, warmup: int, steps: int) -> tuple[float, float, float]:
    """(images/s over the timed steps, images per CPU-second of this process, seconds of warm-up)."""
    cfg = load_config(config, BASE + overrides)
    recipe, batches = bare_recipe(cfg, data_dir, device)
    t_warm, _ = timed_steps(recipe, batches, 1, warmup, device)
    c0 = time.process_time()
    secs, logs = timed_steps(recipe, batches, warmup + 1, steps, device)
    cpu = time.process_time() - c0
    if not all(torch.isfinite(v).all() for v in logs.values()):
        raise RuntimeError(f"{config} {overrides}: non-finite losses {logs}")
    imgs = steps * cfg.train.batch_size * cfg.loss.n_critic
    return imgs / secs, imgs / max(cpu, 1e-9), t_warm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="configs/dcgan-digits.yaml,configs/biggan-digits.yaml")
    ap.add_argument("--quick", action="store_true", help="dcgan-digits only, fewer steps, one repeat")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per variant (default 60, quick 30)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first (compilation happens here)")
    ap.add_argument("--repeats", type=int, default=None, help="default 2, quick 1")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's); 1 on a shared, busy machine")
    args = ap.parse_args()
    configs = ["configs/dcgan-digits.yaml"] if args.quick else [c.strip() for c in args.configs.split(",") if c.strip()]
    steps = args.steps or (30 if args.quick else 60)
    repeats = args.repeats or (1 if args.quick else 2)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device))
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} torch threads, {os.cpu_count()} cores"

    # config name -> variant -> (best images/s, best images per CPU-second, warm-up s)
    results: dict[str, dict[str, tuple[float, float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for config in configs:
            cfg, data_dir = prepared(config, Path(tmp))
            best: dict[str, tuple[float, float, float]] = {}
            names = list(VARIANTS)
            for r in range(repeats):
                for name in names if r % 2 == 0 else names[::-1]:
                    ips, ipc, warm = measure(config, VARIANTS[name], data_dir, device, args.warmup, steps)
                    prev = best.get(name, (0.0, 0.0, 0.0))
                    best[name] = (max(ips, prev[0]), max(ipc, prev[1]), max(warm, prev[2]))
                    print(f"  {cfg.name:14s} {name:22s} repeat {r}: {ips:8.0f} img/s, {ipc:8.0f} img/CPU-s (warm-up {warm:.1f} s)", flush=True)
            results[cfg.name] = best

    cpu_col = device.type == "cpu"
    t = Table(title=f"Speed flags, train_step in a bare loop, {steps} steps after {args.warmup} warm-up, best of {repeats}, {where}, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}")
    cols = [("config", "left"), ("variant", "left"), ("images/s", "right"), ("x baseline", "right")]
    if cpu_col:
        cols += [("images/CPU-s", "right"), ("x baseline (CPU time)", "right")]
    cols += [("warm-up s", "right")]
    for c, j in cols:
        t.add_column(c, justify=j)  # type: ignore[arg-type]

    def mark(ratio: float) -> str:
        style = "green" if ratio >= WIN else ("red" if ratio < 1 / WIN else "")
        return f"[{style}]{ratio:.2f}[/]" if style else f"{ratio:.2f}"

    summary, ratios = [], []
    for name, best in results.items():
        base, base_cpu, _ = best["baseline (all off)"]
        t.add_section()
        parts = []
        for variant, (ips, ipc, warm) in best.items():
            row = [name, variant, f"{ips:,.0f}", mark(ips / base)]
            if cpu_col:
                row += [f"{ipc:,.0f}", mark(ipc / base_cpu)]
            t.add_row(*row, f"{warm:.1f}")
            if variant != "baseline (all off)":
                parts.append(f"{variant.split(' ')[0]} {ips / base:.2f}x" + (f" ({ipc / base_cpu:.2f}x CPU time)" if cpu_col else ""))
                ratios.append(ips / base)
        summary.append(f"{name}: " + ", ".join(parts))
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(t)
    console.print(f"a flag wins when >= {WIN:.2f}x the baseline (green); < {1 / WIN:.2f}x is a loss (red)")
    if cpu_col:
        console.print("images/CPU-s counts this process's CPU time only: on a shared, busy machine it is the steadier figure (use --threads 1 there)")
    print(
        "RESULT "
        + json.dumps(
            {
                "benchmark": "speed_flags",
                "figure": f"{device.type}: " + "; ".join(summary),
                "value": round(max(ratios), 3),
                "target": "advice only: flags that win >= 1.05x are recommended",
                "met": None,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
