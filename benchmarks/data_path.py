"""Images/s delivered to the training step from the prepared Parquet shards, against the rate
at which the training step consumes them. Target: the loader the training loop uses is never
the bottleneck (>= 5x the step's consumption).

    python benchmarks/data_path.py [--quick] [--config configs/dcgan-digits.yaml]

Rows, all in one process on the same data (the digits, prepared into a temporary folder):

(a) in memory: what `ganpipe.train.loop` does, `load_stored` once (images kept uint8) then the
    loop's `Batcher` (a fresh permutation per epoch, batches indexed out of the split and
    converted to float one at a time);
(b) Ray Data streaming: `ray.data.read_parquet` on the train shards -> `iter_torch_batches`
    with a local shuffle buffer, each batch collated by the loop's `arrow_collate` (images as
    stored, uint8; the loader converts them after the copy to the device), a new pass (a new
    streaming execution) per epoch;
(b') the same after `Dataset.materialize()` (blocks cached in the object store);
(c) an image folder (the digits as PNGs, `ganpipe data fetch` layout) decoded with Pillow
    every epoch, batch by batch, resized as `prepare` does;
(d) the training step: `recipe.train_step` of the config (default configs/dcgan-digits.yaml)
    on CPU, fed by (a), images consumed per second (batch x n_critic per step);
(e) the loop's streaming loader (`train.loader: stream`, `ganpipe.data.streaming`): (b) read by
    a thread that keeps decoded batches ready and opens each next epoch while the current one
    drains, so the per-epoch start-up overlaps consumption.

Ratios are loader images/s over (d). The last line is `RESULT {json}` for benchmarks/run_all.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ganpipe.config import load_config  # noqa: E402
from ganpipe.data.loading import images_to_tensor, load_manifest, load_stored, load_tensors  # noqa: E402
from ganpipe.train.loop import Batcher, build_recipe  # noqa: E402

TARGET = 5.0


def prepared_digits(root: Path, image_size: int) -> tuple[Path, Path]:
    """(raw PNG folder, prepared shards) for the digits under `root`."""
    from ganpipe.config import DataConfig
    from ganpipe.data.prepare import prepare
    from ganpipe.data.sources import fetch

    raw = fetch("digits", root / "data")
    out = root / "prepared" / "digits"
    prepare("digits", out, DataConfig(raw_root=str(root / "data"), image_size=image_size))
    return raw, out


def rate(batches: Iterable[dict[str, torch.Tensor]]) -> tuple[int, float, float]:
    """(images, seconds, seconds to the first batch) consuming `batches`."""
    t0 = time.perf_counter()
    first, n = None, 0
    for b in batches:
        if first is None:
            first = time.perf_counter() - t0
        n += len(b["image"])
    return n, time.perf_counter() - t0, first or 0.0


def step_rate(cfg: Any, data_dir: Path, steps: int) -> float:
    """Images/s the training step consumes (CPU, in-memory batches, after 10 warm-up steps)."""
    torch.manual_seed(0)
    recipe = build_recipe(cfg, data_dir, torch.device("cpu"))
    batches = Batcher(load_tensors(data_dir, "train"), cfg.train.batch_size, 0, torch.device("cpu"))
    for s in range(10):
        recipe.train_step(batches, s + 1)
    t0 = time.perf_counter()
    for s in range(steps):
        logs = recipe.train_step(batches, s + 11)
    float(logs["loss_d"])  # one sync at the end, as the loop does at log points
    return steps * cfg.train.batch_size * cfg.loss.n_critic / (time.perf_counter() - t0)


def in_memory(data_dir: Path, bs: int, epochs: int) -> tuple[float, float]:
    """(images/s of the loop's Batcher, one-off seconds to read the split)."""
    t0 = time.perf_counter()
    data = load_stored(data_dir, "train")
    t_load = time.perf_counter() - t0
    n = len(data["image"])
    batcher = Batcher(data, bs, 0, torch.device("cpu"))
    calls = max(epochs * (n // bs), 1)
    for _ in range(min(calls, 20)):  # warm-up
        batcher()
    imgs, secs, _ = rate(batcher() for _ in range(calls))
    return imgs / secs, t_load


def replicated(data_dir: Path, out: Path, rows: int) -> Path:
    """The prepared set with its train split repeated to about `rows` rows, written in shards
    of `prepare`'s size (same manifest otherwise): an epoch as long as those of the sets
    streaming is for."""
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    from ganpipe.data.shards import MAX_SHARD_ROWS as SHARD_ROWS

    out.mkdir(parents=True, exist_ok=True)
    m = load_manifest(data_dir)
    train = pa.concat_tables([pq.read_table(f) for f in sorted(data_dir.glob("train-*.parquet"))])
    copies = max(1, -(-rows // m["counts"]["train"]))
    big = pa.concat_tables([train] * copies)
    for k, start in enumerate(range(0, big.num_rows, SHARD_ROWS)):
        pq.write_table(big.slice(start, SHARD_ROWS), out / f"train-{k:05d}.parquet", compression="zstd")
    for f in data_dir.glob("*.parquet"):
        if not f.name.startswith("train-"):
            shutil.copy(f, out / f.name)
    m["counts"]["train"] *= copies
    (out / "manifest.json").write_text(json.dumps(m))
    return out


def stream_batcher(data_dir: Path, bs: int, epochs: int) -> tuple[float, int]:
    """(images/s, epochs read) of the loop's streaming loader (`train.loader: stream`):
    `StreamBatcher` over `read_parquet`, its thread opening the next epoch while this one drains."""
    from ganpipe.data.streaming import StreamBatcher, parquet_dataset

    n_rows = load_manifest(data_dir)["counts"]["train"]
    b = StreamBatcher(parquet_dataset(data_dir), data_dir, bs, 0, torch.device("cpu"))
    try:
        calls = epochs * (n_rows // bs)
        b()  # the first batch (one-off start-up) is not counted, as for the in-memory path's load
        imgs, secs, _ = rate(b() for _ in range(calls))
        return imgs / secs, b.epoch + 1
    finally:
        b.close()


def ray_data(data_dir: Path, bs: int, epochs: int) -> dict[str, Any]:
    import ray

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    for name in ("ray.data", "ray.data._internal.execution.streaming_executor"):
        logging.getLogger(name).setLevel(logging.WARNING)  # one INFO line per epoch otherwise
    files = [str(p) for p in sorted(data_dir.glob("train-*.parquet"))]
    from ganpipe.data.streaming import arrow_collate

    collate = arrow_collate(load_manifest(data_dir)["schema"])
    n_rows = load_manifest(data_dir)["counts"]["train"]
    shuffle = min(8 * bs, n_rows)

    def passes(ds: Any) -> tuple[float, float, float]:
        """(images/s over all epochs, images/s after each epoch's first batch, mean s to first batch)"""
        total = secs = steady = 0.0
        firsts = []
        for ep in range(epochs):
            it = ds.iter_torch_batches(batch_size=bs, collate_fn=collate, drop_last=True, local_shuffle_buffer_size=shuffle, local_shuffle_seed=ep)
            n, s, first = rate(it)
            total, secs, steady = total + n, secs + s, steady + (s - first)
            firsts.append(first)
        return total / secs, total / max(steady, 1e-9), float(np.mean(firsts))

    ds = ray.data.read_parquet(files)
    stream = passes(ds)
    t0 = time.perf_counter()
    mat = ray.data.read_parquet(files).materialize()
    t_mat = time.perf_counter() - t0
    cached = passes(mat)
    return {"stream": stream, "materialized": cached, "t_materialize": t_mat, "shuffle": shuffle}


def pillow_folder(raw: Path, image_size: int, channels: int, bs: int, epochs: int) -> float:
    """Images/s decoding the PNG folder with Pillow every epoch (map-style dataset, no workers)."""
    from ganpipe.data.images import list_images, load_image

    files = list_images(raw)
    g = torch.Generator().manual_seed(0)

    def batches() -> Iterable[dict[str, torch.Tensor]]:
        for _ in range(epochs):
            perm = torch.randperm(len(files), generator=g).tolist()
            for i in range(0, len(perm) - bs + 1, bs):
                imgs = np.stack([load_image(files[j], image_size, channels) for j in perm[i : i + bs]])
                yield {"image": images_to_tensor(imgs)}

    imgs, secs, _ = rate(batches())
    return imgs / secs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/dcgan-digits.yaml")
    ap.add_argument("--quick", action="store_true", help="fewer steps and epochs (about a minute)")
    ap.add_argument("--steps", type=int, default=None, help="timed training steps (default 300, quick 100)")
    ap.add_argument("--epochs", type=int, default=None, help="epochs per loader (default 5, quick 2)")
    args = ap.parse_args()
    steps = args.steps or (100 if args.quick else 300)
    epochs = args.epochs or (2 if args.quick else 5)
    cfg = load_config(args.config)
    bs = cfg.train.batch_size
    logging.getLogger("ray").setLevel(logging.WARNING)
    import ray

    # A private local instance: never joins a cluster someone else is using on this machine.
    ray.init(address="local", num_cpus=os.cpu_count() or 2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)  # no Train runs here: no dashboard needed
    console = Console(width=None if sys.stdout.isatty() else 160)
    with tempfile.TemporaryDirectory() as tmp:
        raw, data_dir = prepared_digits(Path(tmp), cfg.data.image_size)
        m = load_manifest(data_dir)
        step = step_rate(cfg, data_dir, steps)
        mem, t_load = in_memory(data_dir, bs, max(epochs, 20))
        rd = ray_data(data_dir, bs, epochs)
        stream_small, small_epochs = stream_batcher(data_dir, bs, max(epochs, 10))
        big = replicated(data_dir, Path(tmp) / "big", 100_000)
        stream, stream_epochs = stream_batcher(big, bs, 2)
        big_rows = load_manifest(big)["counts"]["train"]
        pil = pillow_folder(raw, cfg.data.image_size, m["channels"], bs, max(epochs // 2, 1))
    ray.shutdown()

    s_all, s_steady, s_first = rd["stream"]
    c_all, c_steady, c_first = rd["materialized"]
    rows: list[tuple[str, float, str]] = [
        ("(a) in memory: load_stored + Batcher (the loop's path)", mem, f"one-off read {t_load:.2f} s; then indexing + per-batch conversion"),
        (
            "(b) Ray Data streaming: read_parquet -> iter_torch_batches",
            s_all,
            f"SLOW: {s_first:.1f} s to the first batch of every epoch (each pass is a new streaming execution: "
            f"list files, schedule read tasks, fill the {rd['shuffle']}-row shuffle buffer), paid per epoch on a "
            f"{m['counts']['train']}-row set; {s_steady:,.0f} img/s after it",
        ),
        (
            "(b') Ray Data, materialized once",
            c_all,
            f"materialize {rd['t_materialize']:.1f} s once; {c_first:.2f} s to the first batch per epoch; {c_steady:,.0f} img/s after it. "
            "Per-batch cost: Arrow slicing + local shuffle in the driver thread",
        ),
        (
            f"(e) the loop's streaming loader (train.loader=stream), {big_rows:,}-row split",
            stream,
            f"the train shards repeated to {big_rows:,} rows, {stream_epochs} epochs: epochs as long as those of the sets "
            "streaming is for, so the per-epoch start-up is paid once per ~1,500 batches",
        ),
        (
            f"(e') the same loader on the {m['counts']['train']}-row split itself",
            stream_small,
            f"SLOW on a small set, as (b): an epoch is {m['counts']['train'] // bs} batches, shorter than the per-epoch start-up; "
            "use train.loader=memory (the default) for sets that fit in memory",
        ),
        ("(c) PNG folder decoded with Pillow each epoch", pil, "open + decode + resize per image, every epoch (no DataLoader workers)"),
        ("(d) training step consumption (recipe.train_step)", step, f"{cfg.name}: batch {bs} x n_critic {cfg.loss.n_critic}, CPU, {torch.get_num_threads()} threads"),
    ]
    t = Table(title=f"Data path vs training step, {args.config}, {m['image_size']}px x {m['channels']}ch, batch {bs}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}", show_lines=True)
    for c, j in (("path", "left"), ("images/s", "right"), ("x step", "right"), ("target", "center"), ("notes", "left")):
        t.add_column(c, justify=j)  # type: ignore[arg-type]
    for name, v, note in rows:
        is_step = name.startswith("(d)")
        ratio = v / step
        ok = "-" if is_step else ("[green]>= 5x met[/]" if ratio >= TARGET else "[red]< 5x[/]")
        t.add_row(name, f"{v:,.0f}", "1.00" if is_step else f"{ratio:,.1f}", ok, note)
    console.print(t)
    mem_ratio, stream_ratio = mem / step, stream / step
    met = mem_ratio >= TARGET and stream_ratio >= TARGET
    console.print(
        f"the training loop's loaders deliver {mem_ratio:,.0f}x (memory, a) and {stream_ratio:,.1f}x (stream, e) what the step "
        f"consumes (target >= {TARGET:.0f}x): {'met' if met else 'NOT met'}"
    )
    print(
        "RESULT "
        + json.dumps(
            {
                "benchmark": "data_path",
                "figure": f"in-memory loader {mem:,.0f} img/s = {mem_ratio:,.0f}x the train step ({step:,.0f} img/s); "
                f"streaming loader {stream_ratio:.1f}x; bare Ray Data streaming {s_all / step:.2f}x, materialized {c_all / step:.1f}x, Pillow {pil / step:.2f}x",
                "value": round(min(mem_ratio, stream_ratio), 2),
                "target": f">= {TARGET:.0f}x the step (both loaders)",
                "met": met,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
