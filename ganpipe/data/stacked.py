"""Built-in `stacked-digits`: the stacked-MNIST mode-coverage benchmark on the digits set.

Each 3-channel image stacks three independent digit images, one per channel, so the set has
1000 modes, 000-999 (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018, with MNIST).
Each channel's digit class is drawn uniformly, then an image of that class, so every mode has
probability 1/1000 and a perfect generator's mode histogram is uniform. The set is generated
at prepare time from the data seed and scikit-learn's digits (shipped with the package, like
`digits`): no raw folder, a DVC `generate` stage keyed on its parameters. The manifest's
`extra.channel_classes` (10) tells the `stacked_modes` metric to classify channel by channel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ganpipe.data.images import to_square
from ganpipe.data.sources import SOURCES, Examples, Source
from ganpipe.errors import DataError

NUM_STACKED = 50_000  # 50 images per mode on average: every mode is in every split
STACK = 3  # channels, one digit each: 10^3 modes


def digit_images(size: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 digits as uint8 [N, size, size] (resized as `digits` is prepared), labels [N]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = np.clip(d.images * (255.0 / 16.0), 0, 255).round().astype(np.uint8)  # 8x8, values 0..16
    if size != imgs.shape[1]:
        imgs = np.stack([np.asarray(to_square(Image.fromarray(im), size)) for im in imgs])
    return imgs, d.target.astype(np.int64)


def stack_digits(images: np.ndarray, labels: np.ndarray, n: int, seed: int, stack: int = STACK) -> tuple[np.ndarray, np.ndarray]:
    """n stacked images [n, S, S, stack] and their modes [n] (channel c's digit is the c-th decimal
    digit of the mode, most significant first); channels are drawn independently."""
    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(labels == k) for k in range(10)]
    digits = rng.integers(0, 10, size=(n, stack))  # each channel's class, uniform
    pick = np.empty((n, stack), dtype=np.int64)
    for k, members in enumerate(by_class):
        mask = digits == k
        pick[mask] = members[rng.integers(0, len(members), size=int(mask.sum()))]
    stacked = np.stack([images[pick[:, c]] for c in range(stack)], axis=-1)  # [n, S, S, stack]
    modes = (digits * 10 ** np.arange(stack - 1, -1, -1)).sum(axis=1)
    return stacked, modes.astype(np.int64)


def _read_stacked(path: Path | None, cfg: Any) -> Examples:
    if cfg.channels not in (None, STACK):
        raise DataError(
            f"stacked-digits has {STACK} channels (one digit each), but data.channels={cfg.channels}",
            hint="leave data.channels unset (or 3) for stacked-digits",
        )
    images, labels = digit_images(cfg.image_size)
    x, modes = stack_digits(images, labels, NUM_STACKED, cfg.seed)
    names = [f"{k:0{STACK}d}" for k in range(10**STACK)]
    return Examples("images", {"image": x, "label": modes}, names, extra={"channel_classes": 10, "stack": STACK})


SOURCES.add(
    "stacked-digits",
    Source(
        "stacked-digits",
        "images",
        f"three independent scikit-learn digits stacked as RGB channels: {NUM_STACKED:,} images, 1000 modes (000-999)",
        _read_stacked,
        None,
        16,
    ),
)
