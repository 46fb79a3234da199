"""Prepare a source into Parquet shards (train/val/test) plus a manifest.

Output is written to a temporary sibling folder and renamed into place only when complete,
so a failure never leaves shards that look finished. The manifest carries the schema,
counts, image size and a content fingerprint (sha256 over the shards) for lineage.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ganpipe.data.sources import Examples, read_source
from ganpipe.errors import DataError

SPLITS = ("train", "val", "test")
SHARD_ROWS = 8192
MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def split_indices(n: int, val: float, test: float, seed: int, strata: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Seeded random split; stratified by label when labels are given so every class is in every split."""
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if strata is None else [np.flatnonzero(strata == c) for c in np.unique(strata)]
    out: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for g in groups:
        g = rng.permutation(g)
        n_test = int(round(len(g) * test))
        n_val = int(round(len(g) * val))
        out["test"].append(g[:n_test])
        out["val"].append(g[n_test : n_test + n_val])
        out["train"].append(g[n_test + n_val :])
    return {s: np.sort(np.concatenate(v)) if v else np.array([], dtype=np.int64) for s, v in out.items()}


def _table(ex: Examples, idx: np.ndarray) -> pa.Table:
    cols: dict[str, pa.Array] = {}
    for name, arr in ex.arrays.items():
        a = arr[idx]
        if a.dtype == np.uint8 and a.ndim > 1:  # images: raw bytes of one H x W x C sample per row
            width = int(np.prod(a.shape[1:]))
            cols[name] = pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(width), len(a), [None, pa.py_buffer(np.ascontiguousarray(a).tobytes())]
            )
        elif a.ndim > 1:  # small vectors (e.g. 2-D points): one fixed-size list per row
            width = int(np.prod(a.shape[1:]))
            cols[name] = pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(a).reshape(-1)), width)
        else:
            cols[name] = pa.array(a)
    return pa.table(cols)


def _schema(ex: Examples) -> dict[str, Any]:
    out = {}
    for name, arr in ex.arrays.items():
        out[name] = {"dtype": str(arr.dtype), "shape": list(arr.shape[1:])}
    return out


def fingerprint_dir(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.glob("*.parquet")):
        h.update(p.name.encode())
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def write_prepared(ex: Examples, out: Path, cfg: Any, source: str) -> dict[str, Any]:
    """Write shards + manifest for `ex` to `out` atomically; returns the manifest."""
    n = len(ex)
    if n == 0:
        raise DataError(f"source {source!r} produced no examples", hint="check the source path and its contents")
    strata = ex.arrays.get("label") if ex.kind in ("images",) and "label" in ex.arrays else None
    splits = split_indices(n, cfg.val_fraction, cfg.test_fraction, cfg.seed, strata)
    if len(splits["train"]) == 0:
        raise DataError(f"source {source!r} has too few examples ({n}) to split", hint="add data or lower val/test fractions")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        counts = {}
        for split, idx in splits.items():
            counts[split] = int(len(idx))
            for k, start in enumerate(range(0, max(len(idx), 1), SHARD_ROWS)):
                part = idx[start : start + SHARD_ROWS]
                pq.write_table(_table(ex, part), tmp / f"{split}-{k:05d}.parquet", compression="zstd")
        first = next(a for a in ex.arrays.values() if a.dtype == np.uint8 and a.ndim == 4) if ex.kind != "points" else None
        manifest = {
            "format_version": FORMAT_VERSION,
            "source": source,
            "kind": ex.kind,
            "image_size": int(first.shape[1]) if first is not None else 0,
            "channels": int(first.shape[3]) if first is not None else 0,
            "num_classes": len(ex.class_names),
            "class_names": ex.class_names,
            "counts": counts,
            "schema": _schema(ex),
            "split_seed": cfg.seed,
            "fractions": {"val": cfg.val_fraction, "test": cfg.test_fraction},
            "extra": ex.extra,
            "fingerprint": fingerprint_dir(tmp),
        }
        with open(tmp / MANIFEST, "w") as f:
            json.dump(manifest, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
            out.rename(old)
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return manifest
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def prepare(source: str, out: Path, cfg: Any) -> dict[str, Any]:
    """Read `source` with the data config `cfg` and write prepared shards to `out`."""
    ex = read_source(source, cfg)
    return write_prepared(ex, out, cfg, source)
