import math

import pytest

from ganpipe.errors import TrainingError
from ganpipe.train.health import HealthMonitor


def test_nonfinite_loss_stops_at_once():
    with pytest.raises(TrainingError, match="diverged at step 7: loss_g is inf"):
        HealthMonitor().check({"loss_d": 0.5, "loss_g": math.inf}, 7)


def test_d_loss_stuck_at_zero_needs_patience():
    h = HealthMonitor(patience=3)
    h.check({"loss_d": 0.0}, 1)
    h.check({"loss_d": 0.0}, 2)
    h.check({"loss_d": 0.3}, 3)  # recovers: counter resets
    h.check({"loss_d": 0.0}, 4)
    h.check({"loss_d": 0.0}, 5)
    with pytest.raises(TrainingError, match="discriminator loss stuck at 0"):
        h.check({"loss_d": 0.0}, 6)


def test_generator_collapse():
    h = HealthMonitor(patience=2)
    h.check({"fake_std": 1e-5}, 1)
    with pytest.raises(TrainingError, match="collapsed"):
        h.check({"fake_std": 1e-5}, 2)
