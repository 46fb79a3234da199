"""Model families as config checks see them: typed params, data kinds, summary and the
combinations each rules out. The recipes (ganpipe.gans) take these when they register, so
`model.family` can be checked, and `ganpipe models` listed, without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from pydantic import BaseModel

from ganpipe.catalog import Catalog
from ganpipe.errors import ConfigError
from ganpipe.specs.losses import LOSS_SPECS
from ganpipe.specs.params import (
    BigGANParams,
    CGANParams,
    CycleGANParams,
    DCGANParams,
    Pix2PixParams,
    ToyParams,
)
from ganpipe.specs.shapes import (
    attention_resolutions,
    num_doublings,
    patch_output_size,
    unet_depth,
)
from ganpipe.specs.sources import SOURCE_KINDS, source_kind, sources_of_kind

if TYPE_CHECKING:
    from ganpipe.config import PipelineConfig

Check = Callable[["PipelineConfig"], None]


def _no_check(cfg: PipelineConfig) -> None:
    pass


@dataclass(frozen=True)
class FamilySpec:
    Params: type[BaseModel]
    summary: str  # one line for `ganpipe models`: the paper and what sets it apart
    data_kinds: tuple[str, ...] = ("images",)
    check: Check = _no_check  # raises ConfigError for impossible combinations; params already filled in
    batchnorm: Callable[[dict], bool] = lambda params: False  # whether its networks have BatchNorm layers
    augment: bool = False  # train.augment applies: D judges single images (not pairs, not points)


FAMILY_SPECS: Catalog[FamilySpec] = Catalog("model family")


# -- checks ---------------------------------------------------------------------------------

def _gp_with_batchnorm(cfg: PipelineConfig, norm_key: str, fix: str) -> None:
    if LOSS_SPECS.get(cfg.loss.name).gradient_penalty and cfg.model.params.get(norm_key) == "batch":
        raise ConfigError(
            f"loss {cfg.loss.name} with BatchNorm in D: the gradient penalty is per sample and BatchNorm mixes samples",
            hint=fix,
        )


def check_image_gan(cfg: PipelineConfig) -> None:
    try:
        num_doublings(cfg.data.image_size)
    except ValueError:
        raise ConfigError(
            f"data.image_size={cfg.data.image_size} is not supported by {cfg.model.family}",
            hint="use 8, 16, 32, 64 or 128 (4 * 2^k)",
        ) from None
    _gp_with_batchnorm(cfg, "d_norm", "set model.params.d_norm=none (or spectral)")


def check_biggan(cfg: PipelineConfig) -> None:
    check_image_gan(cfg)
    size, p = cfg.data.image_size, cfg.model.params
    valid = attention_resolutions(size)
    if p["attn_res"] and p["attn_res"] not in valid:
        raise ConfigError(
            f"model.params.attn_res={p['attn_res']} is not a feature-map size of a {size}px BigGAN",
            hint=f"use 0 (off) or one of {', '.join(map(str, valid))}",
        )
    chunks = num_doublings(size) + 1
    if cfg.model.z_dim < chunks:
        raise ConfigError(
            f"model.z_dim={cfg.model.z_dim} is too small: hierarchical z splits it into {chunks} chunks at {size}px",
            hint=f"set model.z_dim >= {chunks} (e.g. {20 * chunks})",
        )


def require_source_kind(cfg: PipelineConfig, kind: str) -> None:
    """Reject a data.source whose registered kind is not `kind`, naming the sources that fit."""
    have = source_kind(cfg.data.source)  # an unknown name is an UnknownNameError (a ConfigError)
    if have == kind:
        return
    raise ConfigError(
        f"family {cfg.model.family} trains on {kind} data, but data.source {cfg.data.source!r} is {have!r}",
        hint=f"use a {kind} source: {', '.join(sources_of_kind(kind)) or '(none registered)'}",
    )


def check_patch_discriminator(cfg: PipelineConfig, d_layers: int) -> None:
    if patch_output_size(cfg.data.image_size, d_layers) < 1:
        best = max((n for n in range(1, 7) if patch_output_size(cfg.data.image_size, n) >= 1), default=None)
        raise ConfigError(
            f"model.params.d_layers={d_layers} downsamples {cfg.data.image_size}px images below one patch",
            hint=f"set model.params.d_layers={best}" if best else "use larger images (at least 8px)",
        )


def check_pix2pix(cfg: PipelineConfig) -> None:
    p = Pix2PixParams.model_validate(cfg.model.params)
    require_source_kind(cfg, "paired")
    try:
        unet_depth(cfg.data.image_size)
    except ValueError:
        raise ConfigError(
            f"data.image_size={cfg.data.image_size} is not supported by pix2pix (the U-Net halves it down to 1x1)",
            hint="use a power of two: 8, 16, 32, 64, 128 or 256",
        ) from None
    check_patch_discriminator(cfg, p.d_layers)
    _gp_with_batchnorm(cfg, "norm", "set model.params.norm=instance")


def check_cyclegan(cfg: PipelineConfig) -> None:
    p = CycleGANParams.model_validate(cfg.model.params)
    require_source_kind(cfg, "unpaired")
    s, f = cfg.data.image_size, 2**p.n_down
    if s % f or s // f < 2:
        raise ConfigError(
            f"data.image_size={s} does not fit model.params.n_down={p.n_down} (needs a multiple of {f}, at least {2 * f})",
            hint="use e.g. 16, 32, 64, 128 or 256 pixels, or fewer downsamplings",
        )
    check_patch_discriminator(cfg, p.d_layers)
    if cfg.loss.n_critic != 1:
        raise ConfigError(
            "cyclegan runs one D step per G step (D learns from the image history pool)",
            hint="set loss.n_critic=1",
        )


def check_toy(cfg: PipelineConfig) -> None:
    src = cfg.data.source
    if ":" not in src and src in SOURCE_KINDS and SOURCE_KINDS.get(src) != "points":
        raise ConfigError(
            f"family toy trains on 2-D points, but data.source={src!r} is {SOURCE_KINDS.get(src)}",
            hint=f"use one of: {', '.join(n for n in SOURCE_KINDS.names() if SOURCE_KINDS.get(n) == 'points')}",
        )
    check_pack(cfg, ToyParams.model_validate(cfg.model.params).pack)


def check_dcgan(cfg: PipelineConfig) -> None:
    check_image_gan(cfg)
    check_pack(cfg, DCGANParams.model_validate(cfg.model.params).pack)


def check_pack(cfg: PipelineConfig, pack: int) -> None:
    """D scores `pack` consecutive samples as one input, so a batch must split into whole packs."""
    if cfg.train.batch_size % pack:
        raise ConfigError(
            f"train.batch_size={cfg.train.batch_size} is not a multiple of model.params.pack={pack}",
            hint=f"use a batch size divisible by {pack}, e.g. {cfg.train.batch_size - cfg.train.batch_size % pack or pack}",
        )


# -- the families ---------------------------------------------------------------------------

FAMILY_SPECS.add("dcgan", FamilySpec(
    DCGANParams, "DCGAN (Radford et al. 2016): transposed-conv G, strided-conv D; unconditional images; PacGAN packing", check=check_dcgan,
    batchnorm=lambda p: True, augment=True,
))
FAMILY_SPECS.add("cgan", FamilySpec(
    CGANParams, "conditional GAN (Mirza & Osindero 2014): one-hot class joins z in G and the image channels in D", check=check_image_gan,
    batchnorm=lambda p: True, augment=True,
))
FAMILY_SPECS.add("biggan", FamilySpec(
    BigGANParams,
    "BigGAN-style (Brock et al. 2019): residual G/D, spectral norm, self-attention, conditional BN, projection D, EMA, truncation",
    check=check_biggan,
    batchnorm=lambda p: True,  # G's conditional BatchNorm
    augment=True,
))
FAMILY_SPECS.add("pix2pix", FamilySpec(
    Pix2PixParams,
    "pix2pix (Isola et al. 2017): U-Net G, PatchGAN D on input+output, adversarial + 100 x L1; paired images",
    data_kinds=("paired",),
    check=check_pix2pix,
    batchnorm=lambda p: p["norm"] == "batch",
))
FAMILY_SPECS.add("cyclegan", FamilySpec(
    CycleGANParams,
    "CycleGAN (Zhu et al. 2017): two ResNet Gs and PatchGAN Ds, LSGAN, cycle + identity losses; unpaired images",
    data_kinds=("unpaired",),
    check=check_cyclegan,
))
FAMILY_SPECS.add("toy", FamilySpec(
    ToyParams,
    "2-D toy GAN (Goodfellow et al. 2014): MLP G and D on Gaussian mixtures, for mode-collapse studies; PacGAN packing",
    data_kinds=("points",),
    check=check_toy,
))
