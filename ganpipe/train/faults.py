"""Deliberate faults for resilience drills and tests: a real NaN loss, a raising worker, a worker
process that dies hard.

A test and drill API, not part of any config: production runs carry none. Pass a `Faults` to
`loop.run_training`, `driver.fit` or `tune.runner.run_sweep` (`faults=`); the loop calls its
hooks at every step, on every rank (in Ray Train workers too: it travels in the loop's config).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Faults:
    """All off by default. Raising and exiting happen on a run's first attempt only (a run that
    resumed from a checkpoint trains on), so a drill shows the recovery."""

    nan_loss_at_step: int | None = None  # the losses are NaN from this step on
    raise_at_step: int | None = None  # the worker raises at this step
    exit_at_step: int | None = None  # the worker process exits hard at this step, as if killed

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise ValueError(f"Faults.{f.name} must be a step >= 1 or None, got {v!r}")

    def before_step(self, step: int, resumed: bool) -> None:
        if resumed:
            return
        if step == self.raise_at_step:
            raise RuntimeError(f"injected fault: worker raised at step {step}")
        if step == self.exit_at_step:
            os._exit(17)  # no clean-up, no report: as if the process were killed

    def after_step(self, step: int, logs: dict[str, Any]) -> dict[str, Any]:
        if self.nan_loss_at_step is None or step < self.nan_loss_at_step:
            return logs
        return {k: v * float("nan") if k.startswith("loss") else v for k, v in logs.items()}
