"""Shared set-up for the benchmark scripts: a config's data in a temporary folder, and the
final machine-readable line that `run_all.py` collects into its summary table."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


# One config per family, the families' own defaults (the benchmarks that compare per family).
FAMILIES = {
    "dcgan": "configs/dcgan-digits.yaml",
    "cgan": "configs/cgan-digits.yaml",
    "biggan": "configs/biggan-digits.yaml",
    "toy": "configs/toy-ring8.yaml",
    "pix2pix": "configs/pix2pix-colorize.yaml",
    "cyclegan": "configs/cyclegan-textures.yaml",
}


def prepared(config: str | Path, work: Path, overrides: list[str] | None = None):
    """(resolved config, prepared data folder) for `config`, with its raw data materialised
    under `work` (DVC off: benchmarks must not touch the project's data repo)."""
    from ganpipe.config import load_config
    from ganpipe.data.prepare import prepare
    from ganpipe.data.sources import SOURCES

    sets = [f"data.raw_root={work / 'data'}", "data.use_dvc=false", *(overrides or [])]
    cfg = load_config(REPO / config, sets)
    src = SOURCES.get(cfg.data.source)
    # One folder per data set and geometry: callers share `work` across sizes and channel counts.
    data = work / "prepared" / f"{cfg.data.key}-{cfg.data.image_size}-{cfg.data.channels or 'native'}"
    if not (data / "manifest.json").exists():
        if src.materialize is not None:
            src.materialize(work / "data")
        prepare(cfg.data.source, data, cfg.data)
    return cfg, data


def bare_recipe(cfg, data_dir: Path, device):
    """The family's recipe and the training loop's `Batcher`, outside any runner (seeded)."""
    from ganpipe.data.loading import load_tensors
    from ganpipe.train.loop import Batcher, build_recipe, seed_everything

    seed_everything(cfg.train.seed)
    recipe = build_recipe(cfg, data_dir, device)
    return recipe, Batcher(load_tensors(data_dir, "train"), cfg.train.batch_size, 0, device, pin=device.type == "cuda")


def timed_steps(recipe, batches, first: int, n: int, device) -> tuple[float, dict]:
    """(seconds, last step's logs) for `n` train_steps numbered from `first`; one host sync at
    the end, as at the loop's log points (and a CUDA sync so queued kernels are counted)."""
    import torch

    t0 = time.perf_counter()
    for step in range(first, first + n):
        logs = recipe.train_step(batches, step)
    float(next(iter(logs.values())))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0, logs


def result_line(benchmark: str, figure: str, target: str, met: bool | None, **extra: Any) -> None:
    """`RESULT {json}`: one line per headline figure, for `make bench`'s summary table."""
    print("RESULT " + json.dumps({"benchmark": benchmark, "figure": figure, "target": target, "met": met, **extra}), flush=True)
