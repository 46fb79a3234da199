"""Scheduled runs: a real Prefect server on 127.0.0.1, `ganpipe pipeline serve` on an interval
schedule; a scheduled run completes, and a failing one is visible as failed (with the stage and
the error) while the next schedule still runs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from conftest import REPO

pytestmark = pytest.mark.e2e

TINY = ["train.steps=20", "train.log_every=10", "train.checkpoint_every=20", "train.sample_every=20", "eval.num_samples=100", "eval.classifier_steps=100", "model.params.g_width=8", "model.params.d_width=8"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def prefect_api(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "3",
        "PREFECT_UI_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(1)
    else:
        proc.kill()
        pytest.fail("Prefect server did not start: " + (tmp_path / "server.log").read_text()[-2000:])
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def serve(project, api, extra, log_path):
    env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
    cmd = [sys.executable, "-m", "ganpipe", "pipeline", "serve", str(REPO / "configs/dcgan-digits.yaml"), *extra]
    return subprocess.Popen(cmd, cwd=project.root, env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT, start_new_session=True)


def flow_runs(api):
    r = httpx.post(f"{api}/flow_runs/filter", json={"limit": 50, "sort": "EXPECTED_START_TIME_ASC"}, timeout=10)
    r.raise_for_status()
    return r.json()


def deployment_names(api):
    r = httpx.post(f"{api}/deployments/filter", json={"limit": 50}, timeout=10)
    return {d["id"]: d["name"] for d in r.json()}


def test_scheduled_runs_complete_and_failures_are_visible(project, prefect_api, tmp_path):
    ok = serve(project, prefect_api, ["--interval", "30", "--name", "nightly", *sum((["--set", o] for o in TINY), [])], tmp_path / "ok.log")
    bad_set = TINY + ["data.source=imagefolder:/nonexistent/images", "name=broken"]
    bad = serve(project, prefect_api, ["--interval", "8", "--name", "broken", *sum((["--set", o] for o in bad_set), [])], tmp_path / "bad.log")
    try:
        deadline = time.time() + 900
        while time.time() < deadline:
            names = deployment_names(prefect_api)
            runs = flow_runs(prefect_api)
            by = {}
            for r in runs:
                by.setdefault(names.get(r["deployment_id"]), []).append(r)
            done = [r for r in by.get("nightly", []) if r["state_type"] == "COMPLETED"]
            failed = [r for r in by.get("broken", []) if r["state_type"] == "FAILED"]
            if done and len(failed) >= 2:
                break
            if any(r["state_type"] in ("FAILED", "CRASHED") for r in by.get("nightly", [])):
                pytest.fail("scheduled pipeline run failed: " + (tmp_path / "ok.log").read_text()[-3000:])
            time.sleep(3)
        else:
            pytest.fail(f"timed out: {[(names.get(r['deployment_id']), r['state_type']) for r in runs]}\n" + (tmp_path / "ok.log").read_text()[-2000:] + (tmp_path / "bad.log").read_text()[-2000:])
        # the failed run names the failing stage and the error
        tr = httpx.post(f"{prefect_api}/task_runs/filter", json={"flow_runs": {"id": {"any_": [failed[0]["id"]]}}}, timeout=10).json()
        failed_tasks = [t for t in tr if t["state_type"] == "FAILED"]
        assert [t["task_key"].split("-")[0] for t in failed_tasks][:1] == ["prepare"] or failed_tasks[0]["name"].startswith("prepare")
        assert "/nonexistent/images" in failed[0]["state"]["message"]
        assert (project.root / "mlflow.db").exists()
    finally:
        for p in (ok, bad):
            os.killpg(p.pid, signal.SIGINT)
        for p in (ok, bad):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
