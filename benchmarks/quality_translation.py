"""Quality benchmarks for the translation families: train the default config in-process for its
full length, evaluate on the held-out split, and compare with a target.

Targets: pix2pix (configs/pix2pix-colorize.yaml) must beat copying the grayscale input by
2 dB PSNR; cyclegan (configs/cyclegan-textures.yaml) must at least halve the distance from
domain A to domain B (multi-scale SWD of translated held-out A vs held-out B, relative to
untranslated A vs B).

    python benchmarks/quality_translation.py           # full length (a few minutes each)
    python benchmarks/quality_translation.py --quick   # a short smoke run
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
QUICK_FRACTION = 0.1  # of train.steps in quick mode


def train_and_evaluate(config: str, quick: bool = False, overrides: list[str] | None = None) -> dict[str, Any]:
    """Materialise + prepare the config's data in a temporary folder, train, evaluate."""
    from ganpipe.config import load_config
    from ganpipe.data.prepare import prepare
    from ganpipe.data.sources import SOURCES
    from ganpipe.evaluate.metrics import EvalContext, evaluate
    from ganpipe.train.loop import run_training

    with tempfile.TemporaryDirectory(prefix="ganpipe-bench-") as tmp:
        work = Path(tmp)
        sets = [f"data.raw_root={work / 'data'}", "data.use_dvc=false", *(overrides or [])]
        cfg = load_config(REPO / config, sets)
        if quick:
            steps = max(1, int(cfg.train.steps * QUICK_FRACTION))
            cfg = load_config(REPO / config, [*sets, f"train.steps={steps}", f"train.log_every={min(steps, 50)}"])
        src = SOURCES.get(cfg.data.source)
        if src.materialize is not None:
            src.materialize(work / "data")
        data = work / "prepared"
        prepare(cfg.data.source, data, cfg.data)
        t0 = time.perf_counter()
        result = run_training(cfg, data)
        wall = time.perf_counter() - t0
        ctx = EvalContext(result.recipe.sampler(), data, work / "cache", cfg.eval.num_samples, cfg.eval.seed)
        values, _ = evaluate(ctx, cfg.eval.metrics)
    return {"family": cfg.model.family, "dataset": cfg.data.key, "steps": cfg.train.steps, "wall_s": round(wall, 1), "metrics": values}


def run_pix2pix(quick: bool = False) -> dict[str, Any]:
    row = train_and_evaluate("configs/pix2pix-colorize.yaml", quick)
    m = row["metrics"]
    row["target"] = "psnr >= psnr_baseline + 2 dB (grayscale input copied)"
    row["met"] = bool(m["psnr"] >= m["psnr_baseline"] + 2.0)
    return row


def run_cyclegan(quick: bool = False) -> dict[str, Any]:
    row = train_and_evaluate("configs/cyclegan-textures.yaml", quick)
    m = row["metrics"]
    row["target"] = "target_swd <= 0.5 * source_target_swd"
    row["met"] = bool(m["target_swd"] <= 0.5 * m["source_target_swd"])
    return row


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    for run in (run_pix2pix, run_cyclegan):
        print(json.dumps(run(quick), indent=2, sort_keys=True), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main(sys.argv[1:])
