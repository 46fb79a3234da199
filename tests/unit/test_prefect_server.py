"""ganpipe's local Prefect server: started once, reused by later processes, stopped on request."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ganpipe import prefect_server as ps
from ganpipe.errors import GanpipeError


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    monkeypatch.setenv("PREFECT_UI_ENABLED", "false")
    monkeypatch.setenv("PREFECT_API_URL", "")  # recorded, so what ensure_api() sets is undone afterwards
    monkeypatch.delenv("PREFECT_API_URL")
    monkeypatch.setenv(ps.MODE_ENV, "local")
    yield tmp_path / "prefect"
    ps.stop()


def test_started_once_reused_by_another_process_then_stopped(home):
    assert ps.running() is None
    api = ps.ensure_api()
    info = ps.running()
    assert info is not None and api == info.api_url == os.environ["PREFECT_API_URL"]
    assert json.loads((home / "ganpipe-server.json").read_text())["pid"] == info.pid
    assert ps.healthy(api)

    # A second process (a later `ganpipe pipeline run`) finds the same server instead of starting one.
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    out = subprocess.run(
        [sys.executable, "-c", "from ganpipe import prefect_server as ps; print(ps.ensure_api()); print(ps.running().pid)"],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    ).stdout.split()
    assert out == [api, str(info.pid)]

    stopped = ps.stop()
    assert stopped is not None and stopped.pid == info.pid
    assert ps.running() is None and not ps.healthy(api, timeout=0.5)
    assert ps.stop() is None  # nothing left to stop


def test_an_explicit_api_url_or_temporary_mode_starts_nothing(home, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://prefect.example:4200/api")
    monkeypatch.setattr(ps, "check_api", lambda url: None)  # its own tests: test_service_errors.py
    assert ps.ensure_api() == "http://prefect.example:4200/api"
    monkeypatch.delenv("PREFECT_API_URL")
    monkeypatch.setenv(ps.MODE_ENV, "temporary")
    assert ps.ensure_api() is None
    assert ps.running() is None and not (home / "ganpipe-server.json").exists()
    monkeypatch.setenv(ps.MODE_ENV, "sometimes")
    with pytest.raises(GanpipeError, match="local, temporary"):
        ps.ensure_api()
