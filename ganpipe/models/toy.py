"""MLPs for 2-D toy distributions (Goodfellow et al. 2014's fully connected G and D).

G: z -> hidden ReLU layers -> 2 (linear output: the data is unbounded). D: (pack x 2) ->
hidden ReLU layers -> 1 logit (the loss owns the link function). With pack > 1, D judges
`pack` samples jointly (PacGAN, Lin et al. 2018): a set drawn from a generator that drops
modes is easier to tell from a real set than one sample is. No normalisation layers, so every
loss, including gradient penalties (taken through the packing), applies unchanged.
"""

from __future__ import annotations

from torch import Tensor, nn


def mlp(din: int, dout: int, width: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(din if i == 0 else width, width), nn.ReLU(True)]
    layers.append(nn.Linear(width if depth else din, dout))
    return nn.Sequential(*layers)


class ToyGenerator(nn.Module):
    def __init__(self, z_dim: int, width: int = 256, depth: int = 3, out_dim: int = 2):
        super().__init__()
        self.z_dim = z_dim
        self.net = mlp(z_dim, out_dim, width, depth)

    def forward(self, z: Tensor) -> Tensor:
        # z: [N, z_dim] -> points [N, 2]
        return self.net(z)


class ToyDiscriminator(nn.Module):
    def __init__(self, width: int = 256, depth: int = 3, in_dim: int = 2, pack: int = 1):
        super().__init__()
        self.pack, self.in_dim = pack, in_dim
        self.net = mlp(in_dim * pack, 1, width, depth)

    def forward(self, x: Tensor) -> Tensor:
        # x: [N, 2] -> logits [N / pack] (consecutive samples form a pack)
        assert x.shape[0] % self.pack == 0, f"batch {x.shape[0]} is not a multiple of pack {self.pack}"
        return self.net(x.reshape(-1, self.in_dim * self.pack)).squeeze(1)
