"""Building blocks shared by several families."""

from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def maybe_sn(module: nn.Module, enabled: bool) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) when enabled."""
    return spectral_norm(module) if enabled else module


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
