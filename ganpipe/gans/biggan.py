"""BigGAN-style recipe (Brock et al. 2019): class-conditional residual GAN with projection D.

On top of the conditional adversarial update: orthogonal regularisation added to G's loss,
an exponential moving average of G's weights and BatchNorm statistics (the exported, sampled
generator; `ema_start` G steps copy G first), optional standing statistics for G's BatchNorm
at export (`standing_stats`), and the truncation trick at sampling. The paper trains with
hinge loss, Adam(0, 0.999), lr_g 5e-5 / lr_d 2e-4 and 2 D steps per G step; BigGAN-PyTorch's
launch script uses lr_g 1e-4 / lr_d 4e-4 with 1 D step. These are config settings (optim,
loss.n_critic); configs/biggan-digits.yaml says which it follows and why.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from ganpipe.gans.base import SAMPLERS, NextBatch, Sampler, register_family
from ganpipe.gans.cgan import ConditionalRecipe, cycle_labels
from ganpipe.gans.ema import EMA
from ganpipe.models.biggan import BigGANDiscriminator, BigGANGenerator, orthogonal_penalty


def truncated_normal(shape: tuple[int, ...], threshold: float, generator: torch.Generator) -> Tensor:
    """N(0, 1) samples with every |value| > threshold redrawn until it falls inside (truncation trick)."""
    if threshold <= 0:
        raise ValueError(f"truncation threshold must be > 0, got {threshold}")
    z = torch.randn(shape, generator=generator)
    bad = z.abs() > threshold
    while bad.any():
        z[bad] = torch.randn(int(bad.sum()), generator=generator)
        bad = z.abs() > threshold
    return z


class BigGANSampler(Sampler):
    @staticmethod
    def build_generator(spec: dict[str, Any]) -> nn.Module:
        p = spec["params"]
        return BigGANGenerator(
            spec["z_dim"], spec["channels"], spec["image_size"], spec["num_classes"], p["g_ch"], p["shared_dim"], p["attn_res"]
        )

    @torch.no_grad()
    def generate(
        self,
        n: int,
        seed: int = 0,
        labels: Tensor | None = None,
        inputs: Tensor | None = None,
        truncation: float | None = None,
        **kw: Any,
    ) -> Tensor:
        """`truncation`: redraw z entries beyond this |value| (smaller = higher fidelity, less variety)."""
        g = torch.Generator().manual_seed(seed)
        shape = (n, self.spec["z_dim"])
        z = truncated_normal(shape, truncation, g) if truncation is not None else torch.randn(shape, generator=g)
        y = cycle_labels(n, self.num_classes, labels).to(self.device)
        return self.generator(z.to(self.device), y).float().cpu()


@torch.no_grad()
def standing_stats(generator: nn.Module, batches: int, batch_size: int, z_dim: int, num_classes: int, seed: int = 0) -> nn.Module:
    """A copy of `generator` whose BatchNorm statistics are the average over `batches` forward
    passes of random (z, y) (BigGAN's standing statistics; BigGAN-PyTorch's
    `accumulate_standing_stats`): the statistics of G's own activations for the weights it
    samples with, not the running averages of weights it had during training. Only the
    BatchNorm layers run in training mode (cumulative average), so spectral norm's power
    iteration and the original module are left alone; the draws use their own generator."""
    g = copy.deepcopy(generator).eval()
    device = next(g.parameters()).device
    bns = [m for m in g.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average over the passes
        bn.train()
    rng = torch.Generator().manual_seed(seed)
    for _ in range(batches):
        z = torch.randn(batch_size, z_dim, generator=rng).to(device)
        y = torch.randint(0, num_classes, (batch_size,), generator=rng).to(device)
        g(z, y)
    for bn, orig in zip(bns, (m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats)):
        bn.momentum = orig.momentum
        bn.eval()
    return g


@register_family("biggan")
class BigGANRecipe(ConditionalRecipe):
    sampler_cls = BigGANSampler

    def build(self) -> None:
        p, i = self.params, self.info
        self.G = BigGANGenerator(self.cfg.model.z_dim, i.channels, i.image_size, i.num_classes, p.g_ch, p.shared_dim, p.attn_res)
        self.D = BigGANDiscriminator(i.channels, i.image_size, i.num_classes, p.d_ch, p.attn_res)
        self.G_ema = BigGANGenerator(self.cfg.model.z_dim, i.channels, i.image_size, i.num_classes, p.g_ch, p.shared_dim, p.attn_res)
        self.ema = EMA(self.G, self.G_ema, p.ema_decay, start=p.ema_start)
        self._ortho = torch.zeros(())

    def _step(self, opt: torch.optim.Optimizer, module: nn.Module, loss: Tensor) -> None:
        # G's loss gets the orthogonal regulariser (the shared embedding is exempt, as in BigGAN).
        if module is self.G and self.params.ortho_reg > 0:
            self._ortho = orthogonal_penalty(self.G, skip=tuple(self.G.shared.parameters()))
            loss = loss + self.params.ortho_reg * self._ortho
        super()._step(opt, module, loss)

    def after_g_step(self) -> None:
        self.ema.update()

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.G_ema.to(self.device).eval()
        self.G_ema.load_state_dict(self.G.state_dict())  # after the rank-0 broadcast of G

    def train_step(self, next_batch: NextBatch, step: int) -> dict[str, Tensor]:
        logs = super().train_step(next_batch, step)
        logs["ortho"] = self._ortho.detach()
        return logs

    def modules(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D, "G_ema": self.G_ema}

    def extra_state(self) -> dict[str, Any]:
        return {"ema_updates": self.ema.updates}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.ema.updates = int(state.get("ema_updates", 0))

    def export(self) -> tuple[dict[str, Any], dict[str, Tensor]]:
        spec = {
            "family": "biggan",
            "z_dim": self.cfg.model.z_dim,
            "channels": self.info.channels,
            "image_size": self.info.image_size,
            "num_classes": self.info.num_classes,
            "class_names": list(self.info.class_names),
            "params": self.params.model_dump(),
        }
        g = self.G_ema if self.params.ema_decay > 0 else self.G
        if self.params.standing_stats > 0:
            g = standing_stats(g, self.params.standing_stats, self.cfg.train.batch_size, self.cfg.model.z_dim, self.info.num_classes, seed=self.cfg.train.seed)
        return spec, g.state_dict()


SAMPLERS.add("biggan", BigGANSampler)
