"""Label-free image metrics, for data sets without classes (e.g. `faces`).

`swd`: multi-scale sliced Wasserstein distance on Laplacian-pyramid patches (Karras et al.
2018) between generated and held-out real images. Its floor is the same distance from an
equally sized set of real training images, so both sides have the same sample-size bias.
"""

from __future__ import annotations

import torch

from ganpipe.evaluate import stats
from ganpipe.evaluate.metrics import METRICS, EvalContext, MetricResult


@METRICS.register("swd")
def sliced_wasserstein(ctx: EvalContext) -> MetricResult:
    """Multi-scale SWD (lower is better) of n generated vs held-out images, n = min(samples, train size)."""
    real = ctx.heldout["image"]
    train = ctx.split("train")["image"]
    n = min(len(ctx.fake), len(train))
    g = torch.Generator().manual_seed(ctx.seed)
    sub = train[torch.randperm(len(train), generator=g)[:n]]
    patch = min(7, real.shape[-1])
    value = stats.multiscale_sliced_wasserstein(ctx.fake[:n], real, patch_size=patch, seed=ctx.seed)
    floor = stats.multiscale_sliced_wasserstein(sub, real, patch_size=patch, seed=ctx.seed)
    return MetricResult(
        {"swd": value, "swd_floor": floor},
        {"extractor": f"Laplacian pyramid {patch}x{patch} patches", "n_fake": n, "n_real": len(real), "floor": floor},
    )
