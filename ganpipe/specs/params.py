"""Typed `model.params` of each family: defaults and ranges, checked when a config is loaded."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DCGANParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    g_width: int = Field(64, ge=4)
    d_width: int = Field(64, ge=4)
    d_norm: Literal["batch", "none", "spectral"] = "batch"
    pack: int = Field(1, ge=1, le=16)  # samples D judges jointly, stacked on channels (PacGAN); 1 = the standard GAN
    ema_decay: float = Field(0.0, ge=0.0, lt=1.0)  # > 0: export and sample an EMA of G's weights; 0 = the raw G
    # Both learning rates held until `decay_start` (fraction of train.steps), then decayed
    # linearly to `lr_final` (fraction) at the last step; 1.0 = constant.
    lr_final: float = Field(1.0, ge=0.0, le=1.0)
    decay_start: float = Field(0.0, ge=0.0, lt=1.0)


class CGANParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    g_width: int = Field(64, ge=4)
    d_width: int = Field(64, ge=4)
    d_norm: Literal["batch", "none", "spectral"] = "batch"


class BigGANParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    g_ch: int = Field(32, ge=1)  # G width unit (stages use 1..16 x g_ch)
    d_ch: int = Field(32, ge=1)
    shared_dim: int = Field(128, ge=1)  # shared class embedding size
    attn_res: int = Field(0, ge=0)  # side of the feature map with self-attention; 0 = off
    ema_decay: float = Field(0.999, ge=0.0, lt=1.0)  # 0 = export the raw G
    ortho_reg: float = Field(1e-4, ge=0.0)  # beta of the off-diagonal orthogonal regulariser
    ema_start: int = Field(0, ge=0)  # G steps during which the EMA copies G (BigGAN-PyTorch's --ema_start)
    # Standing statistics (BigGAN, sec. 4 / appendix): G's BatchNorm statistics for sampling are
    # re-estimated over this many batches of G's own activations when the generator is exported,
    # instead of the running averages from training; 0 = off (BigGAN-PyTorch uses 16).
    standing_stats: int = Field(0, ge=0)


class Pix2PixParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    g_width: int = Field(64, ge=4)  # U-Net filters at the outermost level (ngf)
    d_width: int = Field(64, ge=4)  # PatchGAN filters of the first layer (ndf)
    d_layers: int = Field(3, ge=1, le=6)  # PatchGAN stride-2 layers: 3 = 70x70 patches
    norm: Literal["batch", "instance"] = "batch"
    dropout: float = Field(0.5, ge=0.0, lt=1.0)  # G's only noise source
    dropout_layers: int = Field(3, ge=0)  # decoder layers nearest the bottleneck with dropout
    lambda_l1: float = Field(100.0, ge=0.0)
    sample_dropout: bool = False  # keep dropout on when sampling (the paper's test-time noise)


class CycleGANParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    g_width: int = Field(64, ge=4)  # filters of the c7s1 layer (ngf)
    d_width: int = Field(64, ge=4)
    n_blocks: int = Field(9, ge=0)  # residual blocks: 6 for 128px, 9 for 256px in the paper
    n_down: int = Field(2, ge=0, le=4)  # stride-2 downsamplings before the residual blocks
    d_layers: int = Field(3, ge=1, le=6)
    lambda_cycle: float = Field(10.0, ge=0.0)
    lambda_identity: float = Field(0.5, ge=0.0)  # as a fraction of lambda_cycle
    pool_size: int = Field(50, ge=0)  # 0 disables the history pool
    decay_start: float = Field(0.5, ge=0.0, le=1.0)  # fraction of train.steps at constant LR


class ToyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    g_width: int = Field(256, ge=1)
    g_depth: int = Field(3, ge=1, le=16)  # hidden layers
    d_width: int = Field(256, ge=1)
    d_depth: int = Field(3, ge=1, le=16)
    lr_final: float = Field(1.0, gt=0.0, le=1.0)  # both learning rates decay linearly to this fraction
    pack: int = Field(1, ge=1, le=16)  # samples D judges jointly (PacGAN); 1 = the standard GAN
