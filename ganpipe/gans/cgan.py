"""Conditional GAN recipe (Mirza & Osindero 2014): DCGAN backbones conditioned on the class.

D sees (image, label) pairs from the batch; G is trained on uniformly drawn labels, so every
class gets the same share of G updates whatever the data's class balance.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ganpipe.errors import ConfigError
from ganpipe.gans.adversarial import AdversarialRecipe
from ganpipe.gans.base import SAMPLERS, Batch, DataInfo, Sampler, register_family
from ganpipe.models.cgan import CGANDiscriminator, CGANGenerator


def cycle_labels(n: int, num_classes: int, labels: Tensor | None = None) -> Tensor:
    """The requested labels (repeated to length n), or 0, 1, ..., K-1, 0, 1, ... by default."""
    if labels is None:
        return torch.arange(n) % num_classes
    labels = torch.as_tensor(labels, dtype=torch.long).flatten()
    if labels.numel() == 0:
        raise ValueError("labels is empty")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must be in 0..{num_classes - 1}, got {labels.min().item()}..{labels.max().item()}")
    return labels.repeat((n + labels.numel() - 1) // labels.numel())[:n]


def check_labelled(cls: type, info: DataInfo) -> None:
    if info.num_classes < 1:
        raise ConfigError(
            f"family {cls.__name__} is class-conditional, but the prepared data has no classes",
            hint="use a labelled data set (class sub-folders) or an unconditional family such as dcgan",
        )


class CGANSampler(Sampler):
    @staticmethod
    def build_generator(spec: dict[str, Any]) -> nn.Module:
        return CGANGenerator(spec["z_dim"], spec["channels"], spec["image_size"], spec["num_classes"], spec["params"]["g_width"])

    @torch.no_grad()
    def generate(self, n: int, seed: int = 0, labels: Tensor | None = None, inputs: Tensor | None = None, **kw: Any) -> Tensor:
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.spec["z_dim"], generator=g).to(self.device)
        y = cycle_labels(n, self.num_classes, labels).to(self.device)
        return self.generator(z, y).float().cpu()


class ConditionalRecipe(AdversarialRecipe):
    """Labels from the batch for D; uniform random labels for G's step."""

    @classmethod
    def check_data(cls, info: DataInfo) -> None:
        super().check_data(info)
        check_labelled(cls, info)

    def condition(self, batch: Batch) -> Tensor | None:
        return batch["label"]

    def random_condition(self, n: int) -> Tensor | None:
        return torch.randint(0, self.info.num_classes, (n,), device=self.device)

    def g_forward(self, z: Tensor, cond: Tensor | None) -> Tensor:
        return self.G(z, cond)

    def d_forward(self, x: Tensor, cond: Tensor | None) -> Tensor:
        return self.D(x, cond)


@register_family("cgan")
class CGANRecipe(ConditionalRecipe):
    sampler_cls = CGANSampler

    def build(self) -> None:
        p, i = self.params, self.info
        self.G = CGANGenerator(self.cfg.model.z_dim, i.channels, i.image_size, i.num_classes, p.g_width)
        self.D = CGANDiscriminator(i.channels, i.image_size, i.num_classes, p.d_width, norm=p.d_norm)

    def export(self) -> tuple[dict[str, Any], dict[str, Tensor]]:
        spec = {
            "family": "cgan",
            "z_dim": self.cfg.model.z_dim,
            "channels": self.info.channels,
            "image_size": self.info.image_size,
            "num_classes": self.info.num_classes,
            "class_names": list(self.info.class_names),
            "params": self.params.model_dump(),
        }
        return spec, self.G.state_dict()


SAMPLERS.add("cgan", CGANSampler)
