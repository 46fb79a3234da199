"""CycleGAN networks (Zhu et al. 2017): ResNet generators and InstanceNorm PatchGAN discriminators.

G (Johnson et al. 2016): c7s1-k, `n_down` stride-2 downsamplings (d2k, d4k), `n_blocks`
residual blocks at the lowest resolution, mirrored upsamplings, c7s1-C with tanh. Reflect
padding avoids border artefacts; InstanceNorm normalises each image on its own, which suits
style/texture translation. The generator is fully convolutional: any size divisible by 2^n_down.
D: the PatchGAN of Pix2Pix with InstanceNorm and no condition.
"""

from __future__ import annotations

from torch import Tensor, nn

from ganpipe.models.layers import dcgan_init
from ganpipe.models.pix2pix import PatchDiscriminator


def _conv_in_relu(cin: int, cout: int, kernel: int, stride: int = 1, pad: int = 0) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, stride, pad, bias=True), nn.InstanceNorm2d(cout), nn.ReLU(True)]


class ResnetBlock(nn.Module):
    """x + [reflect-pad, conv3, IN, ReLU, reflect-pad, conv3, IN](x)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            *_conv_in_relu(channels, channels, 3),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, width: int = 64, n_blocks: int = 9, n_down: int = 2):
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), *_conv_in_relu(in_channels, width, 7)]  # c7s1-k
        w = width
        for _ in range(n_down):  # d2k, d4k, ...
            layers += _conv_in_relu(w, 2 * w, 3, stride=2, pad=1)
            w *= 2
        layers += [ResnetBlock(w) for _ in range(n_blocks)]
        for _ in range(n_down):  # u2k, uk
            layers += [nn.ConvTranspose2d(w, w // 2, 3, 2, 1, output_padding=1), nn.InstanceNorm2d(w // 2), nn.ReLU(True)]
            w //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(w, out_channels, 7), nn.Tanh()]  # c7s1-C
        self.net = nn.Sequential(*layers)
        self.n_down = n_down
        dcgan_init(self)

    def forward(self, x: Tensor) -> Tensor:
        # x: [N, Cin, H, W] -> [N, Cout, H, W] in [-1, 1]; H, W divisible by 2^n_down
        return self.net(x)


class TranslatorPair(nn.Module):
    """Both CycleGAN generators in one module, so one export (state dict) holds them both."""

    def __init__(self, channels: int, width: int = 64, n_blocks: int = 9, n_down: int = 2):
        super().__init__()
        self.G_AB = ResnetGenerator(channels, channels, width, n_blocks, n_down)
        self.G_BA = ResnetGenerator(channels, channels, width, n_blocks, n_down)

    def forward(self, x: Tensor, direction: str = "AtoB") -> Tensor:
        return self.G_AB(x) if direction == "AtoB" else self.G_BA(x)


def patch_discriminator(channels: int, width: int = 64, n_layers: int = 3) -> PatchDiscriminator:
    return PatchDiscriminator(channels, width, n_layers, norm="instance")
