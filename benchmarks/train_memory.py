"""Peak memory of each Ray Train worker against what it must hold: its slice of the training
split as stored (uint8) plus the model. Target: peak RSS within 1.5x of that.

    .venv/bin/python benchmarks/train_memory.py [--sizes 40000,20000] [--steps 4] [--workers 2]

For each size, a synthetic split of 64x64x3 images (smooth random colour blocks, 10 labels) is
written once with the project's shard writer (`data.prepare.write_prepared`) and cached under
~/.cache/ganpipe/benchmarks/train-memory/. Then, in one Ray instance, two fits of DCGAN-64 with
`--workers` CPU workers run a few steps each:

- "rank rows, uint8": the loop as it is (`loop._split` -> `load_stored`: each rank reads
  its own rows of the shards and keeps them uint8; batches are converted one at a time);
- "whole split, float32": the previous loader, measured here as the baseline (every worker
  read every shard whole, decoded the split to float32, then kept a strided view of it).
  It replaces `loop._split` inside the benchmark's workers only.

Each worker resets its peak (`/proc/self/clear_refs`), records its RSS before reading data or
building the model (the interpreter, torch and Ray), trains, and reports VmHWM from
/proc/self/status. "The model" is measured, not estimated: a first fit on a split of one
batch a rank gives each worker's peak with next to no data (process, process group, weights,
gradients and optimizer state, one step's activations, allocator pools). The table gives per
worker the slice's uint8 bytes, the model state alone (weights + gradients + optimizer), the
peak, the peak over (slice + no-data peak), the target's figure, and the peak over (slice +
model state), which the fixed cost of a Ray worker on torch dominates at these sizes. The
growth lines are the peak's change between the two sizes per image of the worker's slice:
about 12 KiB (a 64x64x3 uint8 image) for rank rows, against 48 KiB (float32) per image of the
split, so 48 KiB x world per image of the slice, plus the read's transients, for the old path.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import REPO, result_line

IMAGE = 64
CACHE = Path.home() / ".cache" / "ganpipe" / "benchmarks" / "train-memory"
OVERRIDES = [
    f"data.image_size={IMAGE}", "data.channels=3", "data.use_dvc=false",
    "model.params.g_width=32", "model.params.d_width=32", "train.batch_size=64",
    "train.log_every=1000", "train.checkpoint_every=1000", "train.sample_every=1000", "eval.every=0",
]


def synthetic_split(rows: int) -> Path:
    """A prepared data set whose train split has at least `rows` 64x64x3 images (cached)."""
    import numpy as np

    from ganpipe.config import DataConfig
    from ganpipe.data.prepare import write_prepared
    from ganpipe.data.sources import Examples

    out = CACHE / f"synthetic-{rows}-{IMAGE}"
    if (out / "manifest.json").exists():
        return out
    cfg = DataConfig(image_size=IMAGE, val_fraction=0.005, test_fraction=0.005, seed=0)
    n = math.ceil(rows / (1 - cfg.val_fraction - cfg.test_fraction)) + 20
    rng = np.random.default_rng(0)
    images = np.empty((n, IMAGE, IMAGE, 3), dtype=np.uint8)
    for a in range(0, n, 4096):  # 8x8 colour blocks upsampled, plus a little noise
        b = min(a + 4096, n)
        blocks = rng.integers(0, 256, (b - a, 8, 8, 3), dtype=np.uint8)
        big = blocks.repeat(IMAGE // 8, axis=1).repeat(IMAGE // 8, axis=2)
        images[a:b] = np.clip(big.astype(np.int16) + rng.integers(-8, 9, big.shape, dtype=np.int16), 0, 255)
    ex = Examples("images", {"image": images, "label": rng.integers(0, 10, n).astype(np.int64)}, [str(c) for c in range(10)])
    print(f"writing {n} synthetic {IMAGE}x{IMAGE}x3 images to {out} (once) ...", flush=True)
    write_prepared(ex, out, cfg, "synthetic")
    return out


def status() -> dict[str, int]:
    """This process's memory figures from /proc (bytes)."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(rest.split()[0]) * 1024
    return out


def previous_split(cfg: Any, data_dir: str | Path, rank: int, world: int) -> tuple[dict, int]:
    """The training loop's loader before rank-aware reading (measured as the baseline): every
    rank read all shards whole, concatenated them, decoded the split to float32 and kept a
    strided view of its rows (so the whole float split stayed alive)."""
    import numpy as np
    import pyarrow.parquet as pq

    from ganpipe.data.loading import load_manifest, numpy_to_tensors, table_to_numpy

    m = load_manifest(data_dir)
    tables = [table_to_numpy(pq.read_table(f), m["schema"]) for f in sorted(Path(data_dir).glob("train-*.parquet"))]
    arrays = {name: np.concatenate([t[name] for t in tables]) for name in m["schema"]}
    del tables
    data = numpy_to_tensors(arrays, m["schema"])
    n = len(next(iter(data.values())))
    if world > 1:
        data = {k: v[rank::world] for k, v in data.items()}
    return data, n


