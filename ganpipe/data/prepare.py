"""Prepare a source into Parquet shards (train/val/test) plus a manifest.

Sources read from files (image folders, the built-in sets materialised as image folders,
Parquet) are planned and prepared in parallel tasks (`data/parallel.py`), split by a hash of
each example's key. Sets built in memory (crops, generated points, translation pairs) are
written by `write_prepared` with a seeded, stratified split. Both write through
`data/shards.py`: the output appears complete or not at all, and the manifest carries the
schema, counts, image size and a content fingerprint (sha256 over the shards' digests) for lineage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ganpipe.data.shards import MANIFEST, MAX_SHARD_ROWS, SPLITS, publish, schema_of, shard_name, staging, write_shard
from ganpipe.data.sources import Examples, planned, read_source
from ganpipe.data.splits import split_indices
from ganpipe.errors import DataError

__all__ = ["MANIFEST", "SPLITS", "prepare", "prepare_with_report", "write_prepared"]


def write_prepared(ex: Examples, out: Path, cfg: Any, source: str) -> dict[str, Any]:
    """Write shards + manifest for the in-memory `ex` to `out` atomically; returns the manifest."""
    n = len(ex)
    if n == 0:
        raise DataError(f"source {source!r} produced no examples", hint="check the source path and its contents")
    strata = ex.arrays.get("label") if ex.kind in ("images",) and "label" in ex.arrays else None
    splits = split_indices(n, cfg.val_fraction, cfg.test_fraction, cfg.seed, strata)
    if len(splits["train"]) == 0:
        raise DataError(f"source {source!r} has too few examples ({n}) to split", hint="add data or lower val/test fractions")
    out = Path(out)
    with staging(out) as tmp:
        counts = {}
        digests: dict[str, str] = {}
        for split, idx in splits.items():
            counts[split] = int(len(idx))
            for k, start in enumerate(range(0, max(len(idx), 1), MAX_SHARD_ROWS)):
                part = idx[start : start + MAX_SHARD_ROWS]
                shard = shard_name(split, k)
                digests[shard] = write_shard(tmp / shard, {col: arr[part] for col, arr in ex.arrays.items()})
        first = next(a for a in ex.arrays.values() if a.dtype == np.uint8 and a.ndim == 4) if ex.kind != "points" else None
        manifest = {
            "source": source,
            "kind": ex.kind,
            "image_size": int(first.shape[1]) if first is not None else 0,
            "channels": int(first.shape[3]) if first is not None else 0,
            "num_classes": len(ex.class_names),
            "class_names": ex.class_names,
            "counts": counts,
            "schema": schema_of(ex.arrays),
            "split_seed": cfg.seed,
            "fractions": {"val": cfg.val_fraction, "test": cfg.test_fraction},
            "extra": ex.extra,
        }
        return publish(tmp, out, manifest, digests)


def prepare_with_report(source: str, out: Path, cfg: Any, executor: str = "auto", progress: bool = False):
    """`prepare`, also returning how it went (a `parallel.PrepareReport`; None for sets built
    in memory)."""
    plan = planned(source, cfg)
    if plan is not None:
        from ganpipe.data.parallel import prepare_plan

        return prepare_plan(plan, out, cfg, executor=executor, progress=progress)
    ex = read_source(source, cfg)
    return write_prepared(ex, out, cfg, source), None


def prepare(source: str, out: Path, cfg: Any, executor: str = "auto", progress: bool = False) -> dict[str, Any]:
    """Read `source` with the data config `cfg` and write prepared shards to `out`; returns
    the manifest. `executor` and `progress`: see `parallel.prepare_plan`."""
    return prepare_with_report(source, out, cfg, executor=executor, progress=progress)[0]
