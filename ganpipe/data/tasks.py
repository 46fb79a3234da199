"""The work of one preparation task: decode, convert and resize the images of one chunk, split
them by the hash of their keys, and write one shard per split into the staging folder.

Pure Python (Pillow, numpy, pyarrow): it runs in a Ray Data task or, for a one-chunk plan, in
the calling process, with the same result. Memory: one chunk's pixels (about
`shards.SHARD_BYTES`) plus its Arrow table while writing.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ganpipe.data.images import READ_ERRORS, load_image
from ganpipe.data.plan import READERS
from ganpipe.data.shards import SPLITS, shard_name, write_shard
from ganpipe.data.splits import hash_split


def peak_rss_kb() -> int:
    """This process's peak resident memory (VmHWM, /proc), 0 where there is no /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def prepare_chunk(chunk: dict[str, Any], index: int, opts: dict[str, Any]) -> dict[str, Any]:
    """Prepare chunk number `index`. `opts`: image_size, channels, seed, val_fraction,
    test_fraction, on_bad_file, out (the staging folder). Returns counts per split, the bad
    examples as [name, reason], the sha256 of each shard written, the task's seconds (all, and
    decoding alone) and peak memory. With on_bad_file=error a chunk that has a bad example
    writes nothing.

    The split of an example depends on its key only, so it is known before decoding: each
    image is decoded straight into its split's block of one array, and each shard is written
    from a slice of it (no per-split copy)."""
    t0 = time.perf_counter()
    size, channels = int(opts["image_size"]), int(opts["channels"])
    seed, val, test = int(opts["seed"]), float(opts["val_fraction"]), float(opts["test_fraction"])
    examples = list(READERS.get(chunk["kind"])(chunk))
    split_of = [hash_split(ex.key, seed, val, test) for ex in examples]
    starts, total = {}, 0
    for s in SPLITS:
        starts[s] = total
        total += split_of.count(s)
    images = np.empty((len(examples), size, size, channels), dtype=np.uint8)
    labels = np.empty(len(examples), dtype=np.int64)
    counts = {s: 0 for s in SPLITS}
    bad: list[list[str]] = []
    for ex, s in zip(examples, split_of):
        at = starts[s] + counts[s]
        try:
            images[at] = load_image(ex.open(), size, channels)
        except READ_ERRORS as e:
            bad.append([ex.name, f"{type(e).__name__}: {str(e)[:120]}"])
            continue
        labels[at] = ex.label
        counts[s] += 1
    decoded = time.perf_counter()
    digests: dict[str, str] = {}
    if bad and opts["on_bad_file"] == "error":
        counts = {s: 0 for s in SPLITS}
    else:
        for s in SPLITS:
            if counts[s]:
                rows = slice(starts[s], starts[s] + counts[s])
                name = shard_name(s, index)
                digests[name] = write_shard(Path(opts["out"]) / name, {"image": images[rows], "label": labels[rows]})
    done = time.perf_counter()
    return {
        "index": index, "examples": len(examples), "counts": counts, "bad": bad, "digests": digests,
        "seconds": done - t0, "decode_seconds": decoded - t0, "peak_rss_kb": peak_rss_kb(),
    }  # fmt: skip


# The chunk readers register themselves on import (a Ray worker imports only this module).
from ganpipe.data import folders, parquet_images  # noqa: E402,F401
