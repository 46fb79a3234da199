"""Pix2Pix recipe (Isola et al. 2017): paired image-to-image translation.

G maps an input image to its target; a PatchGAN D sees (input, output) pairs, so it judges
whether the output fits *this* input. G minimises adversarial loss + lambda_L1 * L1(G(x), y):
L1 gets the low frequencies right, the patch adversary the high-frequency detail. The paper
used the non-saturating GAN loss (the config default), lambda_L1 = 100 and Adam(2e-4, 0.5).

Helpers shared with CycleGAN (discriminator loss, batched translation) live here too.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ganpipe.gans.base import SAMPLERS, NextBatch, Recipe, Sampler, eager, register_family
from ganpipe.gans.optimizers import make_optimizer
from ganpipe.gans.precision import Precision
from ganpipe.losses import LOSSES, AdversarialLoss, clip_weights, gradient_penalty, r1_penalty
from ganpipe.models.pix2pix import PatchDiscriminator, UNetGenerator


# -- shared with CycleGAN -------------------------------------------------------------------

def discriminator_loss(
    loss: AdversarialLoss,
    critic: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    lc: Any,
    module: nn.Module,
    scale: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(D loss, penalty, D(real), D(fake)) for any registered loss, with its GP / R1 penalty.

    `module`: the D that `critic` calls; the forwards a penalty differentiates twice run it
    eager (see `Recipe.compile_modules`). `scale`: fp16's loss scale for the penalty's inner
    gradient (`losses.input_grad`).

    The papers halve D's objective; under Adam a constant factor only interacts with eps, so
    the registered losses are used as they are.
    """
    fake = fake.detach()
    r1 = lc.r1_weight > 0
    if r1:
        real = real.detach().requires_grad_(True)
    with eager(module) if r1 else nullcontext():
        d_real = critic(real)
    d_fake = critic(fake.to(real.dtype))
    loss_d = loss.d_loss(d_real, d_fake)
    penalty = torch.zeros((), device=real.device)
    if loss.gradient_penalty:
        with eager(module):
            penalty = lc.gp_weight * gradient_penalty(critic, real, fake.float(), scale=scale)
    if r1:
        penalty = penalty + 0.5 * lc.r1_weight * r1_penalty(d_real, real, scale=scale)
    return loss_d, penalty, d_real, d_fake


def optimizer_step(
    opt: torch.optim.Optimizer, modules: list[nn.Module], loss: Tensor, sync: Any, clip: float | None, precision: Precision
) -> None:
    opt.zero_grad(set_to_none=True)
    sync.backward(precision.scaled(opt, loss), *modules)  # fp16: the scaled loss
    if clip:
        precision.unscale(opt)  # clip the true gradients
        torch.nn.utils.clip_grad_norm_([p for m in modules for p in m.parameters()], clip)
    precision.step(opt)



