"""Built-in 2-D Gaussian mixtures (kind "points"): the standard mode-collapse toys.

`ring8` (8 modes on a circle of radius 2, std 0.02) and `grid25` (5 x 5 grid at -4..4, step 2,
std 0.05) as used by Metz et al. 2017 (unrolled GAN) and Srivastava et al. 2017 (VEEGAN).
They are generated at prepare time from the data seed, so there is no raw folder to fetch;
the manifest's `extra` carries the centres and std that the `mixture` metric scores against.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from ganpipe.data.sources import SOURCES, Examples, Source

NUM_POINTS = 20_000


def ring_centers(k: int = 8, radius: float = 2.0) -> np.ndarray:
    angles = 2 * np.pi * np.arange(k) / k
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)  # [k, 2]


def grid_centers(side: int = 5, spacing: float = 2.0) -> np.ndarray:
    ticks = spacing * (np.arange(side) - (side - 1) / 2)  # -4, -2, 0, 2, 4
    xx, yy = np.meshgrid(ticks, ticks, indexing="ij")
    return np.stack([xx.ravel(), yy.ravel()], axis=1)  # [side^2, 2]


def sample_mixture(centers: np.ndarray, std: float, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n points from the equal-weight mixture: (x [n, 2] float32, mode id [n] int64)."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, len(centers), size=n)
    x = centers[label] + std * rng.standard_normal((n, 2))
    return x.astype(np.float32), label.astype(np.int64)


def mixture_reader(centers: np.ndarray, std: float, n: int = NUM_POINTS) -> Callable[[Path | None, Any], Examples]:
    def read(path: Path | None, cfg: Any) -> Examples:
        x, label = sample_mixture(centers, std, n, cfg.seed)
        return Examples("points", {"x": x, "label": label}, extra={"centers": centers.tolist(), "std": std})

    return read


SOURCES.add(
    "ring8",
    Source("ring8", "points", "8 Gaussians on a circle of radius 2 (std 0.02), 20k 2-D points",
           mixture_reader(ring_centers(), 0.02), None, 0),
)  # fmt: skip
SOURCES.add(
    "grid25",
    Source("grid25", "points", "5x5 grid of Gaussians at -4..4 step 2 (std 0.05), 20k 2-D points",
           mixture_reader(grid_centers(), 0.05), None, 0),
)  # fmt: skip
