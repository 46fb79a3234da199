"""Training health: stop a run with a named reason instead of training on garbage."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ganpipe.errors import TrainingError


@dataclass
class HealthMonitor:
    """Checks logged metrics: non-finite losses, D loss stuck at 0, generator output collapse."""

    patience: int = 5  # consecutive bad log points before stopping
    d_zero_eps: float = 1e-4
    collapse_std: float = 1e-3
    _d_zero: int = field(default=0, init=False)
    _collapse: int = field(default=0, init=False)

    def check(self, metrics: dict[str, float], step: int) -> None:
        for k, v in metrics.items():
            if k.startswith("loss") and not math.isfinite(v):
                raise TrainingError(f"diverged at step {step}: {k} is {v}", hint="lower the learning rates or use a regularised loss (wgan-gp, hinge + spectral norm)")
        d = metrics.get("loss_d")
        self._d_zero = self._d_zero + 1 if d is not None and abs(d) < self.d_zero_eps else 0
        if self._d_zero >= self.patience:
            raise TrainingError(f"discriminator loss stuck at 0 since step {step} (D wins, G gets no signal)", hint="lower lr_d, add noise/regularisation or change the loss")
        s = metrics.get("fake_std")
        self._collapse = self._collapse + 1 if s is not None and s < self.collapse_std else 0
        if self._collapse >= self.patience:
            raise TrainingError(f"generator output collapsed at step {step} (sample std {s:.2e})", hint="mode collapse: try another loss, n_critic > 1 or a lower lr_g")
