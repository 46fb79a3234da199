"""Progress of a data preparation: images done, images/s and the time left, on stderr.

On a terminal a rich bar that redraws as chunks complete; elsewhere (a pipe, a log file, a
scheduled run) one plain line about every `LINE_EVERY_S` seconds, so a log shows the rate
without a line per chunk. Nothing at all when disabled (library calls, tests).
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

from ganpipe.train.progress import fmt_duration

LINE_EVERY_S = 10.0  # GANPIPE_PROGRESS_EVERY_S overrides it (set where another display relays the lines)


class PrepareProgress:
    """`advance(images, skipped)` per completed chunk; `close()` once at the end."""

    def __init__(self, total: int, what: str, enabled: bool = True, stream: TextIO | None = None):
        self.total, self.what, self.enabled = total, what, enabled
        self.done = self.skipped = 0
        self.t0 = self.last_line = time.monotonic()
        self.first: tuple[float, int] | None = None  # (time, images) of the first completed chunk
        self.stream = stream or sys.stderr
        self.bar = None
        if enabled and self.stream.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                TextColumn("{task.fields[skipped]}"), console=Console(file=self.stream), transient=True,
            )  # fmt: skip
            self.task = self.bar.add_task(what, total=total, rate="", skipped="")
            self.bar.start()

    def rate(self) -> float:
        """Images/s since the first chunk completed (start-up excluded), until then overall."""
        now = time.monotonic()
        if self.first is not None and self.done > self.first[1] and now > self.first[0]:
            return (self.done - self.first[1]) / (now - self.first[0])
        return self.done / (now - self.t0) if now > self.t0 else 0.0

    def eta_s(self) -> float | None:
        r = self.rate()
        return (self.total - self.done) / r if r > 0 else None

    def line(self) -> str:
        pct = 100.0 * self.done / self.total if self.total else 100.0
        skipped = f", {self.skipped} skipped" if self.skipped else ""
        return f"{self.what}: {self.done}/{self.total} images ({pct:.0f}%), {self.rate():.0f} images/s, ETA {fmt_duration(self.eta_s())}{skipped}"

    def advance(self, images: int, skipped: int = 0) -> None:
        self.done += images
        self.skipped += skipped
        if self.first is None:
            self.first = (time.monotonic(), self.done)
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done, rate=f"{self.rate():.0f} images/s", skipped=f"{self.skipped} skipped" if self.skipped else "")
        elif time.monotonic() - self.last_line >= float(os.environ.get("GANPIPE_PROGRESS_EVERY_S", LINE_EVERY_S)) or self.done >= self.total:
            self.last_line = time.monotonic()
            print(self.line(), file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
