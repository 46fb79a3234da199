"""Model quality per family: train each default config in-process for its full length,
evaluate the untrained and the trained generator on the held-out split, compare with a target.

    python benchmarks/quality.py                      # every family, full length (~45-50 min on 2 cores)
    python benchmarks/quality.py --only cgan,toy-grid25
    python benchmarks/quality.py --grid25-losses      # toy grid25 once per registered loss
    python benchmarks/quality.py --quick              # 10% of the steps: a smoke run, targets not expected
    python benchmarks/quality.py --only toy-grid25 --seeds 0,1,2   # the same config on several seeds
    python benchmarks/quality.py --only dcgan-stacked --set train.steps=3000   # any config override

Targets (issue bar, on these data sets): cgan and biggan conditional accuracy >= 90% (a digits
classifier on G(z, y); chance is 10%); toy grid25 with its best loss all 25 modes and >= 80%
high-quality samples; pix2pix PSNR >= 2 dB above copying the grayscale input; cyclegan
target-domain SWD <= half the source-to-target SWD; stacked digits (1000 modes) all 1000 modes
and KL(modes || uniform) <= 0.1 over 25,600 samples after at most 30 minutes of training (the
wall column; on a loaded machine it is longer than the training's own cost). DCGAN rows report their distance with its
real-vs-real floor (no fixed bar).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch
from rich.console import Console
from rich.table import Table

from _common import prepared, result_line

QUICK_FRACTION = 0.1


def _cond(m: dict) -> tuple[str, bool]:
    return f"cond_acc {m['cond_acc']:.3f} (classifier {m.get('classifier_test_accuracy', float('nan')):.3f})", m["cond_acc"] >= 0.9


def _mixture(need_all: bool) -> Callable[[dict], tuple[str, bool | None]]:
    def check(m: dict) -> tuple[str, bool | None]:
        real = int(m.get("modes_covered_real", 0))
        fig = f"modes {int(m['modes_covered'])}/{real}, high quality {m['high_quality_share']:.1%}"
        return fig, (m["modes_covered"] >= real and m["high_quality_share"] >= 0.8) if need_all else None

    return check


def _paired(m: dict) -> tuple[str, bool]:
    return f"PSNR {m['psnr']:.2f} vs grayscale {m['psnr_baseline']:.2f} dB ({m['psnr'] - m['psnr_baseline']:+.2f}), L1 {m['l1']:.3f} vs {m['l1_baseline']:.3f}", m["psnr"] >= m["psnr_baseline"] + 2.0


def _cyclegan(m: dict) -> tuple[str, bool]:
    r = m["target_swd"] / m["source_target_swd"]
    return f"target SWD {m['target_swd']:.3f} vs source {m['source_target_swd']:.3f} (ratio {r:.2f}), cycle L1 {m.get('cycle_l1', float('nan')):.3f}", r <= 0.5


STACKED_MINUTES = 30.0  # training time the stacked-digits bar allows on 2 CPU cores


def _stacked(m: dict) -> tuple[str, bool]:
    """Modes and KL against the bar; `wall_s` (training seconds) joins the metrics for the check."""
    minutes = m.get("wall_s", 0.0) / 60
    fig = (
        f"modes {int(m['stacked_modes'])}/1000, KL {m['stacked_kl']:.3f} (channels' digit imbalance {m.get('stacked_kl_channels', float('nan')):.3f}; real: {int(m['stacked_modes_real'])}, "
        f"KL {m['stacked_kl_real']:.3f}; channel classifier {m['channel_classifier_test_accuracy']:.3f}), train {minutes:.1f} min"
    )
    return fig, m["stacked_modes"] >= 1000 and m["stacked_kl"] <= 0.1 and minutes <= STACKED_MINUTES


def _distance(key: str) -> Callable[[dict], tuple[str, None]]:
    def check(m: dict) -> tuple[str, None]:
        floor = m.get(f"{key}_floor", m.get(f"{key}_real", float("nan")))
        return f"{key} {m[key]:.3f} (real-vs-real floor {floor:.3f})", None

    return check


# name -> (config, target description, check(metrics) -> (figure, met or None when no bar))
RUNS: dict[str, tuple[str, str, Callable[[dict], tuple[str, bool | None]]]] = {
    "dcgan": ("configs/dcgan-digits.yaml", "(reported)", _distance("fcd")),
    "dcgan-faces": ("configs/dcgan-faces.yaml", "(reported)", _distance("swd")),
    "cgan": ("configs/cgan-digits.yaml", "cond_acc >= 0.90", _cond),
    "biggan": ("configs/biggan-digits.yaml", "cond_acc >= 0.90", _cond),
    "toy-ring8": ("configs/toy-ring8.yaml", "(reported)", _mixture(False)),
    "toy-grid25": ("configs/toy-grid25.yaml", "25/25 modes, >= 80% high quality", _mixture(True)),
    "pix2pix": ("configs/pix2pix-colorize.yaml", "PSNR >= grayscale + 2 dB", _paired),
    "cyclegan": ("configs/cyclegan-textures.yaml", "target SWD <= 0.5 x source SWD", _cyclegan),
    "dcgan-stacked": ("configs/dcgan-stacked.yaml", f"1000/1000 modes, KL <= 0.1, train <= {STACKED_MINUTES:.0f} min", _stacked),
}


def train_and_evaluate(config: str, work: Path, quick: bool = False, overrides: list[str] | None = None, save: Path | None = None) -> dict[str, Any]:
    """Prepare the config's data under `work`, evaluate untrained, train, evaluate trained;
    `save`: also write the trained generator's export (spec, state) there, for analysis."""
    from ganpipe.evaluate.metrics import EvalContext, evaluate
    from ganpipe.train.loop import build_recipe, run_training

    cfg, data = prepared(config, work, overrides)
    if quick:
        steps = max(1, int(cfg.train.steps * QUICK_FRACTION))
        cfg, data = prepared(config, work, [*(overrides or []), f"train.steps={steps}", f"train.log_every={min(steps, 50)}"])
    cache = work / "cache"

    def measure(sampler) -> dict[str, float]:
        values, _ = evaluate(EvalContext(sampler, data, cache, cfg.eval.num_samples, cfg.eval.seed, cfg.eval.classifier_steps), cfg.eval.metrics)
        return values

    torch.set_num_threads(cfg.train.cpus_per_worker)  # as a Ray Train worker of that many CPUs runs
    torch.manual_seed(cfg.train.seed)
    before = measure(build_recipe(cfg, data, torch.device("cpu")).sampler())
    t0 = time.perf_counter()
    result = run_training(cfg, data)
    wall = time.perf_counter() - t0
    after = measure(result.recipe.sampler())
    if save is not None:
        save.parent.mkdir(parents=True, exist_ok=True)
        torch.save(result.recipe.export(), save)
    return {"family": cfg.model.family, "dataset": cfg.data.key, "loss": cfg.loss.name, "seed": cfg.train.seed, "steps": cfg.train.steps, "wall_s": round(wall, 1), "untrained": before, "metrics": after}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default=",".join(RUNS), help=f"comma-separated subset of: {', '.join(RUNS)}")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--grid25-losses", action="store_true", help="train toy grid25 once per registered loss")
    ap.add_argument("--seeds", default=None, help="comma-separated train.seed values: one row per seed (default: the config's seed)")
    ap.add_argument("--json", type=Path, help="also write every row (all metrics) to this file")
    ap.add_argument("--save", type=Path, help="folder for each trained generator's export (<run>-<i>.pt; load with ganpipe.gans.sampler_from_export)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for every run, e.g. train.steps=3000 (repeatable)")
    args = ap.parse_args()
    plan: list[tuple[str, list[str]]] = [(name, list(args.set)) for name in args.only.split(",") if name]
    unknown = [n for n, _ in plan if n not in RUNS]
    if unknown:
        raise SystemExit(f"unknown run(s) {unknown}; choose from {', '.join(RUNS)}")
    if args.grid25_losses:
        from ganpipe.losses import LOSSES

        plan = [p for p in plan if p[0] != "toy-grid25"] + [("toy-grid25", [*args.set, f"loss.name={n}"]) for n in LOSSES.names()]
    if args.seeds:
        plan = [(name, [*ov, f"train.seed={int(sd)}"]) for name, ov in plan for sd in args.seeds.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="ganpipe-quality-") as tmp:
        for i, (name, overrides) in enumerate(plan):
            config, target, check = RUNS[name]
            row = train_and_evaluate(config, Path(tmp), args.quick, overrides, args.save / f"{name}-{i}.pt" if args.save else None)
            fig_before, _ = check(row["untrained"])
            fig, met = check({**row["metrics"], "wall_s": row["wall_s"]})
            if args.quick:  # a tenth of the steps: the targets are for full-length runs
                target, met = (target if met is None else f"{target} (full length only)"), None
            row.update(name=name, target=target, figure=fig, untrained_figure=fig_before, met=met, seed=row["seed"])
            rows.append(row)
            print(json.dumps({k: row[k] for k in ("name", "loss", "seed", "steps", "wall_s", "figure", "untrained_figure", "met")}), flush=True)
    t = Table(title=f"Model quality per family, default configs{' (quick: 10% of steps)' if args.quick else ''}, {time.strftime('%Y-%m-%d')}")
    for c in ("family", "data set", "loss", "seed", "steps", "wall s", "untrained", "trained", "target", "met"):
        t.add_column(c)
    for r in rows:
        t.add_row(r["family"], r["dataset"], r["loss"], str(r["seed"]), str(r["steps"]), f"{r['wall_s']:.0f}", r["untrained_figure"], r["figure"], r["target"], "-" if r["met"] is None else ("yes" if r["met"] else "NO"))
    Console(width=200).print(t)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=float))
    for r in rows:
        result_line("quality", f"{r['name']} ({r['loss']}, seed {r['seed']}): {r['figure']}", r["target"], r["met"])


if __name__ == "__main__":
    main()
