"""What `ganpipe train` shows while it trains: a live display on a terminal, one line per log
point through a pipe, and none of Ray's or MLflow's internal lines, in a real CLI subprocess."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys

from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import REPO, copy_project, load_project

pytestmark = pytest.mark.e2e

TINY = ["train.log_every=10", "model.params.g_width=8", "model.params.d_width=8", "data.use_dvc=false"]
NOISE = ["TrainingReport(", "{'loss_d':", "Checkpoint successfully created", "Creating initial MLflow database tables", "Token authentication is enabled", "Started a local Ray instance"]


def _cmd(project, steps: int) -> list[str]:
    sets = [f"train.steps={steps}", f"train.checkpoint_every={steps}", f"train.sample_every={steps}", *TINY]
    return [sys.executable, "-m", "ganpipe", "-C", str(project.root), "train", str(REPO / "configs" / "dcgan-digits.yaml"), *[a for s in sets for a in ("--set", s)]]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GANPIPE_LOG_LEVEL", "RAY_ADDRESS", "FORCE_COLOR", "NO_COLOR")}
    return env | {"TERM": "xterm-256color", "COLUMNS": "120", "PYTHONPATH": os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])}


def _run_in_pty(cmd: list[str], cwd, timeout: float = 600) -> tuple[int, str]:
    master, slave = os.openpty()
    proc = subprocess.Popen(cmd, cwd=cwd, env=_env(), stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    out = bytearray()
    try:
        while True:
            ready, _, _ = select.select([master], [], [], timeout)
            if not ready:
                proc.kill()
                raise AssertionError("no output for %ss:\n%s" % (timeout, out.decode(errors="replace")[-3000:]))
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
    return proc.wait(timeout=60), out.decode(errors="replace")


def test_train_shows_progress_not_library_internals(project, project_template, tmp_path):
    # The terminal run and the pipe run go side by side, each in its own project (one SQLite
    # store each): most of either is waiting for Ray to start.
    piped = load_project(copy_project(project_template, tmp_path / "piped"))
    with ThreadPoolExecutor(2) as pool:
        in_pty = pool.submit(_run_in_pty, _cmd(project, 30), project.root)
        in_pipe = pool.submit(subprocess.run, _cmd(piped, 20), cwd=piped.root, env=_env(), capture_output=True, text=True, timeout=600)
        (rc, tty), r = in_pty.result(), in_pipe.result()

    # A terminal: the live display, redrawn in place.
    assert rc == 0, tty[-3000:]
    assert "\x1b[" in tty  # cursor movement of the live redraw
    assert "30/30" in tty and re.search(r"\d+ img/s", tty) and re.search(r"D \d", tty) and re.search(r"G \d", tty), tty[-3000:]
    assert "eta " in tty and "MLflow run " in tty
    for noise in NOISE:
        assert noise not in tty, (noise, tty[-3000:])

    # A pipe: one plain line per log point, no escape codes.
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    both = r.stdout + r.stderr
    steps = [int(m) for m in re.findall(r"^step (\d+)/20 \(\d+%\) \| \d+ img/s \| elapsed \d+:\d\d eta [\d:?]+ \| D \S+ G \S+$", r.stdout, re.M)]
    assert steps == [10, 20], r.stdout
    assert "\x1b" not in both
    for noise in NOISE:
        assert noise not in both, (noise, both[-3000:])
