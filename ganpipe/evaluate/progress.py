"""A progress bar for slow evaluation work (sample generation, feature extraction) that a
person at a terminal sees only when the work takes long enough to wonder about: it appears
after `DELAY_S` seconds, on stderr, and is gone when the work ends. On a pipe or in a log
file nothing is written: evaluation's results are its record.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

DELAY_S = 2.0
_console: list[Console] = []


def _default_console() -> Console:
    if not _console:
        _console.append(Console(stderr=True))
    return _console[0]


@contextmanager
def progress(description: str, total: int | None = None, delay: float = DELAY_S, console: Console | None = None) -> Iterator[Callable[[int], None]]:
    """Yields `advance(n)`; `total=None` shows a spinner for one long call (a whole batch of
    samples from one forward pass). The bar starts from a timer, so it also appears while the
    calling thread is busy in that one call."""
    console = console or _default_console()
    if not console.is_terminal:
        yield lambda n=1: None
        return
    bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True)
    task = bar.add_task(description, total=total)
    lock, state = threading.Lock(), {"done": False}

    def show() -> None:
        with lock:
            if not state["done"]:
                bar.start()

    timer = threading.Timer(delay, show)
    timer.daemon = True
    timer.start()
    try:
        yield lambda n=1: bar.advance(task, n)
    finally:
        timer.cancel()
        with lock:
            state["done"] = True
            bar.stop()  # a bar that never started stops as a no-op
