"""Scheduled runs: the session's Prefect server on 127.0.0.1, `ganpipe pipeline serve` on an
interval schedule; a scheduled run completes, and a failing one is visible as failed (with the
stage and the error) while the next schedule still runs.

The schedules serve the session's shared pipeline run (tests/conftest.py `pipeline_run`) with
its config, so a scheduled run finds every stage done: what is tested is the scheduling, not
the stages again (tests/e2e/test_pipeline.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from conftest import PIPELINE_CONFIG, PIPELINE_TINY, set_args

pytestmark = pytest.mark.e2e


def serve(project, api, extra, log_path):
    env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
    cmd = [sys.executable, "-m", "ganpipe", "pipeline", "serve", str(PIPELINE_CONFIG), *extra]
    return subprocess.Popen(cmd, cwd=project.root, env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT, start_new_session=True)


def flow_runs(api):
    r = httpx.post(f"{api}/flow_runs/filter", json={"limit": 50, "sort": "EXPECTED_START_TIME_ASC"}, timeout=10)
    r.raise_for_status()
    return r.json()


def deployment_names(api):
    r = httpx.post(f"{api}/deployments/filter", json={"limit": 50}, timeout=10)
    return {d["id"]: d["name"] for d in r.json()}


def task_runs(api, flow_run):
    r = httpx.post(f"{api}/task_runs/filter", json={"flow_runs": {"id": {"any_": [flow_run["id"]]}}}, timeout=10)
    r.raise_for_status()
    return r.json()


def test_scheduled_runs_complete_and_failures_are_visible(pipeline_run, pipeline_project, prefect_api, tmp_path):
    project = pipeline_project
    ok = serve(project, prefect_api, ["--interval", "10", "--name", "nightly", *set_args(PIPELINE_TINY)], tmp_path / "ok.log")
    bad_set = PIPELINE_TINY + ["data.source=imagefolder:/nonexistent/images", "name=broken"]
    bad = serve(project, prefect_api, ["--interval", "8", "--name", "broken", *set_args(bad_set)], tmp_path / "bad.log")
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
        # the completed run ran every stage; each found its work done, so nothing new is registered
        stages = {"prepare", "train", "evaluate", "register"}
        deadline = time.time() + 60  # task run states reach the server as events, a moment after the flow run's
        while not stages <= (completed := {t["name"].split("-")[0] for t in task_runs(prefect_api, done[0]) if t["state_type"] == "COMPLETED"}):
            assert time.time() < deadline, completed
            time.sleep(1)
        from mlflow.tracking import MlflowClient

        assert len(MlflowClient(f"sqlite:///{project.root / 'mlflow.db'}").search_model_versions("name = 'ganpipe-dcgan-digits'")) == 1
        # the failed run names the failing stage and the error
        failed_tasks = [t for t in task_runs(prefect_api, failed[0]) if t["state_type"] == "FAILED"]
        assert [t["task_key"].split("-")[0] for t in failed_tasks][:1] == ["prepare"] or failed_tasks[0]["name"].startswith("prepare")
        assert "/nonexistent/images" in failed[0]["state"]["message"]
    finally:
        for p in (ok, bad):
            os.killpg(p.pid, signal.SIGINT)
        for p in (ok, bad):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        for dep_id in deployment_names(prefect_api):  # and their runs scheduled ahead: the session's server keeps running
            httpx.delete(f"{prefect_api}/deployments/{dep_id}", timeout=10)
