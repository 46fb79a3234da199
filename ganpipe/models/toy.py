"""MLPs for 2-D toy distributions (Goodfellow et al. 2014's fully connected G and D).

G: z -> hidden ReLU layers (optionally BatchNorm, as in PacGAN's G) -> 2 (linear output: the
data is unbounded). D: (pack x 2) -> hidden ReLU layers -> 1 logit (the loss owns the link
function). With pack > 1, D judges `pack` samples jointly (PacGAN, Lin et al. 2018), which
penalises mode collapse: a packed set of collapsed samples is easy to tell from real ones.
"""

from __future__ import annotations

from torch import Tensor, nn


def mlp(din: int, dout: int, width: int, depth: int, batchnorm: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers.append(nn.Linear(din if i == 0 else width, width, bias=not batchnorm))
        if batchnorm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(nn.ReLU(True))
    layers.append(nn.Linear(width if depth else din, dout))
    return nn.Sequential(*layers)


class ToyGenerator(nn.Module):
    def __init__(self, z_dim: int, width: int = 256, depth: int = 3, batchnorm: bool = False, out_dim: int = 2):
        super().__init__()
        self.z_dim = z_dim
        self.net = mlp(z_dim, out_dim, width, depth, batchnorm)

    def forward(self, z: Tensor) -> Tensor:
        # z: [N, z_dim] -> points [N, 2]
        return self.net(z)


class ToyDiscriminator(nn.Module):
    def __init__(self, width: int = 256, depth: int = 3, pack: int = 1, in_dim: int = 2):
        super().__init__()
        self.pack, self.in_dim = pack, in_dim
        self.net = mlp(in_dim * pack, 1, width, depth)

    def forward(self, x: Tensor) -> Tensor:
        # x: [N, 2] (N divisible by pack) -> logits [N / pack], one per packed group of samples
        return self.net(x.reshape(-1, self.in_dim * self.pack)).squeeze(1)
