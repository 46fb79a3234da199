"""Looking inside a generator's latent space: interpolation walks and truncation sweeps.

Samplers draw their own z in `generate`, so walking between chosen latents needs the generator
itself. A sampler whose `generate` accepts a `z` keyword is used through it; otherwise, for
z -> image families (`spec['z_dim'] > 0`: dcgan, cgan, biggan), the generator is called as
`sampler.generator(z)` or `sampler.generator(z, labels)` when class-conditional. Families
whose generator takes something else (translators: an input image) get a clear error.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ganpipe.errors import ConfigError
from ganpipe.gans.base import Sampler


def accepts(sampler: Sampler, keyword: str) -> bool:
    """Whether sampler.generate takes this keyword explicitly (not only through **kw)."""
    return keyword in inspect.signature(sampler.generate).parameters


def _check_latent(sampler: Sampler) -> int:
    z_dim = int(sampler.spec.get("z_dim") or 0)
    if z_dim < 1 or sampler.output_kind != "images":
        raise ConfigError(
            f"family {sampler.spec.get('family')!r} has no image-producing latent z to walk "
            f"(z_dim={z_dim}, output {sampler.output_kind})",
            hint="latent walks are for z -> image generators (dcgan, cgan, biggan)",
        )
    return z_dim


@torch.no_grad()
def decode(sampler: Sampler, z: Tensor, labels: Tensor | None = None) -> Tensor:
    """Images for given latents (N x z_dim) and, for conditional samplers, labels (N)."""
    _check_latent(sampler)
    if accepts(sampler, "z"):
        return sampler.generate(len(z), z=z, labels=labels)
    args = (z.to(sampler.device),)
    if sampler.num_classes:
        if labels is None:
            labels = torch.arange(len(z)) % sampler.num_classes
        args += (labels.to(sampler.device),)
    return sampler.generator(*args).float().cpu()


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between rows of a and b at fractions t (White 2016).

    Gaussian latents concentrate on a shell; linear midpoints fall inside it, where the
    generator was never trained. Nearly parallel pairs fall back to linear interpolation.
    """
    a_n = a / a.norm(dim=-1, keepdim=True)
    b_n = b / b.norm(dim=-1, keepdim=True)
    omega = torch.arccos((a_n * b_n).sum(-1, keepdim=True).clamp(-1.0, 1.0))
    so = torch.sin(omega)
    t = t.reshape(-1, *([1] * a.dim()))
    linear = (1 - t) * a + t * b
    spherical = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / so.clamp_min(1e-8)
    return torch.where(so.abs() < 1e-6, linear, spherical)


def interpolation_walk(sampler: Sampler, steps: int = 8, rows: int = 4, seed: int = 0) -> Tensor:
    """rows x steps x C x H x W: each row walks (slerp) from one random z to another.

    Conditional samplers keep one label per row (class r mod K), so only z changes along a row.
    Lay out with ganpipe.evaluate.figures.image_grid(walk.flatten(0, 1), nrow=steps).
    """
    if steps < 2 or rows < 1:
        raise ValueError(f"need steps >= 2 and rows >= 1, got steps={steps}, rows={rows}")
    z_dim = _check_latent(sampler)
    g = torch.Generator().manual_seed(seed)
    ends = torch.randn(2, rows, z_dim, generator=g)
    z = slerp(ends[0], ends[1], torch.linspace(0, 1, steps))  # steps x rows x z_dim
    z = z.transpose(0, 1).reshape(rows * steps, z_dim)
    labels = None
    if sampler.num_classes:
        labels = (torch.arange(rows) % sampler.num_classes).repeat_interleave(steps)
    images = decode(sampler, z, labels)
    return images.reshape(rows, steps, *images.shape[1:])


def class_grid(sampler: Sampler, per_class: int = 8, seed: int = 0, max_classes: int = 20) -> Tensor:
    """classes x per_class x C x H x W: row k holds samples of class k, with the same z per column."""
    k = min(sampler.num_classes, max_classes)
    if k < 1:
        raise ConfigError("a class grid needs a class-conditional generator")
    labels = torch.arange(k).repeat_interleave(per_class)
    images = sampler.generate(k * per_class, seed=seed, labels=labels)
    return images.reshape(k, per_class, *images.shape[1:])


def mean_pairwise_distance(feats: np.ndarray, max_samples: int = 1000, seed: int = 0) -> float:
    """Mean Euclidean distance between distinct samples: a diversity score (0 = collapse)."""
    x = torch.as_tensor(feats, dtype=torch.float64)
    if len(x) > max_samples:
        x = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:max_samples]]
    return float(torch.pdist(x).mean()) if len(x) > 1 else 0.0


def truncation_sweep(sampler: Sampler, values: list[float], ctx: Any) -> list[dict[str, float]]:
    """Quality against diversity as the truncation threshold shrinks (Brock et al. 2019, BigGAN).

    One row per value with `fcd` (vs held-out real, lower is better), `confidence` (mean top
    classifier probability, higher = more recognisable) and `diversity` (mean pairwise
    classifier-feature distance), all on ctx.num_samples samples in the classifier's space.
    """
    from ganpipe.evaluate.classifier import extract
    from ganpipe.evaluate.metrics import fd

    if not accepts(sampler, "truncation"):
        raise ConfigError(f"family {sampler.spec.get('family')!r} has no truncation trick", hint="truncation sweeps are for BigGAN-style samplers")
    if not ctx.manifest.get("num_classes"):
        raise ConfigError("a truncation sweep is measured with the data set's classifier and needs labelled images")
    f_real = ctx.classifier_features(ctx.heldout["image"])
    rows = []
    for t in values:
        images = sampler.generate(ctx.num_samples, seed=ctx.seed, truncation=float(t))
        feats, logits = extract(ctx.classifier[0], images)
        f = feats.numpy().astype(np.float64)
        rows.append(
            {
                "truncation": float(t),
                "fcd": fd(f, f_real),
                "confidence": float(torch.softmax(logits.double(), 1).max(1).values.mean()),
                "diversity": mean_pairwise_distance(f, seed=ctx.seed),
            }
        )
    return rows
