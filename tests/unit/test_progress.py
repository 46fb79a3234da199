"""The progress display's pieces without Ray: line format, ETA arithmetic, the views, the
socket from rank 0 to the driver, and the log-level choice."""

from __future__ import annotations

import io
import logging
import time

import pytest

from ganpipe import logs
from ganpipe.train.progress import LineView, LiveView, ProgressListener, ProgressSender, eta_s, fmt_duration, format_line, make_view, record

METRICS = {"loss_d": 1.2345678, "loss_g": 0.5, "penalty": 0.0, "images_per_s": 900.0, "images_per_s_window": 1000.0, "time.train_s": 7.0, "start_step": 0.0, "eval.fcd": 12.5}


def test_record_keeps_what_the_display_shows():
    rec = record(METRICS, 50, 3000, 64)
    assert rec == {"step": 50, "steps": 3000, "start": 0, "ips": 1000.0, "per_step": 64, "loss_d": 1.2345678, "loss_g": 0.5, "eval.fcd": 12.5}


def test_eta_is_steps_left_at_the_recent_rate():
    assert eta_s(50, 3000, 1000.0, 64) == pytest.approx(2950 * 64 / 1000.0)
    assert eta_s(3000, 3000, 1000.0, 64) == 0
    assert eta_s(10, 100, 0.0, 64) is None  # no rate yet


def test_durations():
    assert fmt_duration(0) == "0:00"
    assert fmt_duration(65.4) == "1:05"
    assert fmt_duration(3725) == "1:02:05"
    assert fmt_duration(None) == "?"
    assert fmt_duration(float("inf")) == "?"


def test_progress_line():
    line = format_line(record(METRICS, 50, 3000, 64), elapsed=7.2)
    assert line == "step 50/3000 (2%) | 1000 img/s | elapsed 0:07 eta 3:09 | D 1.235 G 0.5 fcd 12.5"
    bare = format_line({"step": 1, "steps": 10, "ips": 0.0, "per_step": 8}, elapsed=0)
    assert bare == "step 1/10 (10%) | 0 img/s | elapsed 0:00 eta ?"


def test_line_view_prints_one_line_per_record_and_no_escape_codes():
    out = io.StringIO()
    v = LineView("dcgan-x", "abc123 http://host/run", out=out)
    v.start()
    for step in (10, 20):
        v.update(record(METRICS, step, 20, 64))
    v.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "training dcgan-x (MLflow run abc123 http://host/run)"
    assert [ln.split(" | ")[0] for ln in lines[1:]] == ["step 10/20 (50%)", "step 20/20 (100%)"]
    assert "\x1b" not in out.getvalue()


def test_make_view_picks_live_on_a_terminal_only():
    from rich.console import Console

    assert isinstance(make_view("r", console=Console(file=io.StringIO(), force_terminal=True)), LiveView)
    assert isinstance(make_view("r", console=Console(file=io.StringIO(), force_terminal=False)), LineView)


def test_live_view_redraws_in_place():
    from rich.console import Console

    buf = io.StringIO()
    v = LiveView("dcgan-x", "abc123", console=Console(file=buf, force_terminal=True, width=120))
    v.start()
    v.update(record(METRICS, 10, 20, 64))
    v.update(record(METRICS, 20, 20, 64))
    v.close()
    text = buf.getvalue()
    assert "20/20" in text and "1000 img/s" in text and "D 1.235" in text and "abc123" in text
    assert "\x1b[" in text  # cursor movement: the block is redrawn, not appended


def test_sender_to_listener_over_a_socket():
    got: list[dict] = []
    listener = ProgressListener(got.append).start()
    sender = ProgressSender(listener.address, listener.token, steps=20, images_per_step=64)
    for step in (10, 20):
        sender.log_metrics(METRICS, step)
    sender.flush()
    listener.close(wait_s=5)
    assert [r["step"] for r in got] == [10, 20] and got[0]["loss_d"] == METRICS["loss_d"]


def test_listener_ignores_a_stranger_and_a_sender_without_driver_goes_silent(caplog):
    got: list[dict] = []
    listener = ProgressListener(got.append).start()
    stranger = ProgressSender(listener.address, "not-the-token", steps=20, images_per_step=64)
    stranger.log_metrics(METRICS, 10)
    stranger.flush()
    listener.close(wait_s=5)
    assert got == []
    lost = ProgressSender(listener.address, listener.token, steps=20, images_per_step=64, timeout_s=0.5)  # nothing listens now
    t0 = time.perf_counter()
    with caplog.at_level(logging.WARNING):
        lost.log_metrics(METRICS, 10)
        lost.log_metrics(METRICS, 20)  # silent after the first failure
    assert time.perf_counter() - t0 < 2
    assert sum("cannot reach the driver" in r.message for r in caplog.records) == 1


@pytest.fixture
def restore_logging():
    """`logs.configure` sets environment variables and logger levels for the whole process."""
    import os

    env = dict(os.environ)
    levels = {n: logging.getLogger(n).level for n in logs.LIBRARY_LOGGERS}
    yield
    os.environ.clear()
    os.environ.update(env)
    for n, lv in levels.items():
        logging.getLogger(n).setLevel(lv)
    logs._configured.clear()


@pytest.mark.usefixtures("restore_logging")
def test_log_level_choice(monkeypatch):
    monkeypatch.delenv(logs.LEVEL_ENV, raising=False)
    try:
        assert logs.configure() == logging.WARNING
        assert logging.getLogger("ray.train").level == logging.WARNING
        assert logging.getLogger("mlflow").level == logging.WARNING
        assert logs.configure(verbose=True) == logging.INFO
        assert logging.getLogger("ray.train").level == logging.INFO
        monkeypatch.setenv(logs.LEVEL_ENV, "DEBUG")
        assert logs.configure() == logging.DEBUG
        monkeypatch.setenv(logs.LEVEL_ENV, "nonsense")
        assert logs.configure() == logging.WARNING
    finally:
        pass


@pytest.mark.usefixtures("restore_logging")
def test_token_notice_is_dropped_when_quiet(monkeypatch):
    monkeypatch.delenv(logs.LEVEL_ENV, raising=False)
    lg = logging.getLogger("ray._private.authentication.authentication_token_setup")
    try:
        logs.configure()
        notice = lg.makeRecord(lg.name, logging.WARNING, __file__, 1, "Token authentication is enabled for this Ray cluster. Set ...", (), None)
        disabled = lg.makeRecord(lg.name, logging.WARNING, __file__, 1, "Token authentication is disabled for this Ray cluster.", (), None)
        assert not lg.filter(notice) and lg.filter(disabled)
        logs.configure(verbose=True)
        assert lg.filter(notice)
    finally:
        lg.filters.clear()
