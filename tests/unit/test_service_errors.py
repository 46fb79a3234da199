"""A service that is down, hangs or refuses this client ends the command in seconds with one
line and its fix: a Ray cluster (RAY_ADDRESS), the MLflow tracking server, the Prefect API."""

from __future__ import annotations

import contextlib
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from ganpipe.errors import ServiceError, TrackingError

REPO = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


@contextlib.contextmanager
def http_server(status: int = 200, hang: bool = False) -> Iterator[str]:
    """http://127.0.0.1:PORT answering every GET and POST with `status`, or never answering."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _reply(self) -> None:
            if hang:
                time.sleep(60)
                return
            # what MLflow's basic-auth app answers to a client without credentials: plain text
            body = b"You are not authenticated." if status >= 400 else b"{}"
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if status >= 400 else "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _reply

        def log_message(self, *args):  # quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _timed(fn, *args, **kwargs) -> tuple[Exception, float]:
    t = time.monotonic()
    with pytest.raises(Exception) as info:
        fn(*args, **kwargs)
    return info.value, time.monotonic() - t


def _one_line(e: Exception) -> None:
    assert "\n" not in e.message and e.hint and "\n" not in e.hint, e


# -- MLflow ----------------------------------------------------------------------------------


def _store(uri: str):
    from ganpipe.tracking.store import TrackingStore

    store = TrackingStore(uri)
    store.client()  # imports MLflow outside the timed part
    return store


def test_mlflow_server_down_fails_fast():
    uri = f"http://127.0.0.1:{_closed_port()}"
    e, took = _timed(_store(uri).check_reachable, timeout=3)
    assert isinstance(e, TrackingError) and took < 10, (e, took)
    _one_line(e)
    assert uri in e.message and "no MLflow tracking server answers" in e.message and "start the tracking server" in e.hint


def test_mlflow_server_that_hangs_fails_within_the_timeout():
    with http_server(hang=True) as url:
        e, took = _timed(_store(url).check_reachable, timeout=2)
    assert isinstance(e, TrackingError) and took < 10, (e, took)
    _one_line(e)
    assert "within 2 s" in e.message, e


@pytest.mark.parametrize("status", [401, 403])
def test_mlflow_server_refusing_the_client_says_which_credentials(status, monkeypatch):
    for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    with http_server(status) as url:
        e, took = _timed(_store(url).check_reachable, timeout=3)
    assert isinstance(e, TrackingError) and took < 10, (e, took)
    _one_line(e)
    assert f"refuses this client (HTTP {status})" in e.message and "MLFLOW_TRACKING_USERNAME" in e.hint, e


# -- Prefect ---------------------------------------------------------------------------------


def test_prefect_api_down_fails_fast(monkeypatch):
    from ganpipe import prefect_server as ps

    url = f"http://127.0.0.1:{_closed_port()}/api"
    monkeypatch.setenv("PREFECT_API_URL", url)
    e, took = _timed(ps.ensure_api)
    assert isinstance(e, ServiceError) and took < 10, (e, took)
    _one_line(e)
    assert f"no Prefect server answers at PREFECT_API_URL={url}" in e.message and "prefect server start" in e.hint


def test_prefect_api_that_hangs_or_refuses(monkeypatch):
    from ganpipe import prefect_server as ps

    for k in ("PREFECT_API_KEY", "PREFECT_API_AUTH_STRING"):
        monkeypatch.delenv(k, raising=False)
    with http_server(hang=True) as url:
        e, took = _timed(ps.check_api, url + "/api", timeout=2)
    assert isinstance(e, ServiceError) and took < 10 and "within 2 s" in e.message, (e, took)
    with http_server(401) as url:
        e, took = _timed(ps.check_api, url + "/api", timeout=2)
    assert isinstance(e, ServiceError) and "refuses this client (HTTP 401)" in e.message and "PREFECT_API_AUTH_STRING" in e.hint, e
    _one_line(e)
    with http_server(200) as url:
        ps.check_api(url + "/api", timeout=2)  # a server that answers passes


# -- Ray -------------------------------------------------------------------------------------


def test_ray_address_of_a_closed_port_ends_train_in_seconds(tmp_path):
    """`ganpipe train` with RAY_ADDRESS at a port where nothing listens: one line and the fix,
    not minutes of GCS time-out warnings. A child process, so this session's Ray is untouched."""
    port = _closed_port()
    env = {**os.environ, "RAY_ADDRESS": f"127.0.0.1:{port}", "PYTHONPATH": str(REPO)}
    t = time.monotonic()
    p = subprocess.run(
        [sys.executable, "-m", "ganpipe", "-C", str(tmp_path), "train", str(REPO / "configs" / "toy-grid25.yaml"), "--set", "train.steps=2"],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    took = time.monotonic() - t
    assert p.returncode == 2, (p.stdout, p.stderr)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert lines[-2].startswith("error: no Ray cluster answers at RAY_ADDRESS=127.0.0.1:") and "Connection refused" in lines[-2], p.stderr
    assert lines[-1].startswith("fix: start the cluster"), p.stderr
    assert "Traceback" not in p.stderr and "Failed to connect to GCS" not in p.stderr, p.stderr
    assert took < 30, took  # checked before torch is imported or any data prepared


def test_ray_auth_errors_are_classified_with_the_fix(monkeypatch):
    """What a real `ray.init` raises against a cluster with token authentication, as ganpipe
    reports it. The refusal itself (UNAUTHENTICATED from the GCS) is checked against a real
    `ray start --head` in tests/reliability/test_cluster_auth.py."""
    from ray.exceptions import AuthenticationError

    from ganpipe.train import cluster as lr

    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    e = lr.cluster_error("10.0.0.1:6379", AuthenticationError("Token authentication is enabled but no authentication token was found"))
    assert isinstance(e, ServiceError) and "refuses this client" in e.message and "RAY_AUTH_MODE=token" in e.hint, e
    _one_line(e)
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    e = lr.cluster_error("10.0.0.1:6379", ConnectionError("GCS rejected the request: InvalidAuthToken"))
    assert "refuses this client" in e.message and "not the cluster's" in e.hint and "RAY_AUTH_TOKEN" in e.hint, e
    e = lr.cluster_error("10.0.0.1:6379", ConnectionError("Could not find any running Ray instance.\nPlease specify ..."))
    assert "no Ray cluster answers" in e.message and "\n" not in e.message, e


def test_ray_check_is_silent_without_an_address_and_bounded_with_one():
    from ganpipe.train import cluster as lr

    lr.check_cluster("local")
    lr.check_cluster("auto")
    e, took = _timed(lr.check_cluster, f"127.0.0.1:{_closed_port()}", timeout=2)
    assert isinstance(e, ServiceError) and took < 5, (e, took)
    with http_server(hang=True) as url:  # something listens but is no GCS: a gRPC call times out
        e, took = _timed(lr.check_cluster, url.split("//")[1], timeout=2)
    assert isinstance(e, ServiceError) and took < 10 and "no Ray cluster answers" in e.message, (e, took)
