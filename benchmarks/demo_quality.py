"""The demo's picture: FCD of configs/dcgan-digits.yaml against its real-vs-real floor, for the
shipped config and for variants of it, each trained in-process at its own length.

    python benchmarks/demo_quality.py                            # the shipped config only
    python benchmarks/demo_quality.py --variants all             # every variant below
    python benchmarks/demo_quality.py --variants ema,wide-ema --base "train.seed=1"

Target (issue bar): FCD at most 3x its floor (the same distance from as many real images the
classifier never saw) with the whole demo under 5 minutes on 2 CPU cores; the train seconds
here are the loop alone (`make demo` adds preparation, start-up and evaluation, ~1 minute).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from _common import prepared, result_line

CONFIG = "configs/dcgan-digits.yaml"
TARGET_RATIO = 3.0

# name -> overrides of the config, each a change someone would try on a blurry DCGAN
VARIANTS: dict[str, list[str]] = {
    "shipped": [],
    "ema": ["model.params.ema_decay=0.999"],
    "wide": ["model.params.g_width=64", "model.params.d_width=64"],
    "wide-ema": ["model.params.g_width=64", "model.params.d_width=64", "model.params.ema_decay=0.999"],
    "ema-lr1e-4": ["model.params.ema_decay=0.999", "optim.lr_g=1e-4", "optim.lr_d=1e-4"],
    "ema-6000": ["model.params.ema_decay=0.999", "train.steps=6000"],
    "ema-8000": ["model.params.ema_decay=0.999", "train.steps=8000"],
    "ema9995-6000": ["model.params.ema_decay=0.9995", "train.steps=6000"],
    "ema-6000-ttur": ["model.params.ema_decay=0.999", "train.steps=6000", "optim.lr_g=1e-4", "optim.lr_d=4e-4"],
    "ema-b128": ["model.params.ema_decay=0.999", "train.batch_size=128"],
}


def run(overrides: list[str], work: Path) -> dict:
    from ganpipe.evaluate.metrics import EvalContext, evaluate
    from ganpipe.train.loop import run_training

    cfg, data = prepared(CONFIG, work, overrides)
    # A Ray Train worker runs with OMP_NUM_THREADS = its CPUs; two threads in one process on a
    # busy 2-core machine spent about 4x the CPU time per step here.
    torch.set_num_threads(cfg.train.cpus_per_worker)
    t0 = time.perf_counter()
    result = run_training(cfg, data)
    train_s = time.perf_counter() - t0
    ctx = EvalContext(result.recipe.sampler(), data, work / "cache", cfg.eval.num_samples, cfg.eval.seed, cfg.eval.classifier_steps)
    m, _ = evaluate(ctx, ["fcd"])
    return {"steps": cfg.train.steps, "train_s": round(train_s, 1), "fcd": m["fcd"], "floor": m["fcd_floor"], "ratio": m["fcd"] / m["fcd_floor"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default="shipped", help=f"comma-separated subset of: {', '.join(VARIANTS)}; or all")
    ap.add_argument("--base", default="", help="comma-separated overrides applied before every variant's own")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    names = list(VARIANTS) if args.variants == "all" else [n for n in args.variants.split(",") if n]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    base = [s for s in args.base.split(",") if s]
    rows = []
    with tempfile.TemporaryDirectory(prefix="ganpipe-demo-quality-") as tmp:
        for name in names:
            row = {"variant": name, "overrides": " ".join([*base, *VARIANTS[name]]) or "(as shipped)", **run([*base, *VARIANTS[name]], Path(tmp))}
            rows.append(row)
            print(json.dumps(row), flush=True)
    t = Table(title=f"{CONFIG}: FCD against its real-vs-real floor, {time.strftime('%Y-%m-%d')}")
    for c in ("variant", "overrides", "steps", "train s", "FCD", "floor", "ratio", f"<= {TARGET_RATIO:.0f}x"):
        t.add_column(c)
    for r in rows:
        t.add_row(r["variant"], r["overrides"], str(r["steps"]), f"{r['train_s']:.0f}", f"{r['fcd']:.2f}", f"{r['floor']:.2f}", f"{r['ratio']:.2f}", "yes" if r["ratio"] <= TARGET_RATIO else "no")
    Console(width=200).print(t)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    first = rows[0]
    result_line("demo quality", f"{first['variant']}: FCD {first['fcd']:.2f} = {first['ratio']:.2f}x floor {first['floor']:.2f}, train {first['train_s']:.0f} s", f"<= {TARGET_RATIO:.0f}x floor", first["ratio"] <= TARGET_RATIO)


if __name__ == "__main__":
    main()
