"""Throughput of the training loop: images/s over the whole loop and over the last window."""

from __future__ import annotations

import time


class Meter:
    """Counts images as the steps go and reads rates at the loop's log points.

    `t_begin`: when the worker's set-up began (data load included), for `time.train_s`; the
    rates count from the meter's creation, just before the first step."""

    def __init__(self, images_per_step: int, t_begin: float):
        self.images_per_step = images_per_step
        self.t_begin = t_begin
        self.t0 = time.perf_counter()
        self.images = 0
        self._t_prev, self._images_prev = self.t0, 0  # at the previous read: the recent rate, past start-up

    def step(self) -> None:
        self.images += self.images_per_step

    def read(self) -> dict[str, float]:
        now = time.perf_counter()
        out = {
            "images_per_s": self.images / max(now - self.t0, 1e-9),
            "images_per_s_window": (self.images - self._images_prev) / max(now - self._t_prev, 1e-9),  # since the last read
            "time.train_s": now - self.t_begin,  # seconds in this worker's loop, set-up and data load included
        }
        self._t_prev, self._images_prev = now, self.images
        return out

    def images_per_s(self) -> float:
        """Over the whole loop so far (the run's summary figure)."""
        return self.images / max(time.perf_counter() - self.t0, 1e-9)
