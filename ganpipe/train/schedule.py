"""What the training loop does besides the update at a given step: log, evaluate, checkpoint,
draw samples, report to its runner. Intervals come from `train.*` and `eval.every`; the last
step does everything that has an interval."""

from __future__ import annotations

from dataclasses import dataclass

from ganpipe.config import PipelineConfig


@dataclass(frozen=True)
class Due:
    log: bool
    checkpoint: bool
    eval: bool
    samples: bool

    @property
    def any(self) -> bool:
        """A point where the loop reads its metrics (the only host sync) and logs them."""
        return self.log or self.checkpoint or self.eval

    @property
    def report(self) -> bool:
        """Only checkpoints and evaluations go to the runner: Ray Train takes one report per
        worker each time its controller polls (every 2 s), so reporting at every log point
        capped fast loops at one log interval per 2 s. Logged metrics reach MLflow through the
        sink."""
        return self.checkpoint or self.eval


class Schedule:
    def __init__(self, cfg: PipelineConfig):
        t = cfg.train
        self.steps = t.steps
        self.log_every, self.checkpoint_every, self.sample_every = t.log_every, t.checkpoint_every, t.sample_every
        self.eval_every = cfg.eval.every  # 0: no evaluation during training

    def due(self, step: int) -> Due:
        last = step == self.steps
        log = step % self.log_every == 0 or last
        checkpoint = step % self.checkpoint_every == 0 or last
        evaluate = bool(self.eval_every) and (step % self.eval_every == 0 or last)
        # Samples are drawn only at a point where the loop stops anyway.
        samples = (log or checkpoint or evaluate) and (step % self.sample_every == 0 or last)
        return Due(log=log, checkpoint=checkpoint, eval=evaluate, samples=samples)
