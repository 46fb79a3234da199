"""Adversarial losses, registered by name, as pure functions of discriminator outputs.

Every loss takes raw (pre-sigmoid) discriminator outputs. Conventions follow the papers:
- minimax:       Goodfellow et al. 2014, G minimises log(1 - D(G(z))) (saturating)
- nonsaturating: same D, G maximises log D(G(z)) instead (the paper's practical variant)
- wgan:          Arjovsky et al. 2017, critic with weight clipping
- wgan-gp:       Gulrajani et al. 2017, gradient penalty (lambda 10) instead of clipping
- hinge:         Lim & Ye 2017 / Miyato et al. 2018 (SN-GAN, BigGAN)
- lsgan:         Mao et al. 2017, least squares with targets a=0, b=c=1
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ganpipe.catalog import Catalog
from ganpipe.specs.losses import LOSS_SPECS

DLoss = Callable[[Tensor, Tensor], Tensor]
GLoss = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class AdversarialLoss:
    """A D/G loss pair plus what the recipe must do around it (the flags and summary come from
    the loss's spec in ganpipe.specs.losses, which config checks read without torch)."""

    name: str
    d_loss: DLoss
    g_loss: GLoss
    weight_clip: bool = False  # clip critic weights after each D step (WGAN)
    gradient_penalty: bool = False  # add lambda * GP to the D loss (WGAN-GP)
    probabilistic: bool = True  # D output is a logit of P(real); False for critics
    summary: str = ""  # one line for `ganpipe models`
    recipe: dict[str, Any] = field(default_factory=dict)  # the paper's optimiser settings (sweeps' loss_recipes)


LOSSES: Catalog[AdversarialLoss] = Catalog("loss", names=LOSS_SPECS)


def _mean(x: Tensor) -> Tensor:
    return x.float().mean()


def minimax_d(real: Tensor, fake: Tensor) -> Tensor:
    # -log sigmoid(r) - log(1 - sigmoid(f)) == softplus(-r) + softplus(f)
    return _mean(F.softplus(-real)) + _mean(F.softplus(fake))


def minimax_g(fake: Tensor) -> Tensor:
    # log(1 - sigmoid(f)) == -softplus(f); minimised by G (saturates when D wins)
    return -_mean(F.softplus(fake))


def nonsaturating_g(fake: Tensor) -> Tensor:
    # -log sigmoid(f) == softplus(-f)
    return _mean(F.softplus(-fake))


def wgan_d(real: Tensor, fake: Tensor) -> Tensor:
    return _mean(fake) - _mean(real)


def wgan_g(fake: Tensor) -> Tensor:
    return -_mean(fake)


def hinge_d(real: Tensor, fake: Tensor) -> Tensor:
    return _mean(F.relu(1.0 - real)) + _mean(F.relu(1.0 + fake))


def hinge_g(fake: Tensor) -> Tensor:
    return -_mean(fake)


def lsgan_d(real: Tensor, fake: Tensor) -> Tensor:
    return 0.5 * (_mean((real - 1.0) ** 2) + _mean(fake**2))


def lsgan_g(fake: Tensor) -> Tensor:
    return 0.5 * _mean((fake - 1.0) ** 2)


def lsgan_g_unhalved(fake: Tensor) -> Tensor:
    """E[(D(G(x)) - 1)^2]: the LSGAN G term as CycleGAN's paper and reference code weigh it
    (MSE to 1) beside the cycle and identity terms; `lsgan_g` keeps Mao et al.'s 1/2."""
    return _mean((fake - 1.0) ** 2)


for _name, _d, _g in (
    ("minimax", minimax_d, minimax_g),
    ("nonsaturating", minimax_d, nonsaturating_g),
    ("wgan", wgan_d, wgan_g),
    ("wgan-gp", wgan_d, wgan_g),
    ("hinge", hinge_d, hinge_g),
    ("lsgan", lsgan_d, lsgan_g),
):
    LOSSES.add(_name, AdversarialLoss(_name, _d, _g, **asdict(LOSS_SPECS.get(_name))))


def input_grad(out: Tensor, x: Tensor, scale: Tensor | None = None) -> Tensor:
    """d(sum out)/dx, differentiable again. `scale` (fp16 training: the loss scale) multiplies
    the output before the backward and divides the gradient after, so small fp16 gradients do
    not underflow to zero on the way."""
    if scale is None:
        return torch.autograd.grad(out.sum(), x, create_graph=True)[0]
    (grad,) = torch.autograd.grad(out.float().sum() * scale, x, create_graph=True)
    return grad / scale


def gradient_penalty(
    critic: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    generator: torch.Generator | None = None,
    group: int = 1,
    scale: Tensor | None = None,
) -> Tensor:
    """WGAN-GP penalty E[(||grad_x D(x_hat)||_2 - 1)^2] on random interpolates x_hat.

    `group`: consecutive samples D judges as one input (PacGAN packs): one interpolation weight
    and one gradient norm per group, so the penalty is on D's input as D sees it. `scale`: see
    `input_grad`."""
    alpha_shape = (real.shape[0] // group,) + (1,) * (real.dim() - 1)
    alpha = torch.rand(alpha_shape, device=real.device, generator=generator, dtype=real.dtype).repeat_interleave(group, dim=0)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    grad = input_grad(critic(x_hat), x_hat, scale)
    norms = grad.reshape(real.shape[0] // group, -1).float().norm(2, dim=1)
    return ((norms - 1.0) ** 2).mean()


def r1_penalty(real_out: Tensor, real: Tensor, group: int = 1, scale: Tensor | None = None) -> Tensor:
    """R1 (Mescheder et al. 2018): E[||grad_x D(x)||^2] on real data; `real` must require grad.
    `group` as in `gradient_penalty`: the expectation is over D's (packed) inputs. `scale`: see
    `input_grad`."""
    grad = input_grad(real_out, real, scale)
    return grad.reshape(real.shape[0] // group, -1).float().pow(2).sum(1).mean()


@torch.no_grad()
def clip_weights(module: torch.nn.Module, value: float) -> None:
    for p in module.parameters():
        p.clamp_(-value, value)
