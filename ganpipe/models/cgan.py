"""Conditional GAN networks (Mirza & Osindero 2014) on DCGAN backbones.

The class enters G as a one-hot vector concatenated to z, and D as one-hot maps (one constant
plane per class) concatenated to the image channels, exactly the paper's conditioning by
input concatenation; the backbones' `extra_in` widens their first layer for it.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from ganpipe.models.dcgan import DCGANDiscriminator, DCGANGenerator


def one_hot(y: Tensor, num_classes: int, like: Tensor) -> Tensor:
    # y: [N] long -> [N, K] in like's dtype/device
    return F.one_hot(y.long(), num_classes).to(dtype=like.dtype, device=like.device)


class CGANGenerator(DCGANGenerator):
    def __init__(self, z_dim: int, channels: int, image_size: int, num_classes: int, width: int = 64):
        super().__init__(z_dim, channels, image_size, width, extra_in=num_classes)
        self.num_classes = num_classes

    def forward(self, z: Tensor, y: Tensor) -> Tensor:  # type: ignore[override]
        # z: [N, z_dim], y: [N] -> [N, C, S, S]
        return super().forward(torch.cat([z, one_hot(y, self.num_classes, z)], dim=1))


class CGANDiscriminator(DCGANDiscriminator):
    def __init__(
        self,
        channels: int,
        image_size: int,
        num_classes: int,
        width: int = 64,
        norm: Literal["batch", "none", "spectral"] = "batch",
    ):
        super().__init__(channels, image_size, width, norm=norm, extra_in=num_classes)
        self.num_classes = num_classes

    def forward(self, x: Tensor, y: Tensor) -> Tensor:  # type: ignore[override]
        # x: [N, C, S, S], y: [N] -> logits [N]
        n, _, h, w = x.shape
        maps = one_hot(y, self.num_classes, x)[:, :, None, None].expand(n, self.num_classes, h, w)
        return super().forward(torch.cat([x, maps], dim=1))