def check_inputs(inputs: Tensor | None, n: int, channels: int, image_size: int, family: str) -> Tensor:
    """Validate `inputs` (N x C x H x W in [-1, 1]) and cycle them to n rows; 1-channel inputs are
    replicated when the model takes 3 channels (grayscale photos for a colouriser)."""
    if inputs is None:
        raise ValueError(
            f"{family} translates images: inputs are required "
            f"(pass inputs=N x {channels} x {image_size} x {image_size} float images in [-1, 1])"
        )
    x = torch.as_tensor(inputs).float()
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() == 4 and x.shape[1] == 1 and channels == 3:
        x = x.expand(-1, 3, -1, -1)
    want = (channels, image_size, image_size)
    if x.dim() != 4 or tuple(x.shape[1:]) != want or len(x) == 0:
        raise ValueError(f"{family} expects inputs of shape N x {' x '.join(map(str, want))}, got {tuple(x.shape)}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return x[torch.arange(n) % len(x)]  # [n, C, S, S]


@torch.no_grad()
def translate(g: Callable[[Tensor], Tensor], x: Tensor, device: torch.device, chunk: int = 256) -> Tensor:
    return torch.cat([g(x[i : i + chunk].to(device)).float().cpu() for i in range(0, len(x), chunk)])


# -- Pix2Pix ---------------------------------------------------------------------------------

class Pix2PixSampler(Sampler):
    needs_inputs = True
    @staticmethod
    def build_generator(spec: dict[str, Any]) -> nn.Module:
        p = spec["params"]
        return UNetGenerator(
            spec["in_channels"], spec["out_channels"], spec["image_size"], p["g_width"], p["norm"], p["dropout"], p["dropout_layers"]
        )

    @torch.no_grad()
    def generate(self, n: int, seed: int = 0, labels: Tensor | None = None, inputs: Tensor | None = None, **kw: Any) -> Tensor:
        """G(inputs) cycled to n rows: [n, out_channels, S, S]. `seed` drives dropout when
        params.sample_dropout is on; otherwise the translation is deterministic."""
        s = self.spec
        x = check_inputs(inputs, n, s["in_channels"], s["image_size"], "pix2pix")
        noisy = bool(s["params"].get("sample_dropout"))
        for m in self.generator.modules():
            if isinstance(m, nn.Dropout):
                m.train(noisy)
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(seed)
            return translate(self.generator, x, self.device)


@register_family("pix2pix")
class Pix2PixRecipe(Recipe):
    sampler_cls = Pix2PixSampler

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        p, i = self.params, self.info
        self.in_channels = self.out_channels = i.channels  # prepare stores input and target alike
        self.loss = LOSSES.get(self.cfg.loss.name)
        self.G = UNetGenerator(i.channels, i.channels, i.image_size, p.g_width, p.norm, p.dropout, p.dropout_layers).to(self.device)
        self.D = PatchDiscriminator(2 * i.channels, p.d_width, p.d_layers, p.norm).to(self.device)
        self.G, self.D = self.convert_batchnorm(self.G), self.convert_batchnorm(self.D)
        if self.cfg.train.channels_last:
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        self.sync.broadcast(self.G)
        self.sync.broadcast(self.D)
        self.compile_modules(self.G, self.D, multi_forward=(self.D,))  # D sees real, then fake pairs
        o = self.cfg.optim
        self.opt_g = make_optimizer(self.G.parameters(), o.lr_g, o)
        self.opt_d = make_optimizer(self.D.parameters(), o.lr_d, o)

    def _d(self, a: Tensor) -> Callable[[Tensor], Tensor]:
        """D conditioned on the input a: [N, Cin, S, S]; judges b: [N, Cout, S, S] -> [N, 1, P, P]."""
        return lambda b: self.D(torch.cat([a, b.to(a.dtype)], dim=1))

    def train_step(self, next_batch: NextBatch, step: int) -> dict[str, Tensor]:
        lc = self.cfg.loss
        self.G.train()
        self.D.requires_grad_(True)
        for _ in range(lc.n_critic):
            batch = next_batch()
            a, b = batch["image"], batch["target"]  # [N, C, S, S] each
            with torch.no_grad(), self.autocast():
                fake = self.G(a)
            with self.autocast():
                scale = self.precision.input_grad_scale(self.opt_d)
                loss_d, penalty, d_real, d_fake = discriminator_loss(self.loss, self._d(a), b, fake, lc, self.D, scale)
            optimizer_step(self.opt_d, [self.D], loss_d + penalty, self.sync, self.cfg.optim.grad_clip, self.precision)
            if self.loss.weight_clip:
                clip_weights(self.D, lc.clip_value)

        self.D.requires_grad_(False)
        with self.autocast():
            fake = self.G(a)
            loss_adv = self.loss.g_loss(self._d(a)(fake))
            loss_l1 = (fake.float() - b.float()).abs().mean()
            loss_g = loss_adv + self.params.lambda_l1 * loss_l1
        optimizer_step(self.opt_g, [self.G], loss_g, self.sync, self.cfg.optim.grad_clip, self.precision)
        return {
            "loss_d": loss_d.detach(),
            "loss_g": loss_g.detach(),
            "loss_g_adv": loss_adv.detach(),
            "loss_l1": loss_l1.detach(),
            "penalty": penalty.detach(),
            "d_real": d_real.detach().float().mean(),
            "d_fake": d_fake.detach().float().mean(),
            "fake_std": fake.detach().float().std(dim=0).mean(),
        }

    def modules(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_g, "D": self.opt_d}

    def export(self) -> tuple[dict[str, Any], dict[str, Tensor]]:
        spec = {
            "family": "pix2pix",
            "output_kind": "images",
            "z_dim": 0,
            "channels": self.out_channels,
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "image_size": self.info.image_size,
            "num_classes": 0,
            "params": self.params.model_dump(),
        }
        return spec, self.G.state_dict()


SAMPLERS.add("pix2pix", Pix2PixSampler)
