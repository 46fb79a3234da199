"""DCGAN recipe (Radford et al. 2016): unconditional image GAN, any registered loss."""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from ganpipe.errors import ConfigError
from ganpipe.gans.adversarial import AdversarialRecipe
from ganpipe.gans.base import FAMILIES, SAMPLERS, Sampler
from ganpipe.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganpipe.models.layers import num_doublings


class DCGANParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    g_width: int = Field(64, ge=4)
    d_width: int = Field(64, ge=4)
    d_norm: Literal["batch", "none", "spectral"] = "batch"


def check_image_gan_config(cfg: Any) -> None:
    try:
        num_doublings(cfg.data.image_size)
    except ValueError:
        raise ConfigError(
            f"data.image_size={cfg.data.image_size} is not supported by {cfg.model.family}",
            hint="use 8, 16, 32, 64 or 128 (4 * 2^k)",
        ) from None
    if cfg.loss.name == "wgan-gp" and cfg.model.params.get("d_norm") == "batch":
        raise ConfigError(
            "loss wgan-gp with BatchNorm in D: the gradient penalty is per sample and BatchNorm mixes samples",
            hint="set model.params.d_norm=none (or spectral)",
        )


class DCGANSampler(Sampler):
    @staticmethod
    def build_generator(spec: dict[str, Any]) -> nn.Module:
        return DCGANGenerator(spec["z_dim"], spec["channels"], spec["image_size"], spec["params"]["g_width"])

    @torch.no_grad()
    def generate(self, n: int, seed: int = 0, labels: Tensor | None = None, inputs: Tensor | None = None, **kw: Any) -> Tensor:
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.spec["z_dim"], generator=g).to(self.device)
        return self.generator(z).float().cpu()


@FAMILIES.register("dcgan")
class DCGANRecipe(AdversarialRecipe):
    Params = DCGANParams
    summary = "DCGAN (Radford et al. 2016): transposed-conv G, strided-conv D; unconditional images"
    sampler_cls = DCGANSampler

    @classmethod
    def check_config(cls, cfg: Any) -> None:
        check_image_gan_config(cfg)

    def build(self) -> None:
        p, i = self.params, self.info
        self.G = DCGANGenerator(self.cfg.model.z_dim, i.channels, i.image_size, p.g_width)
        self.D = DCGANDiscriminator(i.channels, i.image_size, p.d_width, norm=p.d_norm)

    def export(self) -> tuple[dict[str, Any], dict[str, Tensor]]:
        spec = {
            "family": "dcgan",
            "z_dim": self.cfg.model.z_dim,
            "channels": self.info.channels,
            "image_size": self.info.image_size,
            "num_classes": 0,
            "params": self.params.model_dump(),
        }
        return spec, self.G.state_dict()


SAMPLERS.add("dcgan", DCGANSampler)
