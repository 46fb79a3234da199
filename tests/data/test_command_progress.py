"""Live progress of slow DVC commands: DVC's own bars relayed from the pipe, the rest of the
output kept for error messages, a silent hang stopped at the timeout."""

from __future__ import annotations

import io
import subprocess
import sys
import time

import pytest

import ganpipe.data.command_progress as cp
from ganpipe.data.dvc import _env


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


FAKE = r"""
import sys, time
print("Running stage 'prepare@x':", flush=True)
for n in range(0, 3001, 1000):
    sys.stderr.write(f"\r {n // 30:3d}%|#   |Adding data to cache {n}/3.00k [00:0{n // 1000}<00:01, 1.00kfile/s]")
    sys.stderr.flush()
    time.sleep(0.05)
sys.stderr.write("\r!\r   \r\n")
sys.stderr.flush()
time.sleep(0.5)  # the reader shows the newest frame of each read: let the bar's last one arrive alone
print("prepare pets: 500/1000 images (50%), 900 images/s, ETA 0:01", file=sys.stderr, flush=True)
print("ERROR: remote unreachable", file=sys.stderr, flush=True)
sys.exit(3)
"""


def test_progress_frames_are_shown_and_the_rest_is_kept():
    term = Terminal()
    proc = cp.run_with_progress([sys.executable, "-c", FAKE], ".", {}, "dvc add", timeout=60, stream=term)
    assert proc.returncode == 3
    # What a caller parses or shows on failure, without the bar's hundred redraws.
    assert proc.stdout.splitlines() == ["Running stage 'prepare@x':", "ERROR: remote unreachable"]
    shown = term.getvalue()
    assert "dvc add: 100%|# |Adding data to cache 3000/3.00k [00:03<00:01, 1.00kfile/s]" in shown
    assert "dvc add: prepare pets: 500/1000 images (50%), 900 images/s, ETA 0:01" in shown
    assert shown.endswith("\r")  # the line is cleared when the command ends


def test_off_a_terminal_lines_are_throttled(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(cp, "LINE_EVERY_S", 3600.0)
    cp.run_with_progress([sys.executable, "-c", FAKE], ".", {}, "dvc add", timeout=60, stream=out)
    assert out.getvalue() == ""  # a log gets one line per LINE_EVERY_S, not a line per redraw
    monkeypatch.setattr(cp, "LINE_EVERY_S", 0.0)
    cp.run_with_progress([sys.executable, "-c", FAKE], ".", {}, "dvc add", timeout=60, stream=out)
    lines = out.getvalue().splitlines()
    assert lines and all(ln.startswith("dvc add: ") for ln in lines) and "\r" not in out.getvalue()


def test_a_silent_hang_is_stopped_at_the_timeout():
    t0 = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        cp.run_with_progress([sys.executable, "-c", "import time; time.sleep(60)"], ".", {}, "dvc push", timeout=2, stream=io.StringIO())
    assert time.monotonic() - t0 < 10


def test_split_output_drops_blank_frames():
    progress, rest = cp.split_output("a\r  5%|#|x 1/20 [00:01<00:19, 1.0it/s]\r!\r \nb\n")
    assert progress == ["  5%|#|x 1/20 [00:01<00:19, 1.0it/s]"] and rest == "a\nb\n"


def test_real_dvc_add_shows_its_file_count(tmp_path):
    """DVC draws its bars only on a terminal; through the pipe its count still reaches ours."""
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=tmp_path, check=True, env=_env())
    data = tmp_path / "data"
    data.mkdir()
    for i in range(1500):
        (data / f"{i:04d}.bin").write_bytes(i.to_bytes(4, "little") * 64)
    term = Terminal()
    env = {k: v for k, v in _env().items() if k != "TQDM_DISABLE"}
    proc = cp.run_with_progress([sys.executable, "-m", "dvc", "add", "data"], tmp_path, env, "dvc add", timeout=300, stream=term)
    assert proc.returncode == 0, proc.stdout
    assert (tmp_path / "data.dvc").is_file() and "git add" in proc.stdout
    assert "/1.50k [" in term.getvalue()  # DVC's "n/1.50k files" bar, relayed
