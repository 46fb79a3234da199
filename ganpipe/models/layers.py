"""Building blocks shared by several families."""

from __future__ import annotations

import math

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def maybe_sn(module: nn.Module, enabled: bool) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) when enabled."""
    return spectral_norm(module) if enabled else module


def num_doublings(image_size: int, base: int = 4) -> int:
    """How many x2 up/down-samplings take `base` to `image_size` (which must be base * 2^k)."""
    k = int(round(math.log2(image_size / base))) if image_size >= base else -1
    if k < 1 or base * 2**k != image_size:
        raise ValueError(f"image size {image_size} is not {base} * 2^k with k >= 1")
    return k


def dcgan_init(module: nn.Module) -> None:
    """Radford et al.: weights ~ N(0, 0.02); BatchNorm gamma ~ N(1, 0.02), beta = 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            w = getattr(m, "parametrizations", None)
            weight = m.parametrizations.weight.original if w is not None and hasattr(w, "weight") else m.weight
            nn.init.normal_(weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
