"""Live progress of a slow subprocess (`dvc add`, `repro`, `push`, `pull` on a large folder).

DVC draws tqdm bars only on a terminal, and ganpipe captures its output (to name the error
when a command fails), so a 100k-file `dvc add` used to run for minutes in silence. Here the
command runs with `DVC_IGNORE_ISATTY=1` (DVC draws its bars into the pipe) and its output is
read as it comes: progress lines (DVC's bars, the prepare stage's own image counts) are shown
on our terminal, one redrawn line, or off a terminal one plain line about every
`LINE_EVERY_S` seconds; everything else is kept, as `subprocess.run` would return it.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
import sys
import time
from typing import TextIO

LINE_EVERY_S = 10.0
# tqdm's "[elapsed<remaining, rate]" or "[elapsed, rate]", and the prepare stage's plain line.
_PROGRESS = re.compile(r"\[\d+:\d\d(:\d\d)?[<,]|images/s, ETA")
_BLANK = re.compile(r"^[\s!]*$")  # tqdm's "!" placeholder frames and cleared lines


def is_progress(line: str) -> bool:
    return bool(_PROGRESS.search(line))


def split_output(text: str) -> tuple[list[str], str]:
    """(progress lines, the rest) of a command's output: tqdm redraws with carriage returns,
    so every \\r- or \\n-separated piece is one frame; blank frames are dropped."""
    progress, kept = [], []
    for piece in re.split(r"[\r\n]", text):
        if _BLANK.match(piece):
            continue
        (progress if is_progress(piece) else kept).append(piece.rstrip())
    return progress, "\n".join(kept) + ("\n" if kept else "")


class LineProgress:
    """Shows the latest progress line of `what` on `stream` (stderr by default)."""

    def __init__(self, what: str, enabled: bool = True, stream: TextIO | None = None):
        self.what, self.enabled = what, enabled
        self.stream = stream or sys.stderr
        self.tty = enabled and self.stream.isatty()
        self.last_print = time.monotonic()
        self.drawn = False

    def show(self, line: str) -> None:
        if not self.enabled:
            return
        text = f"{self.what}: {' '.join(line.split())}"
        if self.tty:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.stream.write("\r" + text[:width].ljust(width))
            self.stream.flush()
            self.drawn = True
        elif time.monotonic() - self.last_print >= LINE_EVERY_S:
            self.last_print = time.monotonic()
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.drawn:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.stream.write("\r" + " " * width + "\r")
            self.stream.flush()
            self.drawn = False


def run_with_progress(
    cmd: list[str], cwd: os.PathLike | str, env: dict[str, str], what: str, timeout: float, enabled: bool = True, stream: TextIO | None = None
) -> subprocess.CompletedProcess:
    """Run `cmd` showing its progress lines; returns a CompletedProcess whose stdout holds the
    rest of its output (stderr merged in, in order) and whose stderr is empty."""
    bar = LineProgress(what, enabled, stream)
    # DVC draws its bars into the pipe; a prepare stage run by `dvc repro` prints its image
    # count every second instead of every 10 (this display throttles what it shows itself).
    env = {**env, "DVC_IGNORE_ISATTY": "1", "GANPIPE_PROGRESS_EVERY_S": "1"}
    kept: list[str] = []
    deadline = time.monotonic() + timeout
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    pending = ""
    try:
        fd = proc.stdout.fileno()
        while True:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(cmd, timeout)
            if not select.select([fd], [], [], 1.0)[0]:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            pending += chunk.decode("utf-8", errors="replace")
            cut = max(pending.rfind("\r"), pending.rfind("\n"))
            if cut < 0:
                continue
            done, pending = pending[: cut + 1], pending[cut + 1 :]
            progress, rest = split_output(done)
            if progress:
                bar.show(progress[-1])
            if rest:
                kept.append(rest)
        proc.wait(timeout=max(deadline - time.monotonic(), 1.0))
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        bar.close()
        proc.stdout.close()
    progress, rest = split_output(pending)
    kept.append(rest)
    return subprocess.CompletedProcess(cmd, proc.returncode, "".join(kept), "")
