"""What a person watching `ganpipe tune` sees: one table of trials (state, step, metric, best so
far), updated from a Tune `Callback` on the driver, in place of Tune's own reporter (which
`verbose=0` turns off).

On a terminal the table is redrawn in place (rich `Live`); on a pipe or in a log file each
trial start, end, error and new best is one plain line, so a CI log stays readable.
`TrialTable` is the model and knows nothing of Ray; `TrialProgress` feeds it from Tune.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

# Tune's trial states as shown; anything else is shown as it comes.
STATES = {"PENDING": "pending", "RUNNING": "running", "PAUSED": "paused", "TERMINATED": "done", "ERROR": "error"}
STYLES = {"running": "cyan", "done": "green", "error": "red", "stopped early": "yellow"}


@dataclass
class TrialLine:
    trial_id: str
    params: dict[str, Any]
    state: str = "pending"
    step: int = 0
    metric: float | None = None  # the latest value reported
    best: float | None = None  # this trial's best so far
    error: str | None = None


@dataclass
class TrialTable:
    """The trials of one sweep and the best value so far. `metric` is the key trials report
    (`eval.fid`), `mode` min or max, `max_steps` the steps of a trial that runs to the end
    (a trial that ends before is shown as stopped early)."""

    metric: str
    mode: str = "min"
    max_steps: int | None = None
    trials: dict[str, TrialLine] = field(default_factory=dict)
    best_trial: str | None = None
    started: float = field(default_factory=time.monotonic)

    def _line(self, trial_id: str, params: dict[str, Any] | None = None) -> TrialLine:
        if trial_id not in self.trials:
            self.trials[trial_id] = TrialLine(trial_id, dict(params or {}))
        elif params:
            self.trials[trial_id].params = dict(params)
        return self.trials[trial_id]

    def _better(self, a: float, b: float | None) -> bool:
        return b is None or (a < b if self.mode == "min" else a > b)

    @property
    def best(self) -> float | None:
        return self.trials[self.best_trial].best if self.best_trial else None

    def start(self, trial_id: str, params: dict[str, Any] | None = None) -> str:
        t = self._line(trial_id, params)
        t.state = "running"
        return f"trial {trial_id} started: {_params(t.params)}"

    def result(self, trial_id: str, result: dict[str, Any], params: dict[str, Any] | None = None) -> str | None:
        """Record one reported result; returns a line when it is a new best of the sweep."""
        t = self._line(trial_id, params)
        t.state = "running"
        step = result.get("step", result.get("training_iteration"))
        if isinstance(step, (int, float)):
            t.step = int(step)
        value = result.get(self.metric)
        if not isinstance(value, (int, float)):
            return None
        t.metric = float(value)
        if self._better(t.metric, t.best):
            t.best = t.metric
        if self._better(t.metric, self.best):
            self.best_trial = trial_id
            return f"new best: trial {trial_id} {self.metric}={t.metric:.4g} at step {t.step}"
        return None

    def complete(self, trial_id: str) -> str:
        t = self._line(trial_id)
        early = self.max_steps is not None and t.step < self.max_steps
        t.state = "stopped early" if early else "done"
        metric = "" if t.metric is None else f", {self.metric}={t.metric:.4g}"
        return f"trial {trial_id} {t.state} at step {t.step}{metric}"

    def error(self, trial_id: str, message: str | None = None) -> str:
        t = self._line(trial_id)
        lines = [ln.strip() for ln in (message or "").splitlines() if ln.strip()]
        t.state, t.error = "error", (lines[-1][:120] if lines else None)
        return f"trial {trial_id} failed at step {t.step}" + (f": {t.error}" if t.error else "")

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.trials.values():
            out[t.state] = out.get(t.state, 0) + 1
        return out

    def rows(self) -> list[tuple[str, str, str, str, str, str]]:
        """(trial, params, state, step, metric, trial's best), the sweep's best trial marked."""
        rows = []
        for t in self.trials.values():
            mark = " *" if t.trial_id == self.best_trial else ""
            rows.append((t.trial_id + mark, _params(t.params), t.state, str(t.step), _fmt(t.metric), _fmt(t.best)))
        return rows

    def render(self) -> Table:
        elapsed = time.monotonic() - self.started
        counts = ", ".join(f"{n} {s}" for s, n in sorted(self.counts().items()))
        best = f"best {self.metric}={self.best:.4g} (trial {self.best_trial})" if self.best_trial else "no result yet"
        table = Table("trial", "params", "state", "step", self.metric, "trial best", title=f"sweep: {counts or 'starting'}; {best}; {elapsed:.0f} s")
        for row in self.rows():
            table.add_row(*row, style=STYLES.get(row[2]))
        return table


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.4g}"


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt(v) if isinstance(v, float) else v}" for k, v in params.items())


def _error_text(trial: Any) -> str | None:
    """The last lines of the error Tune wrote for a failed trial, if it wrote one."""
    try:
        with open(trial.error_file) as f:
            return f.read()[-2000:]
    except (OSError, TypeError, AttributeError):
        return None


def trial_progress(table: TrialTable, console: Console | None = None) -> Any:
    """A Tune `Callback` that feeds `table` and shows it: live on a terminal, plain lines
    otherwise. Built here so that `TrialTable` imports no Ray. Tune pickles its run config
    (callbacks included) to save the experiment's state, so the console and the live display
    are made on first use and left out of the pickle."""
    from ray import tune

    class TrialProgress(tune.Callback):
        def __init__(self) -> None:
            self.table = table
            self.console: Any = console
            self.live: Any = None

        def __getstate__(self) -> dict[str, Any]:
            return {"table": self.table, "console": None, "live": None}

        def _show(self, line: str | None) -> None:
            if self.console is None:
                self.console = Console(stderr=True)
            if self.console.is_terminal:
                if self.live is None:
                    from rich.live import Live

                    self.live = Live(self.table.render(), console=self.console, refresh_per_second=2, transient=False)
                    self.live.start()
                self.live.update(self.table.render())
            elif line:
                self.console.print(line, highlight=False, soft_wrap=True)

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self._show(self.table.start(trial.trial_id, trial.config))

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            self._show(self.table.result(trial.trial_id, result, trial.config))

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self._show(self.table.complete(trial.trial_id))

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self._show(self.table.error(trial.trial_id, _error_text(trial)))

        def on_experiment_end(self, trials: list, **info: Any) -> None:
            if self.live is not None:
                self.live.update(self.table.render())
                self.live.stop()
                self.live = None

    return TrialProgress()
