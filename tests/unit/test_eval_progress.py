"""Evaluation's progress bar (ganpipe.evaluate.progress): on a terminal only, and only once
the work has taken `delay` seconds; nothing on a pipe."""

from __future__ import annotations

import io
import time

from rich.console import Console

from ganpipe.evaluate.progress import progress


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=100, force_terminal=terminal), out


def test_slow_work_on_a_terminal_shows_a_bar_that_is_gone_afterwards():
    console, out = _console(True)
    with progress("classifier features", total=4, delay=0.1, console=console) as advance:
        for _ in range(4):
            time.sleep(0.1)
            advance(1)
    assert "classifier features" in out.getvalue()


def test_a_spinner_appears_while_one_long_call_blocks_the_thread():
    console, out = _console(True)
    with progress("generating 10 samples", delay=0.1, console=console):
        time.sleep(0.5)  # one forward pass: no advance() calls at all
    assert "generating 10 samples" in out.getvalue()


def test_quick_work_shows_nothing():
    console, out = _console(True)
    with progress("classifier features", total=4, delay=2.0, console=console) as advance:
        advance(4)
    assert out.getvalue() == ""


def test_nothing_on_a_pipe():
    console, out = _console(False)
    with progress("classifier features", total=2, delay=0.0, console=console) as advance:
        time.sleep(0.2)
        advance(2)
    assert out.getvalue() == ""
