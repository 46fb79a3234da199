"""Adversarial loss names and what a recipe must do around each (the functions: ganpipe.losses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ganpipe.catalog import Catalog


@dataclass(frozen=True)
class LossSpec:
    summary: str  # one line for `ganpipe models`
    weight_clip: bool = False  # clip critic weights after each D step (WGAN)
    gradient_penalty: bool = False  # add lambda * GP to the D loss (WGAN-GP)
    probabilistic: bool = True  # D output is a logit of P(real); False for critics
    # The paper's optimiser settings as dotted config keys: what a sweep applies for this loss
    # with `loss_recipes: true`, so each loss is compared at its own recipe. Empty: the loss has
    # no recipe of its own beyond the base config.
    recipe: dict[str, Any] = field(default_factory=dict)


LOSS_SPECS: Catalog[LossSpec] = Catalog("loss")

LOSS_SPECS.add("minimax", LossSpec("the original saturating minimax game (Goodfellow et al. 2014): G minimises log(1 - D(G(z)))"))
LOSS_SPECS.add("nonsaturating", LossSpec("non-saturating GAN loss (Goodfellow et al. 2014): G maximises log D(G(z))"))
# Arjovsky et al. 2017, Algorithm 1: RMSProp, lr 5e-5, clipping c = 0.01, n_critic 5.
WGAN_RECIPE = {"optim.name": "rmsprop", "optim.lr_g": 5e-5, "optim.lr_d": 5e-5, "loss.clip_value": 0.01, "loss.n_critic": 5}
# Gulrajani et al. 2017, Algorithm 1: Adam(1e-4, beta1 0, beta2 0.9), n_critic 5, lambda 10.
WGAN_GP_RECIPE = {
    "optim.name": "adam", "optim.lr_g": 1e-4, "optim.lr_d": 1e-4, "optim.beta1": 0.0, "optim.beta2": 0.9,
    "loss.n_critic": 5, "loss.gp_weight": 10.0,
}  # fmt: skip

LOSS_SPECS.add(
    "wgan",
    LossSpec("Wasserstein critic with weight clipping (Arjovsky et al. 2017); loss.clip_value", weight_clip=True, probabilistic=False, recipe=WGAN_RECIPE),
)
LOSS_SPECS.add(
    "wgan-gp",
    LossSpec(
        "Wasserstein critic with gradient penalty (Gulrajani et al. 2017); loss.gp_weight, no BatchNorm in D",
        gradient_penalty=True, probabilistic=False, recipe=WGAN_GP_RECIPE,
    ),
)
LOSS_SPECS.add("hinge", LossSpec("hinge loss (Lim & Ye 2017), as in SAGAN and BigGAN", probabilistic=False))
LOSS_SPECS.add("lsgan", LossSpec("least-squares GAN (Mao et al. 2017)", probabilistic=False))
