"""Metrics for image-to-image translators, each reported beside the reference that gives it meaning.

`paired` (Pix2Pix): PSNR / SSIM / L1 of G(input) against the held-out targets, and the same
for the input itself (`*_baseline`): a translator that does worse than copying its input has
learnt nothing. `cyclegan`: multi-scale sliced Wasserstein distance (SWD) between translated
held-out A images and held-out B images, beside the distance before translation (source to
target) and the real-vs-real floor (B vs B), plus the cycle reconstruction error.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ganpipe.errors import ConfigError
from ganpipe.evaluate import stats
from ganpipe.evaluate.metrics import METRICS, EvalContext, MetricResult


def _require_kind(ctx: EvalContext, kind: str, metric: str) -> None:
    if ctx.manifest.get("kind") != kind:
        raise ConfigError(f"metric {metric!r} needs {kind} data, got {ctx.manifest.get('kind')!r}")


def _subset(x: dict[str, Tensor], n: int, seed: int) -> dict[str, Tensor]:
    """The same seeded subset of at most n rows of every column."""
    total = len(next(iter(x.values())))
    idx = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[: min(n, total)]
    return {k: v[idx].contiguous() for k, v in x.items()}  # torchmetrics' L1 needs contiguous tensors


def _ssim_kernel(image_size: int) -> int:
    """The standard 11 x 11 window, shrunk (odd) for images smaller than it."""
    return min(11, image_size - 1 if image_size % 2 == 0 else image_size)


def _match_channels(x: Tensor, channels: int) -> Tensor:
    return x.expand(-1, channels, -1, -1).contiguous() if x.shape[1] == 1 and channels != 1 else x


@METRICS.register("paired")
def paired_metrics(ctx: EvalContext) -> MetricResult:
    """PSNR (dB, higher is better), SSIM and L1 of G(input) vs target on held-out pairs."""
    _require_kind(ctx, "paired", "paired")
    held = _subset(ctx.heldout, ctx.num_samples, ctx.seed)
    a, b = held["image"], held["target"]  # [N, C, S, S] in [-1, 1]
    pred = ctx.sampler.generate(len(a), seed=ctx.seed, inputs=a)
    base = _match_channels(a, b.shape[1])  # the input itself, e.g. gray replicated to RGB
    k = _ssim_kernel(b.shape[-1])
    values = {
        "psnr": stats.psnr(pred, b),
        "ssim": stats.ssim(pred, b, kernel_size=k),
        "l1": stats.l1(pred, b),
        "psnr_baseline": stats.psnr(base, b),
        "ssim_baseline": stats.ssim(base, b, kernel_size=k),
        "l1_baseline": stats.l1(base, b),
    }
    values["psnr_gain"] = values["psnr"] - values["psnr_baseline"]
    return MetricResult(values, {"n": len(a), "split": "val+test", "baseline": "input copied to the output", "ssim_kernel": k})


def _swd(x: Tensor, y: Tensor, seed: int) -> float:
    return stats.multiscale_sliced_wasserstein(x, y, patch_size=min(7, x.shape[-1]), seed=seed)


@METRICS.register("cyclegan")
def cyclegan_metrics(ctx: EvalContext) -> MetricResult:
    """Target-domain SWD of G_AB(A) (lower is better) and its references, both directions.

    Held-out rows are split in halves so every distance compares equally sized, disjoint sets:
    G_AB(A1) vs B2 (`target_swd`), A1 vs B2 (`source_target_swd`), B1 vs B2 (`target_swd_floor`).
    `cycle_l1` = L1(G_BA(G_AB(A)), A) on all held-out A (lower is better).
    """
    _require_kind(ctx, "unpaired", "cyclegan")
    held = _subset(ctx.heldout, ctx.num_samples, ctx.seed)
    a, b = held["image"], held["image_b"]  # [N, C, S, S] each
    n = len(a)
    if n < 4:
        raise ConfigError(f"metric 'cyclegan' needs at least 4 held-out rows, got {n}", hint="raise data.val_fraction/test_fraction")
    h = n // 2
    gen = ctx.sampler.generate
    fake_b = gen(n, seed=ctx.seed, inputs=a, direction="AtoB")
    fake_a = gen(n, seed=ctx.seed, inputs=b, direction="BtoA")
    rec_a = gen(n, seed=ctx.seed, inputs=fake_b, direction="BtoA")
    rec_b = gen(n, seed=ctx.seed, inputs=fake_a, direction="AtoB")
    s = ctx.seed
    values = {
        "target_swd": _swd(fake_b[:h], b[h : 2 * h], s),
        "source_target_swd": _swd(a[:h], b[h : 2 * h], s),
        "target_swd_floor": _swd(b[:h], b[h : 2 * h], s),
        "cycle_l1": stats.l1(rec_a, a),
        "target_swd_ba": _swd(fake_a[:h], a[h : 2 * h], s),
        "source_target_swd_ba": _swd(b[:h], a[h : 2 * h], s),
        "target_swd_floor_ba": _swd(a[:h], a[h : 2 * h], s),
        "cycle_l1_ba": stats.l1(rec_b, b),
    }
    values["target_swd_ratio"] = values["target_swd"] / max(values["source_target_swd"], 1e-12)
    return MetricResult(
        values,
        {"n": n, "half": h, "split": "val+test", "distance": "multi-scale sliced Wasserstein on Laplacian-pyramid patches"},
    )
