"""The whole pipeline with the real Ray, MLflow, DVC and Prefect, on a tiny config."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from conftest import REPO

pytestmark = pytest.mark.e2e

TINY = [
    "train.steps=40",
    "train.log_every=10",
    "train.checkpoint_every=20",
    "train.sample_every=20",
    "eval.num_samples=200",
    "eval.classifier_steps=150",
    "model.params.g_width=8",
    "model.params.d_width=8",
]


def test_pipeline_end_to_end_then_cached_rerun(project, ray_session, prefect_server):
    from mlflow.tracking import MlflowClient

    from flows.pipeline import pipeline_flow
    from ganpipe.cli import app

    cfg_path = str(REPO / "configs" / "dcgan-digits.yaml")
    s = pipeline_flow(config_path=cfg_path, overrides=TINY, project=str(project.root))

    # Data stage: DVC tracked the raw folder, ran the stage, and pushed to the local remote.
    data_md5 = yaml.safe_load((project.root / "data.dvc").read_text())["outs"][0]["md5"]
    lock = yaml.safe_load((project.root / "dvc.lock").read_text())
    assert "prepare@digits" in lock["stages"]
    manifest = json.loads((project.root / "prepared" / "digits" / "manifest.json").read_text())
    assert s["data"]["fingerprint"] == manifest["fingerprint"]
    status = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=project.root, capture_output=True, text=True)
    assert json.loads(status.stdout or "{}") == {}, status.stdout  # workspace matches dvc.lock
    remote_files = [p for p in (project.root.parent / "cache" / "ganpipe" / "dvc-remote").rglob("*") if p.is_file()]
    assert len(remote_files) > 10

    # Training + evaluation: one MLflow run with metrics, artifacts and lineage.
    c = MlflowClient(f"sqlite:///{project.root / 'mlflow.db'}")
    run = c.get_run(s["run_id"])
    assert [m.step for m in c.get_metric_history(run.info.run_id, "loss_d")] == [10, 20, 30, 40]
    assert run.data.metrics["eval.fcd"] > run.data.metrics["eval.fcd_floor"] > 0
    tags = run.data.tags
    assert tags["data.dvc_md5"] == data_md5
    assert tags["data.fingerprint"] == manifest["fingerprint"]
    assert tags["git.commit"] and tags["ganpipe.version"]
    assert tags["family"] == "dcgan" and tags["loss"] == "nonsaturating"
    assert run.data.params["train.steps"] == "40"
    arts = {a.path for a in c.list_artifacts(run.info.run_id)}
    assert {"config", "samples", "eval"} <= arts
    assert {a.path for a in c.list_artifacts(run.info.run_id, "samples")} == {"samples/step_0000020.png", "samples/step_0000040.png"}
    resolved = yaml.safe_load(open(c.download_artifacts(run.info.run_id, "config/resolved.yaml")))
    assert resolved["train"]["steps"] == 40
    assert run.info.status == "FINISHED"

    # Registry: first version is champion; the model loads back and generates.
    reg = s["registered"]
    assert (reg["name"], reg["version"], reg["alias"]) == ("ganpipe-dcgan-digits", "1", "champion")
    mv = c.get_model_version_by_alias("ganpipe-dcgan-digits", "champion")
    assert mv.tags["family"] == "dcgan" and mv.tags["data_version"] == data_md5 and "metric.fcd" in mv.tags
    out = project.root / "grid.png"
    r = CliRunner().invoke(app, ["-C", str(project.root), "generate", "models:/ganpipe-dcgan-digits@champion", "-n", "16", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert Image.open(out).size[0] >= 4 * 16
    r = CliRunner().invoke(app, ["-C", str(project.root), "registry", "list"])
    assert r.exit_code == 0 and "ganpipe-dcgan-digits" in r.output and "champion" in r.output

    # Same config again: every stage is skipped, nothing new is registered.
    s2 = pipeline_flow(config_path=cfg_path, overrides=TINY, project=str(project.root))
    assert s2["run_id"] == s["run_id"] and s2["reused"] == {"train": True, "evaluate": True}
    assert s2["data"]["reran"] is False
    assert len(c.search_model_versions("name = 'ganpipe-dcgan-digits'")) == 1

    # Stage timings: the first run trained and evaluated; the cached run only looked things up.
    t1, t2 = s["timing"], s2["timing"]
    assert 0 < t1["train_loop_s"] < t1["train_s"] and 0 < t1["evaluate_compute_s"] < t1["evaluate_s"]
    assert t1["train_loop_s"] == pytest.approx(run.data.metrics["time.train_s"])
    assert t2["train_loop_s"] == 0 and t2["evaluate_compute_s"] == 0 and t2["prepare_s"] > 0
    assert project.path("dvc-pushed").is_file()  # the cached run skipped `dvc push`


def test_cli_rejects_bad_config_before_any_work(project):
    r = subprocess.run(
        [sys.executable, "-m", "ganpipe", "train", str(REPO / "configs/dcgan-digits.yaml"), "--set", "train.stepz=3"],
        capture_output=True,
        text=True,
        cwd=project.root,
    )
    assert r.returncode == 2
    assert "unknown key 'train.stepz'" in r.stderr and "fix:" in r.stderr
    assert not (project.root / "mlflow.db").exists() and not (project.root / "prepared").exists()
