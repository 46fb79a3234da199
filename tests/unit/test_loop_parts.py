"""The loop's parts on their own: what is due at a step, the throughput meter, the fault hooks."""

from __future__ import annotations

import math

import pytest

from ganpipe.config import load_config
from ganpipe.train.faults import Faults
from ganpipe.train.meter import Meter
from ganpipe.train.schedule import Schedule


@pytest.mark.parametrize("steps, log, ckpt, sample, every", [(23, 5, 10, 20, 0), (30, 10, 15, 7, 6), (12, 50, 500, 500, 4)])
def test_schedule_marks_intervals_and_the_last_step(steps, log, ckpt, sample, every):
    cfg = load_config(None, [f"train.steps={steps}", f"train.log_every={log}", f"train.checkpoint_every={ckpt}", f"train.sample_every={sample}", f"eval.every={every}"])
    s = Schedule(cfg)
    for step in range(1, steps + 1):
        due, last = s.due(step), step == steps
        assert due.log == (step % log == 0 or last)
        assert due.checkpoint == (step % ckpt == 0 or last)
        assert due.eval == (every > 0 and (step % every == 0 or last))
        assert due.any == (due.log or due.checkpoint or due.eval)
        assert due.samples == (due.any and (step % sample == 0 or last))  # only where the loop stops anyway
        assert due.report == (due.checkpoint or due.eval)  # log points go to the sink, not the runner
    last = s.due(steps)
    assert last.log and last.checkpoint and last.samples and last.eval == (every > 0)


def test_meter_counts_images_and_windows():
    m = Meter(images_per_step=8, t_begin=0.0)
    for _ in range(5):
        m.step()
    first = m.read()
    assert set(first) == {"images_per_s", "images_per_s_window", "time.train_s"}
    assert m.images == 40 and first["images_per_s"] > 0 and first["time.train_s"] > 0
    assert m.read()["images_per_s_window"] == 0.0  # nothing since the last read


def test_faults_hooks():
    f = Faults(nan_loss_at_step=3, raise_at_step=2)
    logs = {"loss_d": 1.0, "fake_std": 0.5}
    assert f.after_step(2, logs) is logs
    out = f.after_step(3, logs)
    assert math.isnan(out["loss_d"]) and out["fake_std"] == 0.5
    f.before_step(1, resumed=False)
    f.before_step(2, resumed=True)  # a resumed attempt trains on
    with pytest.raises(RuntimeError, match="injected fault: worker raised at step 2"):
        f.before_step(2, resumed=False)
    with pytest.raises(ValueError, match="exit_at_step"):
        Faults(exit_at_step=0)
