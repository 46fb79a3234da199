"""The live trial table of `ganpipe tune` (ganpipe.tune.progress), fed fake trials: no Ray."""

from __future__ import annotations

import io
from types import SimpleNamespace

from rich.console import Console

from ganpipe.tune.progress import TrialTable


def test_states_steps_metric_and_best_so_far():
    t = TrialTable("eval.fid", "min", max_steps=100)
    assert t.start("a", {"lr": 0.001, "loss": "hinge"}) == "trial a started: lr=0.001, loss=hinge"
    t.start("b", {"lr": 0.01, "loss": "wgan"})
    assert t.result("a", {"step": 10, "loss_g": 1.0}) is None  # a checkpoint without the metric
    assert t.trials["a"].step == 10 and t.trials["a"].metric is None and t.best is None
    assert t.result("a", {"step": 20, "eval.fid": 5.0}) == "new best: trial a eval.fid=5 at step 20"
    assert t.result("b", {"step": 20, "eval.fid": 7.0}) is None  # worse than a
    assert t.result("b", {"step": 40, "eval.fid": 3.0}) == "new best: trial b eval.fid=3 at step 40"
    assert t.result("a", {"step": 40, "eval.fid": 6.0}) is None
    assert (t.trials["a"].metric, t.trials["a"].best) == (6.0, 5.0)  # latest and the trial's own best
    assert t.complete("a") == "trial a stopped early at step 40, eval.fid=6"
    t.result("b", {"step": 100, "eval.fid": 4.0})
    assert t.complete("b") == "trial b done at step 100, eval.fid=4"
    assert t.best_trial == "b" and t.best == 3.0
    t.start("c", {"lr": 0.1, "loss": "hinge"})
    assert t.error("c", "Traceback (most recent call last):\n  ...\nTrainingError: diverged (loss is NaN)\n") == "trial c failed at step 0: TrainingError: diverged (loss is NaN)"
    assert t.counts() == {"stopped early": 1, "done": 1, "error": 1}
    assert t.rows() == [
        ("a", "lr=0.001, loss=hinge", "stopped early", "40", "6", "5"),
        ("b *", "lr=0.01, loss=wgan", "done", "100", "4", "3"),
        ("c", "lr=0.1, loss=hinge", "error", "0", "", ""),
    ]


def test_max_mode_and_iteration_as_step():
    t = TrialTable("eval.precision", "max")
    t.result("x", {"training_iteration": 3, "eval.precision": 0.5})
    t.result("y", {"training_iteration": 3, "eval.precision": 0.7})
    assert t.best_trial == "y" and t.trials["y"].step == 3
    assert t.complete("x") == "trial x done at step 3, eval.precision=0.5"  # no max_steps: never "early"


def test_rendered_table_and_plain_lines_off_a_terminal():
    t = TrialTable("eval.fid", "min", max_steps=10)
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=False)
    t.start("a", {"lr": 0.001})
    t.result("a", {"step": 10, "eval.fid": 2.5})
    console.print(t.render())
    text = out.getvalue()
    assert "1 running" in text and "best eval.fid=2.5 (trial a)" in text and "a *" in text

    # the Tune callback on a pipe: one plain line per event, no live redraws
    from ganpipe.tune.progress import trial_progress

    out = io.StringIO()
    t = TrialTable("eval.fid", "min", max_steps=10)
    cb = trial_progress(t, Console(file=out, width=200, force_terminal=False))
    trial = SimpleNamespace(trial_id="t1", config={"lr": 0.01}, error_file=None)
    cb.on_trial_start(0, [trial], trial)
    cb.on_trial_result(1, [trial], trial, {"step": 5, "eval.fid": 3.0})
    cb.on_trial_result(2, [trial], trial, {"step": 10, "eval.fid": 4.0})
    cb.on_trial_complete(3, [trial], trial)
    cb.on_experiment_end([trial])
    assert out.getvalue().splitlines() == [
        "trial t1 started: lr=0.01",
        "new best: trial t1 eval.fid=3 at step 5",
        "trial t1 done at step 10, eval.fid=4",
    ]


def test_on_a_terminal_the_table_is_redrawn_in_place():
    from ganpipe.tune.progress import trial_progress

    out = io.StringIO()
    t = TrialTable("eval.fid", "min", max_steps=10)
    cb = trial_progress(t, Console(file=out, width=160, force_terminal=True))
    trial = SimpleNamespace(trial_id="t1", config={"lr": 0.01}, error_file=None)
    cb.on_trial_start(0, [trial], trial)
    assert cb.live is not None  # a rich Live, not lines
    cb.on_trial_result(1, [trial], trial, {"step": 10, "eval.fid": 3.0})
    cb.on_trial_complete(2, [trial], trial)
    cb.on_experiment_end([trial])
    assert cb.live is None
    text = out.getvalue()
    assert "new best" not in text and "1 done" in text and "best eval.fid=3 (trial t1)" in text
