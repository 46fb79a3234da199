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

READ_ROWS = 256  # rows decoded at a time when reading a split


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


def shard_files(folder: str | Path, split: str) -> list[Path]:
    files = sorted(Path(folder).glob(f"{split}-*.parquet"))
    if not files:
        raise DataError(f"no '{split}' shards in {folder}", hint="prepare the data again")
    return files


def load_split(folder: str | Path, split: str, rank: int = 0, world: int = 1, read_rows: int = READ_ROWS) -> dict[str, np.ndarray]:
    """Rows `rank`, `rank + world`, `rank + 2 * world`, ... of one split (all rows by default),
    as stored: images N x H x W x C uint8.

    The arrays are allocated for this rank's rows alone and the shards are streamed into them
    `read_rows` rows at a time, so a Ray Train worker holds its own slice (1/world of the split,
    1 byte a pixel) and one small read buffer, never the whole split. Rows are taken strided,
    not in blocks: the shards are ordered by source index (often by class), and a stride gives
    every rank the same mix."""
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} is not in [0, {world})")
    m = load_manifest(folder)
    schema = m["schema"]
    files = shard_files(folder, split)
    sizes = [pq.ParquetFile(f).metadata.num_rows for f in files]
    total = sum(sizes)
    expected = m.get("counts", {}).get(split)
    if expected is not None and int(expected) != total:
        raise DataError(f"the '{split}' shards in {folder} hold {total} rows but the manifest says {expected}", hint="prepare the data again")
    own = len(range(rank, total, world))
    out = {name: np.empty((own, *info["shape"]), dtype=info["dtype"]) for name, info in schema.items()}
    pos = filled = 0  # the next row's index in the split; rows written to `out`
    for f in files:
        # No pre-buffering: the reader fetches pages as it decodes (one shard's column chunk
        # would otherwise be read whole, about 100 MB for 8,192 images of 64x64x3).
        reader = pq.ParquetFile(f, pre_buffer=False, buffer_size=1 << 20)
        for batch in reader.iter_batches(batch_size=read_rows, columns=list(schema)):
            first = (rank - pos) % world
            take = len(range(first, batch.num_rows, world))
            if take:
                for name, info in schema.items():
                    out[name][filled : filled + take] = column_to_numpy(batch.column(name), info)[first::world]
                filled += take
            pos += batch.num_rows
    return out


def is_stored_images(t: torch.Tensor) -> bool:
    """Images as stored (uint8 N x H x W x C), not yet what a recipe takes."""
    return t.dtype == torch.uint8 and t.ndim == 4


def images_to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 N x H x W x C -> float N x C x H x W in [-1, 1], on the images' device (the layout is
    channels-last in memory, as a permuted view of HWC rows is)."""
    return images.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def to_model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A batch as a recipe takes it: stored images converted where they are, the rest as is.
    The loop's batchers keep training data as stored and call this per batch, after the copy
    to the device: 4 times less memory and host-to-device traffic than float images."""
    return {k: images_to_float(v) if is_stored_images(v) else v for k, v in batch.items()}


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 N x H x W x C -> float N x C x H x W in [-1, 1]."""
    return images_to_float(torch.from_numpy(np.ascontiguousarray(images)))


def numpy_to_tensors(arrays: dict[str, np.ndarray], schema: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Arrays ready for a recipe: image-like columns as float in [-1, 1], the rest as is."""
    out = {}
    for name, arr in arrays.items():
        if schema[name]["dtype"] == "uint8" and arr.ndim == 4:
            out[name] = images_to_tensor(arr)
        else:
            out[name] = torch.from_numpy(np.ascontiguousarray(arr))
    return out


def load_tensors(folder: str | Path, split: str) -> dict[str, torch.Tensor]:
    """A split as tensors ready for a recipe: image-like columns in [-1, 1], the rest as is."""
    return numpy_to_tensors(load_split(folder, split), load_manifest(folder)["schema"])


def load_stored(folder: str | Path, split: str, rank: int = 0, world: int = 1) -> dict[str, torch.Tensor]:
    """This rank's rows of a split as tensors, images still uint8 N x H x W x C (see
    `load_split`); `to_model_inputs` converts a batch of them."""
    return {k: torch.from_numpy(v) for k, v in load_split(folder, split, rank, world).items()}
