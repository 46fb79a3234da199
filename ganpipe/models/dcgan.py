"""DCGAN networks (Radford et al. 2016) for square images of size 4 * 2^k.

G: project z to 4x4, then strided transposed convs with BatchNorm + ReLU, tanh out.
D: strided convs with LeakyReLU(0.2), BatchNorm except on the first layer, a 4x4 conv to one
logit (no sigmoid: the loss owns the link function). Widths halve as resolution doubles.
With pack > 1, D judges `pack` consecutive samples jointly, stacked on the channel axis
(PacGAN, Lin et al. 2018): only its first convolution grows; losses and penalties apply to the
packed inputs unchanged.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from ganpipe.models.layers import dcgan_init, maybe_sn
from ganpipe.specs.shapes import num_doublings


def _widths(image_size: int, width: int, cap: int = 8) -> list[int]:
    """Channel widths from the 4x4 stage outwards, e.g. 32px, width 64 -> [256, 128, 64]."""
    k = num_doublings(image_size)
    return [width * min(2 ** (k - 1 - i), cap) for i in range(k)]


class DCGANGenerator(nn.Module):
    def __init__(self, z_dim: int, channels: int, image_size: int, width: int = 64, extra_in: int = 0):
        super().__init__()
        ws = _widths(image_size, width)
        self.z_dim = z_dim
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim + extra_in, ws[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(ws[0]),
            nn.ReLU(True),
        ]
        for cin, cout in zip(ws[:-1], ws[1:]):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(ws[-1], channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: Tensor) -> Tensor:
        # z: [N, z_dim (+extra)] -> [N, C, S, S]
        return self.net(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    def __init__(
        self,
        channels: int,
        image_size: int,
        width: int = 64,
        norm: Literal["batch", "none", "spectral"] = "batch",
        extra_in: int = 0,
        pack: int = 1,
    ):
        super().__init__()
        ws = list(reversed(_widths(image_size, width)))
        sn = norm == "spectral"
        self.pack = pack
        layers: list[nn.Module] = [maybe_sn(nn.Conv2d((channels + extra_in) * pack, ws[0], 4, 2, 1), sn), nn.LeakyReLU(0.2, True)]
        for cin, cout in zip(ws[:-1], ws[1:]):
            layers.append(maybe_sn(nn.Conv2d(cin, cout, 4, 2, 1, bias=norm != "batch"), sn))
            if norm == "batch":
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2, True))
        layers.append(maybe_sn(nn.Conv2d(ws[-1], 1, 4, 1, 0), sn))
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, x: Tensor) -> Tensor:
        # x: [N, C, S, S] -> logits [N / pack] (samples i*pack .. i*pack+pack-1 form pack i)
        if self.pack > 1:
            n, c, h, w = x.shape
            assert n % self.pack == 0, f"batch {n} is not a multiple of pack {self.pack}"
            x = x.reshape(n // self.pack, self.pack * c, h, w)
        return self.net(x).flatten()
