"""Loading prepared shards: the manifest is checked first, so a missing or half-written
data set is a clear error rather than a crash inside a worker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from ganpipe.data.prepare import MANIFEST
from ganpipe.errors import DataError


def load_manifest(folder: str | Path) -> dict[str, Any]:
    p = Path(folder) / MANIFEST
    if not p.is_file():
        raise DataError(
            f"no prepared data at {folder} (missing {MANIFEST})",
            hint="run `ganpipe data prepare SOURCE --out DIR` or the pipeline's prepare stage",
        )
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"corrupt manifest {p}: {e}", hint="prepare the data again") from None


def column_to_numpy(col: "pa.ChunkedArray | pa.Array", info: dict[str, Any]) -> np.ndarray:
    """One column of a prepared table as a numpy array of shape (rows, *info["shape"]).

    Image columns (fixed-size binary) are viewed straight from the Arrow buffers: each chunk's
    rows are sliced out of its data buffer without copying the whole buffer, so decoding a
    small batch that is a slice of a large block costs only that batch.
    """
    shape = info["shape"]
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    if info["dtype"] == "uint8" and len(shape) > 1:
        width = int(np.prod(shape))
        parts = [np.frombuffer(c.buffers()[1], dtype=np.uint8)[c.offset * width : (c.offset + len(c)) * width] for c in chunks]
        buf = np.concatenate(parts) if len(parts) != 1 else parts[0]
        return buf.reshape(-1, *shape)
    vals = col.to_numpy(zero_copy_only=False)
    if vals.dtype == object and len(vals):  # list column: one vector per row (e.g. 2-D points)
        vals = np.stack(vals)
    return vals.astype(info["dtype"]).reshape(-1, *shape)


def table_to_numpy(table: pa.Table, schema: dict[str, Any]) -> dict[str, np.ndarray]:
    """The manifest's columns of an Arrow table (a shard, or a batch of one) as numpy arrays."""
    return {name: column_to_numpy(table.column(name), info) for name, info in schema.items()}


def load_split(folder: str | Path, split: str) -> dict[str, np.ndarray]:
    """All rows of one split as numpy arrays (images N x H x W x C uint8)."""
    folder = Path(folder)
    m = load_manifest(folder)
    files = sorted(folder.glob(f"{split}-*.parquet"))
    if not files:
        raise DataError(f"no '{split}' shards in {folder}", hint="prepare the data again")
    tables = [table_to_numpy(pq.read_table(f), m["schema"]) for f in files]
    out: dict[str, np.ndarray] = {}
    for name, info in m["schema"].items():
        parts = [t[name] for t in tables]
        out[name] = np.concatenate(parts) if parts else np.empty((0, *info["shape"]))
    return out


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 N x H x W x C -> float N x C x H x W in [-1, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return t.div_(127.5).sub_(1.0)


def numpy_to_tensors(arrays: dict[str, np.ndarray], schema: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Arrays ready for a recipe: image-like columns as float in [-1, 1], the rest as is."""
    out = {}
    for name, arr in arrays.items():
        if schema[name]["dtype"] == "uint8" and arr.ndim == 4:
            out[name] = images_to_tensor(arr)
        else:
            out[name] = torch.from_numpy(np.ascontiguousarray(arr))
    return out


def table_to_tensors(table: pa.Table, schema: dict[str, Any]) -> dict[str, torch.Tensor]:
    """An Arrow table of prepared rows decoded exactly as `load_tensors` decodes a split
    (what a streaming reader such as Ray Data's `iter_torch_batches` collate calls per batch)."""
    return numpy_to_tensors(table_to_numpy(table, schema), schema)


def load_tensors(folder: str | Path, split: str) -> dict[str, torch.Tensor]:
    """A split as tensors ready for a recipe: image-like columns in [-1, 1], the rest as is."""
    return numpy_to_tensors(load_split(folder, split), load_manifest(folder)["schema"])
