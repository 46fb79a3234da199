"""Pix2Pix networks (Isola et al. 2017): a U-Net generator and a PatchGAN discriminator.

G: an encoder-decoder that halves the resolution down to 1 x 1 (so its depth follows the image
size: log2(S) levels) with skip connections between mirrored layers, so low-level structure
(edges, layout) shared by input and output bypasses the bottleneck. There is no z: dropout in
the innermost decoder layers is the only noise, as in the paper.
D: a PatchGAN that classifies overlapping patches as real/fake, one logit per patch; Pix2Pix
conditions it on the input by concatenating input and output on the channel axis. CycleGAN
uses the same discriminator with InstanceNorm and no condition.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from ganpipe.models.layers import dcgan_init
from ganpipe.specs.shapes import unet_depth

Norm = Literal["batch", "instance"]


def norm_layer(kind: Norm, channels: int) -> nn.Module:
    # InstanceNorm without affine parameters, as in the reference CycleGAN/Pix2Pix code.
    return nn.BatchNorm2d(channels) if kind == "batch" else nn.InstanceNorm2d(channels)


def _level_widths(depth: int, width: int, cap: int = 8) -> list[int]:
    """Encoder widths per level, e.g. depth 5, width 64 -> [64, 128, 256, 512, 512]."""
    return [width * min(2**i, cap) for i in range(depth)]


class UNetGenerator(nn.Module):
    """U-Net from in_channels to out_channels at a fixed square size (a power of two)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        image_size: int,
        width: int = 64,
        norm: Norm = "batch",
        dropout: float = 0.5,
        dropout_layers: int = 3,
    ):
        super().__init__()
        k = unet_depth(image_size)
        ws = _level_widths(k, width)
        use_bias = norm == "instance"  # BatchNorm has its own shift
        downs: list[nn.Module] = [nn.Conv2d(in_channels, ws[0], 4, 2, 1)]  # outermost: no norm
        for i in range(1, k):
            innermost = i == k - 1  # 1 x 1: normalising a single value per channel is meaningless
            layers: list[nn.Module] = [nn.LeakyReLU(0.2, True), nn.Conv2d(ws[i - 1], ws[i], 4, 2, 1, bias=use_bias or innermost)]
            if not innermost:
                layers.append(norm_layer(norm, ws[i]))
            downs.append(nn.Sequential(*layers))
        ups: list[nn.Module] = []
        for i in range(1, k):
            cin = ws[i] if i == k - 1 else 2 * ws[i]  # innermost has no skip to concatenate
            layers = [nn.ReLU(True), nn.ConvTranspose2d(cin, ws[i - 1], 4, 2, 1, bias=use_bias), norm_layer(norm, ws[i - 1])]
            if dropout > 0 and i >= k - dropout_layers:  # the decoder layers nearest the bottleneck
                layers.append(nn.Dropout(dropout))
            ups.append(nn.Sequential(*layers))
        self.downs = nn.ModuleList(downs)
        self.ups = nn.ModuleList(ups)  # ups[i - 1] takes level i back to level i - 1
        self.out = nn.Sequential(nn.ReLU(True), nn.ConvTranspose2d(2 * ws[0], out_channels, 4, 2, 1), nn.Tanh())
        dcgan_init(self)

    def forward(self, x: Tensor) -> Tensor:
        # x: [N, Cin, S, S] -> [N, Cout, S, S] in [-1, 1]
        skips = []
        h = x
        for down in self.downs:
            h = down(h)  # level i: [N, ws[i], S / 2^(i+1), S / 2^(i+1)]
            skips.append(h)
        for i in range(len(self.downs) - 1, 0, -1):
            h = self.ups[i - 1](h)  # [N, ws[i-1], S / 2^i, S / 2^i]
            h = torch.cat([skips[i - 1], h], dim=1)  # [N, 2 * ws[i-1], ...]
        return self.out(h)


class PatchDiscriminator(nn.Module):
    """PatchGAN: C64-C128-...(stride 2), one stride-1 layer, then a 1-channel conv (70x70 at n_layers=3)."""

    def __init__(self, in_channels: int, width: int = 64, n_layers: int = 3, norm: Norm = "batch"):
        super().__init__()
        use_bias = norm == "instance"
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        cout = width
        for n in range(1, n_layers + 1):
            cin, cout = cout, width * min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(cin, cout, 4, stride, 1, bias=use_bias), norm_layer(norm, cout), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(cout, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, x: Tensor) -> Tensor:
        # x: [N, C, S, S] -> patch logits [N, 1, P, P], P = ganpipe.specs.shapes.patch_output_size(S, n_layers)
        return self.net(x)
