"""Preparation at real size: a user-like image folder of 20k and 100k images, prepared on Ray
Data, against the single-core Pillow limit; peak memory of the driver and of the largest task;
DVC's add/status/push of the raw folder and the fast path that skips them.

    python benchmarks/prepare_scale.py [--sizes 20000,100000] [--cache DIR] [--image-size 64]

The folder (10 class sub-folders, 70% JPEG / 30% PNG, sides 64-128 px, not square) is made
once under --cache (default $GANPIPE_BENCH_CACHE or ~/.cache/ganpipe/bench-prepare) and reused;
the smaller set is hard links to the first files of the larger one. Each prepare runs in a
fresh process (its own Ray instance), so its driver's peak RSS (VmHWM) is its own.

Figures:
- wall time and images/s of each size (the fastest of --repeat runs; Ray start-up included),
  how busy the tasks kept the CPUs, and their decoding rate;
- marginal rate: (N_large - N_small) / (wall_large - wall_small), start-up excluded, against
  a single-core loop of `images.load_image` (decode + convert + resize) over a sample of the
  same files (the faster of a measurement before and one after the runs) times the CPUs Ray
  used (target >= 0.8);
- peak RSS of the driver and of the largest task, large run / small run (target <= 1.3);
- `dvc add`, `status`, `push` of the large raw folder in a project made by `init_project`,
  a second `dvc add` with nothing changed, and the fast path's own cost (the signature of
  the folder's file stats that lets a re-run skip DVC altogether).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

from _common import REPO, result_line

CLASSES = 10


def _make_one(args: tuple[Path, int, int]) -> None:
    import numpy as np
    from PIL import Image

    root, i, seed = args
    rng = np.random.default_rng(seed * 1_000_003 + i)
    w, h = (int(v) for v in rng.integers(64, 129, 2))
    base = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)  # smooth colour field plus grain, like a photo
    im = np.asarray(Image.fromarray(base).resize((w, h), Image.Resampling.BICUBIC), dtype=np.int16)
    im = np.clip(im + rng.integers(-12, 13, im.shape), 0, 255).astype(np.uint8)
    path = root / f"class_{i % CLASSES}" / f"{i:06d}.{'png' if i % 10 >= 7 else 'jpg'}"
    Image.fromarray(im).save(path, quality=90) if path.suffix == ".jpg" else Image.fromarray(im).save(path)


def make_folder(cache: Path, n: int, workers: int) -> Path:
    """The n-image folder under `cache`, made once (a `.complete` marker says it is whole)."""
    root = cache / f"images-{n}"
    if (root / ".complete").exists():
        return root
    bigger = sorted((p for p in cache.glob("images-*") if (p / ".complete").exists() and int(p.name.split("-")[1]) > n), key=lambda p: int(p.name.split("-")[1]))
    shutil.rmtree(root, ignore_errors=True)
    for c in range(CLASSES):
        (root / f"class_{c}").mkdir(parents=True)
    if bigger:  # hard links to the first n files of a larger set: same images, no disk
        src = bigger[0]
        for i in range(n):
            name = f"class_{i % CLASSES}/{i:06d}.{'png' if i % 10 >= 7 else 'jpg'}"
            os.link(src / name, root / name)
    else:
        t0 = time.perf_counter()
        with Pool(workers) as pool:
            pool.map(_make_one, [(root, i, 0) for i in range(n)], chunksize=256)
        print(f"made {n} images in {time.perf_counter() - t0:.0f} s under {root}", flush=True)
    (root / ".complete").write_text("")
    return root


def _spread(root: Path, n: int) -> list[Path]:
    """`n` of the folder's images, evenly spread over its listing."""
    from ganpipe.data.images import list_images

    files = list_images(root)
    return files[:: max(1, len(files) // n)][:n]


def _decode_rate(args: tuple[int, list[Path]]) -> float:
    """Images/s of this process decoding, converting and resizing `files` (after a warm-up)."""
    from ganpipe.data.images import load_image

    size, files = args
    for p in files[:50]:  # warm the page cache and Pillow's codecs
        load_image(p, size, 3)
    t0 = time.perf_counter()
    for p in files:
        load_image(p, size, 3)
    return len(files) / (time.perf_counter() - t0)


def single_core_rate(root: Path, size: int, sample: int) -> float:
    """Images/s of one process decoding, converting and resizing a spread sample of the files."""
    return _decode_rate((size, _spread(root, sample)))


def parallel_rate(root: Path, size: int, sample: int, procs: int) -> float:
    """Images/s of `procs` plain processes decoding disjoint parts of the sample at once (no
    Ray): what this machine's cores give together when nothing else is in the way. On a VM whose
    cores share the host's caches (or are hyperthreads of one core) it is below procs x the
    single-core rate, and no scheduler can beat it."""
    chosen = _spread(root, sample * procs)
    with Pool(procs) as pool:
        return sum(pool.map(_decode_rate, [(size, chosen[i::procs]) for i in range(procs)]))


def one_run(root: Path, out: Path, size: int) -> dict:
    """Prepare `root` in this process (called in a fresh child): the report as a dict."""
    import ray

    from ganpipe.config import DataConfig
    from ganpipe.data.prepare import prepare_with_report

    source = f"imagefolder:{root}"
    t0 = time.perf_counter()
    m, r = prepare_with_report(source, out, DataConfig(source=source, image_size=size, channels=3), executor="ray")
    wall = time.perf_counter() - t0
    cpus = int(ray.cluster_resources().get("CPU", 0))
    from ganpipe.data.tasks import peak_rss_kb

    cpu = cpu_seconds()
    return {"cpu": cpu, "n": r.examples, "wall_s": wall, "chunks": r.chunks, "driver_rss_mb": peak_rss_kb() / 1024, "task_rss_mb": r.task_peak_rss_kb / 1024, "cpus": cpus, "counts": m["counts"], "task_s": r.task_seconds, "decode_s": r.decode_seconds}


def cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) so far of this driver, of Ray's worker processes (where the
    tasks run) and of Ray's other processes (GCS, raylet, agents), all children of the driver
    of a local instance."""
    import psutil

    me = psutil.Process()
    t = me.cpu_times()
    out = {"driver": t.user + t.system, "workers": 0.0, "ray daemons": 0.0}
    for p in me.children(recursive=True):
        try:
            t, cmd = p.cpu_times(), " ".join(p.cmdline())
        except psutil.Error:
            continue
        out["workers" if "default_worker.py" in cmd or p.name().startswith("ray::") else "ray daemons"] += t.user + t.system
    return out


def run_child(root: Path, out: Path, size: int) -> dict:
    cmd = [sys.executable, __file__, "--one", str(root), "--out", str(out), "--image-size", str(size)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"prepare of {root} failed:\n{proc.stderr[-3000:]}")
    return json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])


def timed(cmd: list[str], cwd: Path) -> float:
    from ganpipe.data.dvc import _env

    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=_env())
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr[-2000:]}")
    return time.perf_counter() - t0


def dvc_figures(root: Path, work: Path) -> dict[str, float]:
    """Seconds of DVC's commands on the raw folder, in a project made as the pipeline makes one."""
    from ganpipe.data.dvc import _signature, init_project
    from ganpipe.project import Project

    proj = work / "proj"
    init_project(proj, Project.load(proj, env={"XDG_CACHE_HOME": str(work / "cache")}))
    data = proj / "data"
    shutil.copytree(root, data, copy_function=os.link)  # hard links: the same files, no copy
    dvc = [sys.executable, "-m", "dvc"]
    out = {"dvc add": timed([*dvc, "add", "data"], proj)}
    out["dvc status"] = timed([*dvc, "status"], proj)
    out["dvc push"] = timed([*dvc, "push"], proj)
    out["dvc add, unchanged"] = timed([*dvc, "add", "data"], proj)
    t0 = time.perf_counter()
    _signature(proj, "bench", [data])
    out["fast path: signature of the folder"] = time.perf_counter() - t0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="20000,100000")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--cache", default=os.environ.get("GANPIPE_BENCH_CACHE", str(Path.home() / ".cache" / "ganpipe" / "bench-prepare")))
    ap.add_argument("--sample", type=int, default=2000, help="files in the single-core baseline")
    ap.add_argument("--repeat", type=int, default=2, help="prepare runs per size; the fastest counts")
    ap.add_argument("--skip-dvc", action="store_true")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one_run(Path(args.one), Path(args.out), args.image_size)), flush=True)
        return

    from rich.console import Console
    from rich.table import Table

    sizes = sorted(int(s) for s in args.sizes.split(","))
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    workers = os.cpu_count() or 2
    folders = {n: make_folder(cache, n, workers) for n in sorted(sizes, reverse=True)}
    before = single_core_rate(folders[sizes[-1]], args.image_size, args.sample)
    runs = {}
    with tempfile.TemporaryDirectory(prefix="ganpipe-prepare-scale-") as tmp:
        for n in sizes:
            for k in range(args.repeat):  # the fastest of the repeats: load from elsewhere only slows a run down
                r = run_child(folders[n], Path(tmp) / f"out-{n}", args.image_size)
                shutil.rmtree(Path(tmp) / f"out-{n}", ignore_errors=True)
                print(f"{n} images, run {k + 1}/{args.repeat}: {r['wall_s']:.1f} s", flush=True)
                if n not in runs or r["wall_s"] < runs[n]["wall_s"]:
                    runs[n] = r
        # On a shared machine the baseline swings with the load: the faster of two measurements
        # (before and after the runs) makes the stricter limit.
        base = max(before, single_core_rate(folders[sizes[-1]], args.image_size, args.sample))
        together = max(parallel_rate(folders[sizes[-1]], args.image_size, args.sample, workers) for _ in range(2))
        dvc = {} if args.skip_dvc else dvc_figures(folders[sizes[-1]], Path(tmp) / "dvc")

    t = Table(title=f"prepare at scale ({args.image_size} px, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')})")
    for col in ("images", "wall s", "images/s", "chunks", "tasks busy (task s / wall x CPUs)", "decoding share of task s", "decode images/s per task",
                "CPU s: driver / Ray workers / Ray daemons", "driver peak RSS MB", "largest task peak RSS MB"):  # fmt: skip
        t.add_column(col, justify="right")
    for n in sizes:
        r = runs[n]
        busy = r["task_s"] / (r["wall_s"] * max(r["cpus"], 1))
        c = r["cpu"]
        t.add_row(f"{n}", f"{r['wall_s']:.1f}", f"{n / r['wall_s']:.0f}", f"{r['chunks']}", f"{busy:.0%}", f"{r['decode_s'] / r['task_s']:.0%}", f"{n / r['decode_s']:.0f}",
                  f"{c['driver']:.1f} / {c['workers']:.1f} / {c['ray daemons']:.1f}", f"{r['driver_rss_mb']:.0f}", f"{r['task_rss_mb']:.0f}")  # fmt: skip
    Console(width=180).print(t)
    small, large = runs[sizes[0]], runs[sizes[-1]]
    cpus = large["cpus"] or workers
    marginal = (sizes[-1] - sizes[0]) / max(large["wall_s"] - small["wall_s"], 1e-9)
    limit = base * cpus
    ratio = marginal / limit
    rss_ratio = max(large["driver_rss_mb"] / small["driver_rss_mb"], large["task_rss_mb"] / small["task_rss_mb"])
    s = Table(title="rates and memory")
    s.add_column("figure")
    s.add_column("value", justify="right")
    s.add_column("target", justify="right")
    s.add_row("single-core Pillow decode+resize, images/s", f"{base:.0f}", "")
    s.add_row(f"limit: single core x {cpus} CPUs, images/s", f"{limit:.0f}", "")
    s.add_row(f"marginal rate ({sizes[-1] - sizes[0]} images / wall difference), images/s", f"{marginal:.0f}", "")
    s.add_row("marginal rate / limit", f"{ratio:.2f}", ">= 0.8")
    s.add_row(f"{workers} plain processes decoding at once (no Ray), images/s", f"{together:.0f}", "")
    s.add_row("  = x single core (the machine's own parallel scaling)", f"{together / base:.2f}", "")
    s.add_row("marginal rate / those processes' rate", f"{marginal / together:.2f}", "")
    s.add_row("driver peak RSS, large / small", f"{large['driver_rss_mb'] / small['driver_rss_mb']:.2f}", "<= 1.3")
    s.add_row("largest task peak RSS, large / small", f"{large['task_rss_mb'] / small['task_rss_mb']:.2f}", "<= 1.3")
    for k, v in dvc.items():
        s.add_row(f"{k} ({sizes[-1]} files), s", f"{v:.1f}", "")
    Console(width=140).print(s)
    result_line("prepare at scale", f"marginal rate {ratio:.2f} of the {cpus}-core Pillow limit; peak RSS x{rss_ratio:.2f} from {sizes[0]} to {sizes[-1]} images",
                ">= 0.8 of the limit, RSS <= 1.3x", ratio >= 0.8 and rss_ratio <= 1.3, value=round(ratio, 3))  # fmt: skip


if __name__ == "__main__":
    main()
