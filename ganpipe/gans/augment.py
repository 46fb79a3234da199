"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) for training D on small data sets.

The same random transforms are applied to real and generated images before every D call, in
D's step and in G's (gradients flow through them to G), so D cannot memorise the few real
images, and G is not taught to produce augmented images (each transform is applied to both
sides alike, none leaks into G's distribution). The transforms follow the reference
implementation (mit-han-lab/data-efficient-gans, DiffAugment_pytorch.py): `color` (brightness
+-0.5, saturation x[0, 2], contrast x[0.5, 1.5]), `translation` (shift by up to 1/8 of the
side, zero padding), `cutout` (a zeroed square of half the side at a random place). Images
are N x C x H x W in [-1, 1]; randomness comes from the global generator of their device.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import Tensor

from ganpipe.catalog import Catalog

Transform = Callable[[Tensor], Tensor]
AUGMENTS: Catalog[list[Transform]] = Catalog("augmentation")


def _brightness(x: Tensor) -> Tensor:
    return x + (torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype, device=x.device) - 0.5)


def _saturation(x: Tensor) -> Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype, device=x.device) * 2) + mean


def _contrast(x: Tensor) -> Tensor:
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype, device=x.device) + 0.5) + mean


def _translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    tx = torch.randint(-sh, sh + 1, size=[n, 1, 1], device=x.device)
    ty = torch.randint(-sw, sw + 1, size=[n, 1, 1], device=x.device)
    gb, gx, gy = torch.meshgrid(
        torch.arange(n, device=x.device), torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij"
    )
    gx = torch.clamp(gx + tx + 1, 0, h + 1)
    gy = torch.clamp(gy + ty + 1, 0, w + 1)
    padded = torch.nn.functional.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])  # the zero border shifted in
    return padded.permute(0, 2, 3, 1).contiguous()[gb, gx, gy].permute(0, 3, 1, 2)


def _cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ox = torch.randint(0, h + (1 - ch % 2), size=[n, 1, 1], device=x.device)
    oy = torch.randint(0, w + (1 - cw % 2), size=[n, 1, 1], device=x.device)
    gb, gx, gy = torch.meshgrid(
        torch.arange(n, device=x.device), torch.arange(ch, device=x.device), torch.arange(cw, device=x.device), indexing="ij"
    )
    gx = torch.clamp(gx + ox - ch // 2, min=0, max=h - 1)
    gy = torch.clamp(gy + oy - cw // 2, min=0, max=w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype, device=x.device)
    mask[gb, gx, gy] = 0
    return x * mask.unsqueeze(1)


AUGMENTS.add("color", [_brightness, _saturation, _contrast])
AUGMENTS.add("translation", [_translation])
AUGMENTS.add("cutout", [_cutout])


def diff_augment(x: Tensor, policy: Iterable[str]) -> Tensor:
    """`x` through each named augmentation in order (all differentiable in `x`)."""
    for name in policy:
        for f in AUGMENTS.get(name):
            x = f(x)
    return x
