"""Step time of the flat gradient all-reduce against the bucketed, overlapped one, on two gloo
CPU processes (no Ray).

    python benchmarks/grad_sync.py [--families dcgan,biggan] [--steps 15] [--warmup 3] [--repeats 3]
        [--batch 64] [--backend gloo]

Each process builds the family's recipe from its config (default widths, synthetic images of
the config's size: the data path is not what is measured) and runs `train_step` under each
`GradSync` variant in turn, `--repeats` times in alternating order; a variant keeps its best
time per step, so background load hits all alike. Both processes start every timed block
together (a barrier) and the slower one's time counts. The overlap only pays where the
all-reduce runs beside the backward's compute: on the CPU, gloo's thread competes with the
backward for the same cores, and on a 2-core machine there is little to gain; on GPUs with
NCCL it runs on its own stream. The last line is `RESULT {json}` for benchmarks/run_all.py.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from _common import FAMILIES, REPO, result_line

VARIANTS = {"flat": 0.0, "bucketed 25MB": 25.0, "bucketed 64KB": 1 / 16}  # these models are < 1 MB: 64 KB makes several buckets


def _recipe(family: str, batch: int, bucket_mb: float):
    from ganpipe.config import load_config
    from ganpipe.gans import FAMILIES as RECIPES
    from ganpipe.gans import DataInfo
    from ganpipe.gans.base import GradSync

    cfg = load_config(REPO / FAMILIES[family], [f"train.batch_size={batch}"])
    labelled = family in ("cgan", "biggan")
    info = DataInfo(kind="images", image_size=cfg.data.image_size, channels=1, num_classes=10 if labelled else 0)
    torch.manual_seed(0)
    return RECIPES.get(family)(cfg, info, torch.device("cpu"), GradSync(bucket_mb)), cfg


def _worker(rank: int, world: int, port: int, args: argparse.Namespace, out: str) -> None:
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // world))
    dist.init_process_group(args.backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    import ganpipe.gans  # noqa: F401

    rows = []
    g = torch.Generator().manual_seed(rank)
    for family in args.families.split(","):
        best = {v: float("inf") for v in VARIANTS}
        cpu = {v: float("inf") for v in VARIANTS}
        info = {}
        for rep in range(args.repeats):
            order = list(VARIANTS) if rep % 2 == 0 else list(reversed(VARIANTS))
            for variant in order:
                recipe, cfg = _recipe(family, args.batch, VARIANTS[variant])
                s = cfg.data.image_size
                batch = {"image": torch.rand(args.batch, 1, s, s, generator=g) * 2 - 1, "label": torch.randint(0, 10, (args.batch,), generator=g)}
                for step in range(1, args.warmup + 1):
                    recipe.train_step(lambda: batch, step)
                dist.barrier()
                t0, c0 = time.perf_counter(), time.process_time()
                for step in range(args.warmup + 1, args.warmup + args.steps + 1):
                    logs = recipe.train_step(lambda: batch, step)
                float(logs["loss_d"])
                t = torch.tensor([(time.perf_counter() - t0) / args.steps, (time.process_time() - c0) / args.steps])
                dist.all_reduce(t, op=dist.ReduceOp.MAX)
                best[variant] = min(best[variant], t[0].item())
                cpu[variant] = min(cpu[variant], t[1].item())
                mb = sum(p.numel() * p.element_size() for m in (recipe.G, recipe.D) for p in m.parameters()) / 2**20
                info[variant] = (mb, recipe.sync.overlapped)
        for variant in VARIANTS:
            rows.append((family, variant, best[variant], cpu[variant], *info[variant]))
    if rank == 0:
        Path(out).write_text(repr(rows))
    dist.destroy_process_group()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", default="dcgan,biggan")
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64, help="per process")
    ap.add_argument("--backend", default="gloo")
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "rows")
        mp.spawn(_worker, args=(2, port, args, out), nprocs=2, join=True)
        rows = eval(Path(out).read_text())  # noqa: S307 (our own repr of floats and strings)

    print(f"2 {args.backend} processes on {os.cpu_count()} CPUs, batch {args.batch} per process, best of {args.repeats}")
    print(f"{'family':8} {'sync':15} {'params MB':>9} {'buckets':>8} {'ms/step':>8} {'vs flat':>8} {'CPU ms/step':>11}")
    figure = []
    for family in dict.fromkeys(r[0] for r in rows):
        flat = next(r[2] for r in rows if r[0] == family and r[1] == "flat")
        for fam, variant, t, c, mb, (early, buckets) in (r for r in rows if r[0] == family):
            ratio = flat / t
            last = "-" if variant == "flat" else f"{early}/{buckets}"
            print(f"{fam:8} {variant:15} {mb:9.2f} {last:>8} {1000 * t:8.1f} {ratio:7.2f}x {1000 * c:11.1f}")
            if variant == "bucketed 25MB":
                figure.append(f"{family} {ratio:.2f}x")
    print("buckets: the last G backward's buckets whose all-reduce started during the backward / all of them")
    print("CPU ms/step: the busier process's CPU time (gloo's threads included), steadier than wall time on a shared machine")
    result_line("grad_sync", "bucketed vs flat step time, 2 gloo CPU processes: " + ", ".join(figure), "advice only", None)


if __name__ == "__main__":
    sys.exit(main())
