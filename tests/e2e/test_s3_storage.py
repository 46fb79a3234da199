"""Shared storage for real: a project whose nodes share nothing but an S3 bucket (moto's S3
server on 127.0.0.1). Checkpoints of a run whose worker is killed, a PBT sweep's Tune
checkpoints, the DVC remote and the MLflow model artifacts all land in the bucket; the
registered model loads in a fresh process that has no bucket credentials (the tracking server
serves the artifacts), and a fresh clone of the project (a teammate's machine) gets the raw and
prepared data back with `dvc pull`. Nothing but caches is written into the project folder."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, _stop_group, copy_project, free_port

pytestmark = pytest.mark.e2e

BUCKET = "ganpipe-team"
PREFIX = "shared"


def _mlflow_server(tmp_path: Path, env: dict[str, str], artifacts: str) -> tuple[subprocess.Popen, str]:
    """`mlflow server` on a free loopback port, its artifacts in the bucket (proxied: clients
    need the server, not the bucket's credentials). Not waited for: the driver prepares data
    while it starts, and waits for it before training."""
    port = free_port()
    log = open(tmp_path / "mlflow-server.log", "w")
    cmd = [
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}", "--artifacts-destination", artifacts,
    ]  # fmt: skip
    # Without its job runner (eight more processes that only serve MLflow's GenAI jobs).
    env = {**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, f"http://127.0.0.1:{port}"


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def _check_pbt_runs(client, parent_id: str, rows: list[dict]) -> None:
    """Synchronous PBT over two trials: at the step-20 perturbation the worse trial restarted
    from the better one's checkpoint (read back from the bucket) with explored params, the
    other from its own; every trial kept one MLflow run however often Tune restarted it."""
    parent = client.get_run(parent_id)
    children = client.search_runs([parent.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'")
    assert sorted(r.info.run_id for r in children) == sorted(r["run_id"] for r in rows)
    by_trial = {r.data.tags["ganpipe.trial_id"]: r for r in children}
    for run in children:
        assert run.info.status == "FINISHED" and run.data.tags["ganpipe.train_status"] == "FINISHED"
        assert "ganpipe.failure" not in run.data.tags  # a pause is not a failure
        # Evaluations at 20 and 30; the step-10 result had no metric (PBT skipped it).
        assert sorted({m.step for m in client.get_metric_history(run.info.run_id, "eval.swd")}) == [20, 30]
        assert run.data.metrics["start_step"] == 20  # restarted from a step-20 checkpoint
        assert "pbt/restore-step-20.json" in {a.path for a in client.list_artifacts(run.info.run_id, "pbt")}
    restored = {t: run.data.tags["ganpipe.restored_from"] for t, run in by_trial.items()}
    exploited = [t for t, v in restored.items() if not v.startswith(f"{t}@")]
    assert len(exploited) == 1, restored
    (source,) = set(by_trial) - set(exploited)
    assert restored[exploited[0]] == f"{source}@20", restored
    # The exploiting trial's lr was explored: scaled by 0.8 or 1.2, or resampled from the
    # mutation's range. Its params keep the lr it started with; its `trial.*` tag the new one.
    row = {r["trial_id"]: r for r in rows}
    new, src_lr = row[exploited[0]]["params"]["optim.lr_g"], row[source]["params"]["optim.lr_g"]
    assert float(by_trial[exploited[0]].data.tags["trial.optim.lr_g"]) == pytest.approx(new)
    assert float(by_trial[exploited[0]].data.params["optim.lr_g"]) != pytest.approx(new)
    assert any(new == pytest.approx(f * src_lr) for f in (0.8, 1.2)) or 1.0e-4 <= new <= 1.0e-3


def test_runs_sweeps_data_and_models_live_in_the_bucket(s3_server, project_template, tmp_path):
    from mlflow.tracking import MlflowClient

    s3_server.bucket(BUCKET)
    root = f"s3://{BUCKET}/{PREFIX}"
    proj = copy_project(project_template, tmp_path)
    (proj / "ganpipe.yaml").write_text(f"storage:\n  root: {root}\n")
    base_env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI") and not k.startswith("AWS_")}
    node_env = {**base_env, **s3_server.env}  # what every node of the cluster has
    server, url = _mlflow_server(tmp_path, node_env, f"{root}/mlartifacts")
    fresh = None
    try:
        t0 = time.monotonic()
        r = subprocess.run(
            [sys.executable, str(REPO / "tests/e2e/s3_driver.py"), str(proj)],
            cwd=tmp_path, env={**node_env, "MLFLOW_TRACKING_URI": url}, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr[-5000:] + "\nmlflow server: " + (tmp_path / "mlflow-server.log").read_text()[-2000:]
        out = json.loads([line for line in r.stdout.splitlines() if line.startswith("{")][-1])
        print(f"driver: {time.monotonic() - t0:.1f}s; stages: " + ", ".join(f"{k} {v:.1f}s" for k, v in out["seconds"].items()))

        assert out["project"]["runs"] == f"{root}/runs" and out["project"]["tune"] == f"{root}/tune"
        assert out["project"]["dvc remote"] == f"{root}/dvc"
        # The worker died at step 25; its replacement started from the step-20 checkpoint in the bucket.
        assert (out["train"]["step"], out["train"]["start_step"]) == (30, 20)
        keys = s3_server.keys(BUCKET, PREFIX + "/")
        metas = [k for k in keys if k.startswith(f"{PREFIX}/runs/") and k.endswith("/meta.json")]
        steps = {json.loads(s3_server.client().get_object(Bucket=BUCKET, Key=k)["Body"].read())["step"] for k in metas}
        assert {20, 30} <= steps, steps  # the one resumed from, and the last
        assert any(k.startswith(f"{PREFIX}/runs/") and k.endswith("/generator.pt") for k in keys)
        # The sweep: both trials finished; Tune's checkpoints (with the trial that wrote them) are in the bucket.
        rows = out["sweep"]["rows"]
        assert [(t["status"], t["steps"], t["error"]) for t in rows] == [("FINISHED", 30, None)] * 2, rows
        assert [k for k in keys if k.startswith(f"{PREFIX}/tune/s3-pbt/") and k.endswith("/tune_origin.json")]
        assert out["sweep"]["best"]["checkpoint"].startswith(f"{root}/tune/s3-pbt/"), out["sweep"]["best"]
        # DVC's content-addressed objects and MLflow's model artifacts.
        assert [k for k in keys if k.startswith(f"{PREFIX}/dvc/files/md5/")]
        assert [k for k in keys if k.startswith(f"{PREFIX}/mlartifacts/") and k.endswith("generator.pt")]

        assert all(r["metric"] > 0 and r["run_id"] for r in rows)
        assert out["sweep"]["best"] == min(rows, key=lambda r: r["metric"])
        assert out["sweep"]["best_lr_g"] == out["sweep"]["best"]["params"]["optim.lr_g"]
        _check_pbt_runs(MlflowClient(url), out["sweep"]["parent_run_id"], rows)

        # A fresh process with only the tracking server's address (no bucket credentials) loads the
        # registered model; it runs while a teammate clones the project below.
        reg = out["registered"]
        load = (
            "import sys, json, mlflow.pyfunc, pandas as pd;"
            "x = mlflow.pyfunc.load_model(sys.argv[1]).predict(pd.DataFrame({'n': [3], 'seed': [5]}));"
            "print(json.dumps({'shape': list(x.shape), 'sum': float(x.astype('float64').sum()), 'abs_sum': float(abs(x.astype('float64')).sum())}))"
        )
        fresh = subprocess.Popen(
            [sys.executable, "-c", load, f"models:/{reg['name']}@{reg['alias']}"],
            cwd=tmp_path, env={**base_env, "MLFLOW_TRACKING_URI": url}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

        # Nothing shared was written into the project folder: no checkpoints, sweeps, store or artifacts.
        state = proj / ".ganpipe"
        assert not (state / "runs").exists() and not (state / "tune").exists()
        assert not (proj / "mlflow.db").exists() and not (proj / "mlartifacts").exists()

        # A teammate clones the project: the committed DVC config names the bucket, `dvc pull` restores the data.
        git = ["git", "-c", "user.name=ganpipe", "-c", "user.email=ganpipe@example.com"]
        for cmd in (["add", "-A"], ["commit", "-qm", "prepared digits"]):
            subprocess.run([*git, *cmd], cwd=proj, check=True, capture_output=True)
        clone = tmp_path / "teammate"
        subprocess.run(["git", "clone", "-q", str(proj), str(clone)], check=True, capture_output=True)
        assert not (clone / "prepared" / "digits").exists() and not (clone / "data" / "digits").exists()
        pull = subprocess.run([sys.executable, "-m", "dvc", "pull"], cwd=clone, env={**node_env, "DVC_NO_ANALYTICS": "1"}, capture_output=True, text=True, timeout=300)
        assert pull.returncode == 0, pull.stderr[-3000:]
        for folder in ("prepared/digits", "data/digits"):
            assert _digests(clone / folder) == _digests(proj / folder) and _digests(clone / folder), folder

        stdout, stderr = fresh.communicate(timeout=300)
        assert fresh.returncode == 0, stderr[-3000:]
        got, want = json.loads(stdout.strip().splitlines()[-1]), out["sample"]
        assert got["shape"] == want["shape"] and got["shape"][0] == 3
        assert got["sum"] == pytest.approx(want["sum"], rel=1e-4, abs=1e-3) and got["abs_sum"] == pytest.approx(want["abs_sum"], rel=1e-4)
    finally:
        if fresh is not None and fresh.poll() is None:
            fresh.kill()
            fresh.wait()
        _stop_group(server)
