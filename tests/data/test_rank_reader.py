"""Each training rank reads only its own rows of the prepared shards and keeps them as stored
(uint8 images); batches are converted on the device and equal what the float path gave."""

from __future__ import annotations

import json
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from ganpipe.data.loading import load_split, load_stored, load_tensors, to_model_inputs
from ganpipe.errors import DataError
from ganpipe.train.loop import Batcher

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def multi_shard(tmp_path_factory, digits_prepared) -> Path:
    """The digits with the train split cut into three shards of uneven sizes and row groups,
    so reads cross shard and row-group boundaries at every offset modulo the world size."""
    out = tmp_path_factory.mktemp("shards") / "digits"
    shutil.copytree(digits_prepared, out)
    shards = sorted(out.glob("train-*.parquet"))
    table = pq.read_table(shards)
    for f in shards:
        f.unlink()
    cuts = [0, 500, 1001, table.num_rows]
    for k, (a, b) in enumerate(zip(cuts, cuts[1:])):
        pq.write_table(table.slice(a, b - a), out / f"train-{k:05d}.parquet", row_group_size=97 + 50 * k)
    return out


def _rows(folder: Path) -> int:
    return int(json.loads((folder / "manifest.json").read_text())["counts"]["train"])


@pytest.mark.parametrize("world", [1, 2, 3, 8])
def test_each_rank_reads_exactly_its_strided_rows(multi_shard, world):
    full = load_split(multi_shard, "train")
    n = _rows(multi_shard)
    assert full["image"].shape == (n, 16, 16, 1) and full["image"].dtype == np.uint8
    seen = 0
    for rank in range(world):
        part = load_split(multi_shard, "train", rank, world, read_rows=13)  # batches that straddle the stride
        for name in full:
            assert part[name].dtype == full[name].dtype
            np.testing.assert_array_equal(part[name], full[name][rank::world])
        seen += len(part["label"])
    assert seen == n


def test_a_rank_allocates_its_slice_not_the_split(multi_shard):
    """The arrays a rank builds while reading are its slice's size (numpy's allocations are
    traced; Arrow's read buffer is a few hundred rows)."""
    world, n = 4, _rows(multi_shard)
    stored = n * (16 * 16 * 1 + 8)  # image bytes + an int64 label per row
    tracemalloc.start()
    try:
        part = load_split(multi_shard, "train", 1, world)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(part["image"]) == len(range(1, n, world))
    assert peak < stored / world + 256 * (16 * 16 + 8) * 2, (peak, stored)  # slice + two read batches at most
    assert peak < stored / 2  # what reading the split and slicing would cost at least


@pytest.mark.parametrize("world", [1, 3])
def test_batches_equal_the_float_path_bit_for_bit(multi_shard, world):
    """Same seed, same batches, values and memory layout: the stored-uint8 path converts each
    batch as `load_tensors` converted the whole split before."""
    rank = world - 1
    old = {k: v[rank::world] for k, v in load_tensors(multi_shard, "train").items()}
    stored = load_stored(multi_shard, "train", rank, world)
    assert stored["image"].dtype == torch.uint8 and stored["image"].shape[1:] == (16, 16, 1)
    a, b = Batcher(old, 32, seed=5, device=CPU), Batcher(stored, 32, seed=5, device=CPU)
    for _ in range(3 * len(stored["label"]) // 32):  # several epochs
        x, y = a(), b()
        assert x.keys() == y.keys()
        for k in x:
            assert x[k].dtype == y[k].dtype and x[k].stride() == y[k].stride()
            assert torch.equal(x[k], y[k])
    assert float(y["image"].min()) >= -1 and float(y["image"].max()) <= 1


def test_to_model_inputs_converts_only_stored_images():
    batch = {"image": torch.tensor([[[[0], [255]]]], dtype=torch.uint8), "label": torch.tensor([3]), "x": torch.ones(1, 2)}
    out = to_model_inputs(batch)
    assert out["image"].shape == (1, 1, 1, 2) and out["image"].flatten().tolist() == [-1.0, 1.0]
    assert out["label"] is batch["label"] and out["x"] is batch["x"]


def test_bad_reads_are_named(multi_shard, tmp_path):
    with pytest.raises(ValueError, match="rank 2 is not in"):
        load_split(multi_shard, "train", 2, 2)
    broken = tmp_path / "broken"
    shutil.copytree(multi_shard, broken)
    (broken / "train-00002.parquet").unlink()  # a shard lost in a copy
    n = _rows(multi_shard)
    with pytest.raises(DataError, match=f"hold 1001 rows but the manifest says {n}") as e:
        load_split(broken, "train", 0, 2)
    assert "prepare the data again" in str(e.value.hint)
    assert _rows(broken) == n  # nothing rewritten
