"""Train/val/test assignment.

Data read from files (image folders, Parquet) is split by a seeded hash of each example's key
(its path relative to the source, or its content): the split of an example depends on that key
and the seed alone, so adding files to a folder never moves an existing image between splits,
and every preparation task can split its own rows without seeing the others. Data sets that
ganpipe generates or crops in memory keep a seeded random split, stratified by label.
"""

from __future__ import annotations

import hashlib

import numpy as np

SPLITS = ("train", "val", "test")


def hash_unit(key: str, seed: int) -> float:
    """A uniform number in [0, 1) from (seed, key): blake2b, stable across processes and releases."""
    d = hashlib.blake2b(f"{seed}\0{key}".encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(d, "big") / 2.0**64


def hash_split(key: str, seed: int, val: float, test: float) -> str:
    """The split of one example: test for the first `test` of the hash range, then val."""
    u = hash_unit(key, seed)
    return "test" if u < test else "val" if u < test + val else "train"


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
