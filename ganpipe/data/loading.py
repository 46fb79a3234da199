"""Loading prepared shards: the manifest is checked first, so a missing or half-written
data set is a clear error rather than a crash inside a worker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
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


def load_split(folder: str | Path, split: str) -> dict[str, np.ndarray]:
    """All rows of one split as numpy arrays (images N x H x W x C uint8)."""
    folder = Path(folder)
    m = load_manifest(folder)
    files = sorted(folder.glob(f"{split}-*.parquet"))
    if not files:
        raise DataError(f"no '{split}' shards in {folder}", hint="prepare the data again")
    tables = [pq.read_table(f) for f in files]
    out: dict[str, np.ndarray] = {}
    for name, info in m["schema"].items():
        shape = info["shape"]
        parts = []
        for t in tables:
            col = t.column(name)
            if info["dtype"] == "uint8" and len(shape) > 1:
                buf = np.frombuffer(b"".join(c.buffers()[1].to_pybytes()[c.offset * int(np.prod(shape)) : (c.offset + len(c)) * int(np.prod(shape))] for c in col.chunks), dtype=np.uint8)
                parts.append(buf.reshape(-1, *shape))
            else:
                vals = col.to_numpy(zero_copy_only=False)
                if vals.dtype == object and len(vals):  # list column: one vector per row (e.g. 2-D points)
                    vals = np.stack(vals)
                parts.append(vals.astype(info["dtype"]).reshape(-1, *shape))
        out[name] = np.concatenate(parts) if parts else np.empty((0, *shape))
    return out


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 N x H x W x C -> float N x C x H x W in [-1, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return t.div_(127.5).sub_(1.0)


def tensor_to_images(x: torch.Tensor) -> np.ndarray:
    """float N x C x H x W in [-1, 1] -> uint8 N x H x W x C."""
    x = ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def load_tensors(folder: str | Path, split: str) -> dict[str, torch.Tensor]:
    """A split as tensors ready for a recipe: image-like columns in [-1, 1], the rest as is."""
    m = load_manifest(folder)
    raw = load_split(folder, split)
    out = {}
    for name, arr in raw.items():
        if m["schema"][name]["dtype"] == "uint8" and arr.ndim == 4:
            out[name] = images_to_tensor(arr)
        else:
            out[name] = torch.from_numpy(np.ascontiguousarray(arr))
    return out