def worker(config: dict[str, Any]) -> None:
    """Ray Train loop: the ganpipe loop for a few steps, with this process's peak memory recorded."""
    import ray.train
    import ray.train.torch
    import torch

    from ganpipe.config import build_config
    from ganpipe.train import loop

    if config["previous"]:
        loop._split = previous_split
    cfg = build_config(config["cfg"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM: only this run counts
    except OSError:
        pass
    before = status()
    res = loop.run_training(cfg, config["data_dir"], rank=rank, world=world, device=ray.train.torch.get_device())
    after = status()
    recipe = res.recipe
    params = [p for m in recipe.modules().values() for p in m.parameters()]
    weights = sum(t.numel() * t.element_size() for m in recipe.modules().values() for t in m.state_dict().values())
    grads = sum(p.grad.numel() * p.grad.element_size() for p in params if p.grad is not None)
    opt = sum(
        t.numel() * t.element_size()
        for o in recipe.optimizers().values()
        for s in o.state.values()
        for t in s.values()
        if isinstance(t, torch.Tensor)
    )
    rows = len(range(rank, int(json.loads((Path(config["data_dir"]) / "manifest.json").read_text())["counts"]["train"]), world))
    out = {
        "rank": rank, "world": world, "rows": rows, "slice_u8": rows * IMAGE * IMAGE * 3 + rows * 8,
        "model": weights + grads + opt, "base": before["VmRSS"], "peak": after["VmHWM"],
    }
    Path(config["out"], f"rank-{rank}.json").write_text(json.dumps(out))


def fit(data_dir: Path, previous: bool, steps: int, workers: int, out: Path, storage: Path) -> list[dict[str, Any]]:
    from ray.train import RunConfig, ScalingConfig

    from ganpipe.config import load_config
    from ganpipe.train.local_ray import trainer_class

    out.mkdir(parents=True, exist_ok=True)
    cfg = load_config(REPO / "configs/dcgan-digits.yaml", [*OVERRIDES, f"train.steps={steps}", f"train.num_workers={workers}"])
    trainer = trainer_class()(
        worker,
        train_loop_config={"cfg": cfg.to_dict(), "data_dir": str(data_dir), "previous": previous, "out": str(out)},
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=False, resources_per_worker={"CPU": 1}),
        run_config=RunConfig(name=f"train-memory-{'prev' if previous else 'rank'}-{data_dir.name}", storage_path=str(storage)),
    )
    trainer.fit()
    return [json.loads((out / f"rank-{r}.json").read_text()) for r in range(workers)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="40000,20000", help="training rows of the two synthetic splits")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",")}, reverse=True)
    tiny = 64 * args.workers  # one batch a rank: the no-data reference

    from rich.console import Console
    from rich.table import Table

    from ganpipe import logs
    from ganpipe.train.local_ray import ensure_ray

    logs.configure()
    data = {size: synthetic_split(size) for size in [*sizes, tiny]}
    ensure_ray()
    work = Path(tempfile.mkdtemp(prefix="ganpipe-train-memory-"))
    runs: dict[tuple[int, bool], list[dict[str, Any]]] = {}
    for size, previous in [(tiny, False), *((size, previous) for size in sizes for previous in (False, True))]:
        t0 = time.perf_counter()
        runs[size, previous] = fit(data[size], previous, args.steps, args.workers, work / f"{size}-{previous}", work / "storage")
        print(f"{size} rows, {'whole split float32' if previous else 'rank rows uint8'}: {time.perf_counter() - t0:.0f} s", flush=True)

    mb = 2**20
    ref = {r["rank"]: r for r in runs[tiny, False]}
    print(
        f"no-data reference ({tiny} rows, one batch a rank), per worker: start-up RSS "
        + ", ".join(f"{r['base'] / mb:.0f}" for r in ref.values())
        + " MiB (interpreter, torch, Ray); peak "
        + ", ".join(f"{r['peak'] / mb:.0f}" for r in ref.values())
        + " MiB (+ process group, model state, a training step's activations and allocator pools)"
    )
    t = Table(
        "train rows", "loader", "rank", "slice uint8 MiB", "model state MiB", "peak RSS MiB",
        "peak / (slice + no-data peak)", "peak / (slice + model state)",
        title=f"Peak RSS (VmHWM) per Ray Train worker: DCGAN-64 (widths 32), {args.workers} CPU workers, {args.steps} steps, batch 64",
    )
    worst = 0.0
    for size in sizes:
        for previous in (False, True):
            for r in runs[size, previous]:
                ratio = r["peak"] / (r["slice_u8"] + ref[r["rank"]]["peak"])
                if not previous:
                    worst = max(worst, ratio)
                t.add_row(
                    f"{sum(x['rows'] for x in runs[size, previous]):,}", "whole split, float32 (previous)" if previous else "rank rows, uint8", str(r["rank"]),
                    f"{r['slice_u8'] / mb:.0f}", f"{r['model'] / mb:.0f}", f"{r['peak'] / mb:.0f}",
                    f"{ratio:.2f}", f"{r['peak'] / (r['slice_u8'] + r['model']):.2f}",
                )
    Console(width=200).print(t)
    big, small = sizes[0], sizes[-1]
    if big != small:
        for previous in (False, True):
            a, b = runs[big, previous], runs[small, previous]
            per = [(x["peak"] - y["peak"]) / max(x["rows"] - y["rows"], 1) for x, y in zip(a, b)]
            print(
                f"growth {small:,} -> {big:,} rows, {'previous loader' if previous else 'rank rows'}: "
                + ", ".join(f"rank {i} {p / 1024:.1f} KiB" for i, p in enumerate(per))
                + f" of peak per image of its slice (a stored image is {IMAGE * IMAGE * 3 / 1024:.0f} KiB)"
            )
    saved = sum(r["peak"] for r in runs[big, True]) / sum(r["peak"] for r in runs[big, False])
    print(f"at {big:,} rows the previous loader's peaks are {saved:.2f}x the rank-aware ones")
    result_line(
        "train_memory",
        f"worst worker peak / (uint8 slice + no-data peak) = {worst:.2f} at {small:,}-{big:,} rows ({args.workers} workers); previous loader's peaks {saved:.2f}x higher at {big:,}",
        "<= 1.5", worst <= 1.5, value=round(worst, 3),
    )


if __name__ == "__main__":
    main()
