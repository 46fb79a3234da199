"""Data-efficient training: DiffAugment (`train.augment`) against none, on small data sets, at the
same number of steps and on the same seeds.

    python benchmarks/small_data.py                  # dcgan-faces (100 faces) and digits-200, seeds 0,1,2
    python benchmarks/small_data.py --steps 600      # shorter runs (the table says how long)
    python benchmarks/small_data.py --quick          # 10% of the steps: a smoke run
    python benchmarks/small_data.py --policy translation --policy translation,cutout   # other policies

Rows: `dcgan-faces` (the built-in faces set: 80 training images, SWD on held-out faces) and
`digits-200` (configs/dcgan-digits.yaml trained on 200 training digits drawn once, seeded;
FCD measured with the full set's held-out images and classifier, whose floor is reported).
Every policy is compared with no augmentation on the same seeds, one row per policy. Each row
also shows how well the trained D separates its training images from held-out real ones (AUC;
0.5 = not at all), the overfitting that augmentation is meant to prevent.
Target: augmentation lowers the metric's mean over the seeds on both (lower is better).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from _common import prepared, result_line

POLICY = "color,translation,cutout"
QUICK_FRACTION = 0.1
SETS = {  # name -> (config, metric, training images kept: None = all)
    "dcgan-faces": ("configs/dcgan-faces.yaml", "swd", None),
    "digits-200": ("configs/dcgan-digits.yaml", "fcd", 200),
}


def subsample_train(full: Path, out: Path, n: int, seed: int = 0) -> Path:
    """A prepared copy of `full` whose train split keeps n seeded rows (val and test unchanged)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if (out / "manifest.json").exists():
        return out
    shutil.copytree(full, out)
    for f in out.glob("train-*.parquet"):
        f.unlink()
    table = pa.concat_tables([pq.read_table(f) for f in sorted(full.glob("train-*.parquet"))])
    keep = torch.randperm(table.num_rows, generator=torch.Generator().manual_seed(seed))[:n].sort().values
    pq.write_table(table.take(pa.array(keep.numpy())), out / "train-00000.parquet")
    m = json.loads((full / "manifest.json").read_text())
    m["counts"]["train"] = n
    m["fingerprint"] = f"{m['fingerprint'][:48]}-train{n}-seed{seed}"
    (out / "manifest.json").write_text(json.dumps(m, indent=2, sort_keys=True))
    return out


def d_memorisation(recipe, train_dir: Path, heldout_dir: Path, n: int = 256) -> float:
    """How well D tells its training images from held-out real ones: the probability that D
    scores a random training image above a random held-out one (AUC). 0.5: D has not memorised
    its training set; 1.0: it separates them completely (the overfitting DiffAugment is for).
    Both sets go through D in one batch, so BatchNorm normalises them alike; D is left as it was."""
    import copy

    from ganpipe.data.loading import load_tensors

    held = torch.cat([load_tensors(heldout_dir, s)["image"] for s in ("val", "test")])
    train = load_tensors(train_dir, "train")["image"]
    k = min(n, len(held), len(train))
    state = copy.deepcopy(recipe.D.state_dict())
    with torch.no_grad():
        scores = recipe.d_forward(torch.cat([train[:k], held[:k]]), None).reshape(2 * k, -1).mean(1)
    recipe.D.load_state_dict(state)
    return float((scores[:k, None] > scores[None, k:]).float().mean())


def run(name: str, work: Path, seed: int, augment: str, steps: int | None) -> dict:
    from ganpipe.evaluate.metrics import EvalContext, evaluate
    from ganpipe.train.loop import run_training

    config, metric, keep = SETS[name]
    sets = [f"train.seed={seed}", f"train.augment={augment}"] + ([f"train.steps={steps}"] if steps else [])
    cfg, full = prepared(config, work, sets)
    data = subsample_train(full, work / "prepared" / f"{full.name}-train{keep}", keep) if keep else full
    torch.set_num_threads(cfg.train.cpus_per_worker)  # as a Ray Train worker of that many CPUs runs
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    result = run_training(cfg, data)
    wall = time.perf_counter() - t0
    ctx = EvalContext(result.recipe.sampler(), full, work / "cache", cfg.eval.num_samples, cfg.eval.seed, cfg.eval.classifier_steps)
    values, _ = evaluate(ctx, [metric])
    return {"set": name, "seed": seed, "augment": augment, "steps": cfg.train.steps, "train_images": keep or int(json.loads((full / "manifest.json").read_text())["counts"]["train"]),
            "metric": metric, "value": values[metric], "floor": values.get(f"{metric}_floor"), "wall_s": round(wall, 1),
            "d_auc": d_memorisation(result.recipe, data, full)}  # fmt: skip


