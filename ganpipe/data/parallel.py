"""Prepare a plan in parallel on Ray, with memory bounded by a few shards.

The driver holds the plan (names of files, not pixels); Ray runs one task per chunk
(`tasks.prepare_chunk`) on every CPU of the instance (all nodes on a cluster) and hands their
small results back as they complete: each task has already written its shards into the
staging folder. The driver then writes the manifest and publishes the folder. A plan of one
chunk runs in this process instead: the same task, the same bytes, without Ray's start-up.

On a cluster the source and the output folder must be on storage every node sees (as for
training's `data_dir`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ganpipe.data.plan import Plan
from ganpipe.data.progress import PrepareProgress
from ganpipe.data.shards import SPLITS, publish, schema_of, shard_name, staging, write_shard
from ganpipe.data.tasks import peak_rss_kb, prepare_chunk
from ganpipe.errors import DataError

EXECUTORS = ("auto", "ray", "local")


@dataclass
class PrepareReport:
    """How a preparation went (not part of the manifest, which must not change from run to run)."""

    executor: str
    chunks: int
    examples: int
    seconds: float
    driver_peak_rss_kb: int
    task_peak_rss_kb: int
    skipped: list[dict[str, str]] = field(default_factory=list)
    task_seconds: float = 0.0  # summed over tasks: against seconds x CPUs, how busy the tasks kept the cores
    decode_seconds: float = 0.0  # the part of task_seconds spent reading, decoding and resizing

    @property
    def images_per_s(self) -> float:
        return self.examples / self.seconds if self.seconds > 0 else 0.0


def _local(chunks: list[dict[str, Any]], opts: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for i, c in enumerate(chunks):
        yield prepare_chunk(c, i, opts)


_REMOTE: Any = None  # prepare_chunk as a Ray task, made on first use (importing this module needs no Ray)


def _on_ray(chunks: list[dict[str, Any]], opts: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One Ray task per chunk (one CPU each), at most two per CPU of the cluster in flight, results
    as they complete. Plain tasks rather than a Ray Data pipeline: measured on 2 cores at 100k
    images, Ray Data's executor kept the CPUs 80-86% busy and plain tasks 99%, with the same
    task code (benchmarks/README.md, "Preparation at scale"). Closing the generator early (a bad
    file with on_bad_file=error) cancels what has not finished."""
    import ray

    from ganpipe.train.local_ray import ensure_ray

    global _REMOTE
    ensure_ray()
    if _REMOTE is None:
        _REMOTE = ray.remote(num_cpus=1)(prepare_chunk)
    window = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    todo = iter(enumerate(chunks))
    pending: list[Any] = []
    try:
        while True:
            for i, c in todo:
                pending.append(_REMOTE.remote(c, i, opts))
                if len(pending) >= window:
                    break
            if not pending:
                return
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    finally:
        for ref in pending:
            ray.cancel(ref)


def bad_files_error(bad: list[list[str]], source: str) -> DataError:
    shown = "; ".join(f"{name} ({reason[:80]})" for name, reason in bad[:10]) + (f"; and {len(bad) - 10} more" if len(bad) > 10 else "")
    return DataError(
        f"{len(bad)} unreadable or corrupt image file(s) in {source}: {shown}",
        hint="remove or replace these files, or set data.on_bad_file=skip to leave them out (they are listed in the manifest)",
    )


def prepare_plan(plan: Plan, out: Path, cfg: Any, executor: str = "auto", progress: bool = False) -> tuple[dict[str, Any], PrepareReport]:
    """Prepare every chunk of `plan` into `out` (atomically); returns (manifest, report).

    `executor`: "ray" (Ray tasks), "local" (this process), "auto" (Ray for more than
    one chunk). `data.on_bad_file`: "error" stops at the first chunk with a bad file and
    publishes nothing; "skip" leaves bad files out and lists them in the manifest."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    use_ray = executor == "ray" or (executor == "auto" and len(plan.chunks) > 1)
    on_bad = getattr(cfg, "on_bad_file", "error")
    t0 = time.perf_counter()
    out = Path(out)
    with staging(out) as tmp:
        opts = {
            "image_size": cfg.image_size, "channels": plan.channels, "seed": cfg.seed, "val_fraction": cfg.val_fraction,
            "test_fraction": cfg.test_fraction, "on_bad_file": on_bad, "out": str(tmp),
        }  # fmt: skip
        counts = {s: 0 for s in SPLITS}
        bad: list[list[str]] = []
        digests: dict[str, str] = {}
        task_rss, task_seconds, decode_seconds = 0, 0.0, 0.0
        bar = PrepareProgress(plan.num_examples, f"prepare {out.name}", enabled=progress)
        try:
            for r in (_on_ray if use_ray else _local)(plan.chunks, opts):
                bar.advance(r["examples"], len(r["bad"]))
                bad += r["bad"]
                task_rss = max(task_rss, r["peak_rss_kb"])
                task_seconds += r["seconds"]
                decode_seconds += r["decode_seconds"]
                digests.update(r["digests"])
                if bad and on_bad == "error":
                    raise bad_files_error(sorted(bad), plan.root)
                for s in SPLITS:
                    counts[s] += r["counts"][s]
        finally:
            bar.close()
        if counts["train"] == 0:
            raise DataError(
                f"source {plan.source!r} has too few examples ({sum(counts.values())} read, {len(bad)} skipped) for a train split",
                hint="add data or lower val/test fractions",
            )
        empty = {"image": np.empty((0, cfg.image_size, cfg.image_size, plan.channels), dtype=np.uint8), "label": np.empty(0, dtype=np.int64)}
        for s in SPLITS:  # readers expect at least one shard per split
            if not any(tmp.glob(f"{s}-*.parquet")):
                digests[shard_name(s, 0)] = write_shard(tmp / shard_name(s, 0), empty)
        skipped = [{"file": name, "reason": reason} for name, reason in sorted(bad)]
        manifest = {
            "source": plan.source,
            "kind": "images",
            "image_size": int(cfg.image_size),
            "channels": int(plan.channels),
            "num_classes": len(plan.class_names),
            "class_names": plan.class_names,
            "counts": counts,
            "schema": schema_of(empty),
            "split": "hash",
            "split_seed": cfg.seed,
            "fractions": {"val": cfg.val_fraction, "test": cfg.test_fraction},
            "extra": plan.extra,
            "on_bad_file": on_bad,
            "skipped": skipped,
        }
        manifest = publish(tmp, out, manifest, digests)
    report = PrepareReport("ray" if use_ray else "local", len(plan.chunks), plan.num_examples, time.perf_counter() - t0, peak_rss_kb(), task_rss, skipped, task_seconds, decode_seconds)
    return manifest, report
