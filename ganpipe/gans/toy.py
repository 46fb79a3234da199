"""2-D toy GAN recipe (Goodfellow et al. 2014): MLP G and D on point clouds.

For studying losses and mode collapse on Gaussian mixtures (`ring8`, `grid25`): every
registered loss is selectable, and the `mixture` metric counts covered modes and the share
of high-quality samples.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ganpipe.gans.adversarial import AdversarialRecipe
from ganpipe.gans.base import SAMPLERS, NextBatch, Sampler, register_family
from ganpipe.models.toy import ToyDiscriminator, ToyGenerator

PREVIEW_POINTS = 2000


class ToySampler(Sampler):
    output_kind = "points"

    @staticmethod
    def build_generator(spec: dict[str, Any]) -> nn.Module:
        p = spec["params"]
        return ToyGenerator(spec["z_dim"], p["g_width"], p["g_depth"])

    @torch.no_grad()
    def generate(self, n: int, seed: int = 0, labels: Tensor | None = None, inputs: Tensor | None = None, **kw: Any) -> Tensor:
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.spec["z_dim"], generator=g).to(self.device)
        return self.generator(z).float().cpu()  # [n, 2]

    def preview(self, n: int = 64, seed: int = 0, real: Any = None) -> Tensor:
        """Points for a scatter plot: a grid's 64 samples say little about 25 modes."""
        return self.generate(max(n, PREVIEW_POINTS), seed=seed)


@register_family("toy")
class ToyRecipe(AdversarialRecipe):
    sampler_cls = ToySampler

    def build(self) -> None:
        p = self.params
        self.G = ToyGenerator(self.cfg.model.z_dim, p.g_width, p.g_depth)
        self.D = ToyDiscriminator(p.d_width, p.d_depth, pack=p.pack)

    @property
    def d_group(self) -> int:
        return self.params.pack

    def train_step(self, next_batch: NextBatch, step: int) -> dict[str, Tensor]:
        # The shared update reads real samples from batch["image"]; points arrive as "x".
        def points() -> dict[str, Tensor]:
            b = next_batch()
            return {**b, "image": b["x"]}

        return super().train_step(points, step)

    def lr_schedule(self) -> tuple[float, float]:
        # Late, small steps let G settle on the modes instead of oscillating around them.
        return self.params.lr_final, 0.0

    def export(self) -> tuple[dict[str, Any], dict[str, Tensor]]:
        spec = {
            "family": "toy",
            "z_dim": self.cfg.model.z_dim,
            "channels": 0,
            "image_size": 0,
            "num_classes": 0,
            "output_kind": "points",
            "params": self.params.model_dump(),
        }
        return spec, self.G.state_dict()


SAMPLERS.add("toy", ToySampler)
