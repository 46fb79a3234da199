"""DCGAN recipe (Radford et al. 2016): unconditional image GAN, any registered loss; optional
PacGAN packing in D (`pack`) and an EMA of G's weights as the exported generator (`ema_decay`)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ganpipe.gans.adversarial import AdversarialRecipe
from ganpipe.gans.base import SAMPLERS, Sampler, register_family
from ganpipe.gans.ema import EMA
from ganpipe.models.dcgan import DCGANDiscriminator, DCGANGenerator


class DCGANSampler(Sampler):
    @staticmethod
    def build_generator(spec: dict[str, Any]) -> nn.Module:
        return DCGANGenerator(spec["z_dim"], spec["channels"], spec["image_size"], spec["params"]["g_width"])

    @torch.no_grad()
    def generate(self, n: int, seed: int = 0, labels: Tensor | None = None, inputs: Tensor | None = None, **kw: Any) -> Tensor:
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.spec["z_dim"], generator=g).to(self.device)
        return self.generator(z).float().cpu()


@register_family("dcgan")
class DCGANRecipe(AdversarialRecipe):
    sampler_cls = DCGANSampler

    def build(self) -> None:
        p, i = self.params, self.info
        self.G = DCGANGenerator(self.cfg.model.z_dim, i.channels, i.image_size, p.g_width)
        self.D = DCGANDiscriminator(i.channels, i.image_size, p.d_width, norm=p.d_norm, pack=p.pack)
        self.G_ema = DCGANGenerator(self.cfg.model.z_dim, i.channels, i.image_size, p.g_width) if p.ema_decay > 0 else None

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.ema = None
        if self.G_ema is not None:  # built after the rank-0 broadcast of G, on G's device
            self.G_ema.to(self.device).eval()
            self.ema = EMA(self.G, self.G_ema, self.params.ema_decay)

    def lr_schedule(self) -> tuple[float, float]:
        return self.params.lr_final, self.params.decay_start

    def after_g_step(self) -> None:
        if self.ema is not None:
            self.ema.update()

    def modules(self) -> dict[str, nn.Module]:
        return {**super().modules(), **({"G_ema": self.G_ema} if self.G_ema is not None else {})}

    def extra_state(self) -> dict[str, Any]:
        return {"ema_updates": self.ema.updates} if self.ema is not None else {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if self.ema is not None:
            self.ema.updates = int(state.get("ema_updates", 0))

    @property
    def d_group(self) -> int:
        return self.params.pack

    def export(self) -> tuple[dict[str, Any], dict[str, Tensor]]:
        spec = {
            "family": "dcgan",
            "z_dim": self.cfg.model.z_dim,
            "channels": self.info.channels,
            "image_size": self.info.image_size,
            "num_classes": 0,
            "params": self.params.model_dump(),
        }
        return spec, (self.G_ema if self.G_ema is not None else self.G).state_dict()


SAMPLERS.add("dcgan", DCGANSampler)
