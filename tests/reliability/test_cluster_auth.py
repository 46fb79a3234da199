"""A real `ray start --head` with token authentication, and clients without, with and with a
wrong token: ganpipe's check refuses in seconds with the fix, and what a real `ray.init` raises
against it is reported as the same one line. Everything in child processes with their own HOME
(the token lives in ~/.ray/auth_token), so neither this session's Ray nor the user's token is
touched. The cluster's processes are found by its own temp dir and stopped by pid."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow

CHECK = """
import json, sys
from ganpipe.errors import ServiceError
from ganpipe.train.cluster import check_cluster, cluster_error
address = sys.argv[1]
out = {}
try:
    check_cluster(address, timeout=10)
    out["check"] = "ok"
except ServiceError as e:
    out["check"] = [e.message, e.hint]
if len(sys.argv) > 2:  # and a real ray.init, classified as ganpipe reports it
    import ray
    try:
        ray.init(address=address, log_to_driver=False)
        out["init"] = "ok"
        ray.shutdown()
    except Exception as e:
        err = cluster_error(address, e)
        out["init"] = [err.message, err.hint]
print(json.dumps(out))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(temp_dir: str) -> None:
    out = subprocess.run(["pgrep", "-u", str(os.getuid()), "-f", temp_dir], capture_output=True, text=True).stdout.split()
    pids = [int(p) for p in out]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        time.sleep(3)


@pytest.fixture
def token_cluster(tmp_path):
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    token = secrets.token_hex(32)
    (home / ".ray" / "auth_token").write_text(token)
    temp_dir = tempfile.mkdtemp(prefix="gp-ray-", dir="/tmp")  # short: Ray's socket paths have a length limit
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(HOME=str(home), PYTHONPATH=str(REPO))
    cmd = [str(BIN / "ray"), "start", "--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false",
           f"--ray-client-server-port={_free_port()}", f"--dashboard-agent-listen-port={_free_port()}",
           f"--temp-dir={temp_dir}", "--disable-usage-stats"]  # fmt: skip
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
        assert p.returncode == 0, p.stderr[-2000:]
        yield f"127.0.0.1:{port}", env, token
    finally:
        _stop(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _check(address: str, env: dict, *, init: bool = False, **extra: str) -> dict:
    import json

    args = [sys.executable, "-c", CHECK, address] + (["init"] if init else [])
    p = subprocess.run(args, env={**env, **extra}, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_a_cluster_with_token_auth_refuses_a_client_without_it_in_seconds(token_cluster):
    address, env, token = token_cluster

    t = time.monotonic()
    out = _check(address, env, init=True)  # RAY_AUTH_MODE unset here: Ray sends no token to an explicit address
    message, hint = out["check"]
    assert message.startswith(f"the Ray cluster at RAY_ADDRESS={address} refuses this client: InvalidAuthToken"), out
    assert "RAY_AUTH_MODE=token" in hint and "RAY_AUTH_MODE=disabled" in hint, out
    message, hint = out["init"]  # the real ray.init's ConnectionError <- AuthenticationError, as one line
    assert "refuses this client" in message and "InvalidAuthToken" in message and "RAY_AUTH_MODE=token" in hint, out
    assert time.monotonic() - t < 150

    wrong = _check(address, env, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    assert "refuses this client" in wrong["check"][0] and "not the cluster's" in wrong["check"][1], wrong

    assert _check(address, env, RAY_AUTH_MODE="token")["check"] == "ok"  # the token in ~/.ray/auth_token
    assert _check(address, env, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)["check"] == "ok"
