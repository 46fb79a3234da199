"""The prepared format: Parquet shards per split plus `manifest.json`, written into a staging
folder and published (renamed into place) only when complete, so a failure never leaves
shards that look finished. Every way of preparing data writes through here.

A shard holds one row per example: images as fixed-size binary (the raw bytes of one
H x W x C uint8 sample), small vectors as fixed-size lists, scalars as they are.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SPLITS = ("train", "val", "test")
MANIFEST = "manifest.json"
FORMAT_VERSION = 1
MAX_SHARD_ROWS = 8192
MIN_SHARD_ROWS = 256
SHARD_BYTES = 32 << 20  # uncompressed image bytes per shard: what one preparation task holds


def shard_rows(row_bytes: int) -> int:
    """Rows per shard for rows of `row_bytes`: about SHARD_BYTES of pixels, so memory per
    shard stays the same at 16 px and at 256 px."""
    return int(min(MAX_SHARD_ROWS, max(MIN_SHARD_ROWS, SHARD_BYTES // max(row_bytes, 1))))


def to_table(arrays: dict[str, np.ndarray]) -> pa.Table:
    """Columns sharing their first dimension -> an Arrow table in the shard layout."""
    cols: dict[str, pa.Array] = {}
    for name, a in arrays.items():
        if a.dtype == np.uint8 and a.ndim > 1:  # images: raw bytes of one H x W x C sample per row
            width = int(np.prod(a.shape[1:]))
            cols[name] = pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(width), len(a), [None, pa.py_buffer(np.ascontiguousarray(a))]  # no copy
            )
        elif a.ndim > 1:  # small vectors (e.g. 2-D points): one fixed-size list per row
            width = int(np.prod(a.shape[1:]))
            cols[name] = pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(a).reshape(-1)), width)
        else:
            cols[name] = pa.array(a)
    return pa.table(cols)


def write_shard(path: Path, arrays: dict[str, np.ndarray]) -> str:
    """One shard, written under a temporary name and renamed, so a shard file is whole.
    Returns the sha256 of its bytes, hashed from memory as they are written: the writer (a
    preparation task, in parallel with the others) pays for the fingerprint, not a serial
    re-read of every shard at publication."""
    table = to_table(arrays)
    # Dictionary encoding and min/max statistics are for columns with repeats and ranges, not
    # for kilobytes of pixels per row: on the image column they cost writing time (Parquet
    # tries a dictionary of every row's bytes before falling back) and save nothing.
    small = [f.name for f in table.schema if not pa.types.is_fixed_size_binary(f.type)]
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf, compression="zstd", use_dictionary=small, write_statistics=small)
    data = buf.getvalue()
    digest = hashlib.sha256(memoryview(data)).hexdigest()
    part = path.with_name(path.name + ".partial")
    with open(part, "wb") as f:
        f.write(memoryview(data))
    part.rename(path)
    return digest


def shard_name(split: str, index: int) -> str:
    return f"{split}-{index:05d}.parquet"


def schema_of(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The manifest's `schema`: dtype and per-row shape of each column."""
    return {name: {"dtype": str(a.dtype), "shape": list(a.shape[1:])} for name, a in arrays.items()}


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fingerprint_dir(folder: Path, digests: dict[str, str] | None = None) -> str:
    """The data set's identity for lineage: sha256 over each shard's name and the sha256 of
    its bytes, in name order. `digests` (shard name -> sha256, as `write_shard` returns them)
    saves re-reading those shards; any other shard is hashed here."""
    known = digests or {}
    h = hashlib.sha256()
    for p in sorted(folder.glob("*.parquet")):
        h.update(f"{p.name}\0{known.get(p.name) or file_digest(p)}\n".encode())
    return h.hexdigest()


@contextlib.contextmanager
def staging(out: Path) -> Iterator[Path]:
    """A fresh staging folder beside `out`, removed if the block raises (or is interrupted)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        remove_tree(tmp)
        raise


def remove_tree(folder: Path) -> None:
    """Remove a folder; tries twice, as a task that was being cancelled may still write into it."""
    for _ in range(2):
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            return
        import time

        time.sleep(0.5)


def publish(tmp: Path, out: Path, manifest: dict[str, Any], digests: dict[str, str] | None = None) -> dict[str, Any]:
    """Write the manifest (with the fingerprint of the shards in `tmp`; `digests`: those
    already known, see `fingerprint_dir`) and rename `tmp` to `out`, replacing a previous
    output only now. Returns the manifest."""
    manifest = {**manifest, "format_version": FORMAT_VERSION, "fingerprint": fingerprint_dir(tmp, digests)}
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