def _mean(rows: list[dict], augment: str, key: str) -> float:
    vals = [r[key] for r in rows if r["augment"] == augment and r.get(key) is not None]
    return statistics.mean(vals) if vals else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default=",".join(SETS), help=f"comma-separated subset of: {', '.join(SETS)}")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=None, help="train.steps for every run (default: each config's)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--policy", action="append", default=None, metavar="P",
                    help=f"train.augment policy to compare with none (repeatable; default {POLICY})")
    ap.add_argument("--rows", type=Path, action="append", default=None, metavar="JSON",
                    help="no training: the table of rows that runs saved with --json (repeatable, e.g. seeds run in two processes)")
    args = ap.parse_args()
    if args.rows:
        rows = sorted((r for f in args.rows for r in json.loads(f.read_text())), key=lambda r: (r["seed"], r["augment"] != "off"))
        names = list(dict.fromkeys(r["set"] for r in rows))
        policies = list(dict.fromkeys(r["augment"] for r in rows if r["augment"] != "off"))
        report(rows, names, sorted({r["seed"] for r in rows}), policies, quick=False, json_out=None)
        return
    names = [n for n in args.only.split(",") if n]
    unknown = [n for n in names if n not in SETS]
    if unknown:
        raise SystemExit(f"unknown set(s) {unknown}; choose from {', '.join(SETS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    policies = args.policy or [POLICY]
    rows = []
    with tempfile.TemporaryDirectory(prefix="ganpipe-small-data-") as tmp:
        for name in names:
            steps = args.steps
            if args.quick:
                from _common import REPO
                from ganpipe.config import load_config

                steps = max(1, int((steps or load_config(REPO / SETS[name][0]).train.steps) * QUICK_FRACTION))
            for seed in seeds:
                for augment in ("off", *policies):
                    row = run(name, Path(tmp), seed, augment, steps)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    report(rows, names, seeds, policies, args.quick, args.json)


def report(rows: list[dict], names: list[str], seeds: list[int], policies: list[str], quick: bool, json_out: Path | None) -> None:
    t = Table(title=f"DiffAugment policies vs none, same steps and seeds, {time.strftime('%Y-%m-%d')}")
    for c in ("data set", "train images", "steps", "metric", "seeds", "policy", "none: mean (per seed)", "DiffAugment: mean (per seed)", "change", "floor", "D train-vs-held-out AUC: none -> aug", "better"):
        t.add_column(c)
    verdicts = []
    for name in names:
        sel = [r for r in rows if r["set"] == name]
        off = [r["value"] for r in sel if r["augment"] == "off"]
        floors = [r["floor"] for r in sel if r["floor"] is not None]
        for policy in policies:
            on = [r["value"] for r in sel if r["augment"] == policy]
            m_off, m_on = statistics.mean(off), statistics.mean(on)
            better = m_on < m_off
            verdicts.append((name, policy, m_off, m_on, better, sel[0]["metric"]))
            t.add_row(
                name, str(sel[0]["train_images"]), str(sel[0]["steps"]), sel[0]["metric"], ",".join(map(str, seeds)), policy,
                f"{m_off:.3f} ({', '.join(f'{v:.3f}' for v in off)})", f"{m_on:.3f} ({', '.join(f'{v:.3f}' for v in on)})",
                f"{(m_on - m_off) / m_off:+.1%}", f"{statistics.mean(floors):.3f}" if floors else "-", f"{_mean(sel, 'off', 'd_auc'):.2f} -> {_mean(sel, policy, 'd_auc'):.2f}", "yes" if better else "NO",
            )  # fmt: skip
    Console(width=240).print(t)
    if json_out:
        json_out.write_text(json.dumps(rows, indent=2))
    for name, policy, m_off, m_on, better, metric in verdicts:
        result_line("small_data", f"{name}: {metric} {m_off:.3f} -> {m_on:.3f} with DiffAugment ({policy})", "lower with DiffAugment", None if quick else better)


if __name__ == "__main__":
    main()
