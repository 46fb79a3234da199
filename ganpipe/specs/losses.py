"""Adversarial loss names and what a recipe must do around each (the functions: ganpipe.losses)."""

from __future__ import annotations

from dataclasses import dataclass

from ganpipe.catalog import Catalog


@dataclass(frozen=True)
class LossSpec:
    summary: str  # one line for `ganpipe models`
    weight_clip: bool = False  # clip critic weights after each D step (WGAN)
    gradient_penalty: bool = False  # add lambda * GP to the D loss (WGAN-GP)
    probabilistic: bool = True  # D output is a logit of P(real); False for critics


LOSS_SPECS: Catalog[LossSpec] = Catalog("loss")

LOSS_SPECS.add("minimax", LossSpec("the original saturating minimax game (Goodfellow et al. 2014): G minimises log(1 - D(G(z)))"))
LOSS_SPECS.add("nonsaturating", LossSpec("non-saturating GAN loss (Goodfellow et al. 2014): G maximises log D(G(z))"))
LOSS_SPECS.add("wgan", LossSpec("Wasserstein critic with weight clipping (Arjovsky et al. 2017); loss.clip_value", weight_clip=True, probabilistic=False))
LOSS_SPECS.add(
    "wgan-gp",
    LossSpec("Wasserstein critic with gradient penalty (Gulrajani et al. 2017); loss.gp_weight, no BatchNorm in D", gradient_penalty=True, probabilistic=False),
)
LOSS_SPECS.add("hinge", LossSpec("hinge loss (Lim & Ye 2017), as in SAGAN and BigGAN", probabilistic=False))
LOSS_SPECS.add("lsgan", LossSpec("least-squares GAN (Mao et al. 2017)", probabilistic=False))
