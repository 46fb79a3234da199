"""The whole pipeline with the real Ray, MLflow, DVC and Prefect, on a tiny config: the
session's shared run (tests/conftest.py `pipeline_run`), whose first process was killed after
training, then a cached re-run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from conftest import PIPELINE_CONFIG, PIPELINE_TINY, REPO

pytestmark = pytest.mark.e2e


def test_killed_pipeline_resumes_after_the_finished_training(pipeline_run):
    """The CLI process was killed between training and evaluation: the re-run reused the data
    and the finished training run, then evaluated and registered it."""
    from mlflow.tracking import MlflowClient

    s = pipeline_run.summary
    assert s["run_id"] == pipeline_run.killed_run_id
    assert s["reused"] == {"train": True, "evaluate": False} and s["data"]["reran"] is False
    c = MlflowClient(f"sqlite:///{pipeline_run.project.root / 'mlflow.db'}")
    assert len(c.search_runs([c.get_run(s["run_id"]).info.experiment_id])) == 1
    assert s["registered"]["version"] == "1"
    t = s["timing"]
    assert t["train_loop_s"] == 0 < t["train_s"] and 0 < t["evaluate_compute_s"] < t["evaluate_s"]


def test_pipeline_end_to_end(pipeline_run, pipeline_project, tmp_path):
    from mlflow.tracking import MlflowClient

    from ganpipe.cli import app

    project, s = pipeline_project, pipeline_run.summary

    # Data stage: DVC tracked the raw folder, ran the stage, and pushed to the local remote.
    data_md5 = yaml.safe_load((project.root / "data.dvc").read_text())["outs"][0]["md5"]
    lock = yaml.safe_load((project.root / "dvc.lock").read_text())
    assert "prepare@digits" in lock["stages"]
    manifest = json.loads((project.root / "prepared" / "digits" / "manifest.json").read_text())
    assert s["data"]["fingerprint"] == manifest["fingerprint"]
    status = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=project.root, capture_output=True, text=True)
    assert json.loads(status.stdout or "{}") == {}, status.stdout  # workspace matches dvc.lock
    status = subprocess.run([sys.executable, "-m", "dvc", "status", "--cloud", "--json"], cwd=project.root, capture_output=True, text=True)
    assert json.loads(status.stdout or "{}") == {}, status.stdout  # the remote holds everything
    assert len([p for p in pipeline_run.remote.rglob("*") if p.is_file()]) > 10

    # Training + evaluation: one MLflow run with metrics, artifacts and lineage.
    c = MlflowClient(f"sqlite:///{project.root / 'mlflow.db'}")
    run = c.get_run(s["run_id"])
    assert [m.step for m in c.get_metric_history(run.info.run_id, "loss_d")] == [10, 20, 30, 40]
    assert run.data.metrics["eval.fcd"] > run.data.metrics["eval.fcd_floor"] > 0
    assert run.data.metrics["time.train_s"] > 0
    tags = run.data.tags
    assert tags["data.dvc_md5"] == data_md5
    assert tags["data.fingerprint"] == manifest["fingerprint"]
    assert tags["git.commit"] and tags["ganpipe.version"]
    assert tags["family"] == "dcgan" and tags["loss"] == "nonsaturating"
    assert tags["ganpipe.eval_placement"] == "in-process (cpu)"  # no GPU in this cluster: evaluated here
    assert run.data.params["train.steps"] == "40"
    arts = {a.path for a in c.list_artifacts(run.info.run_id)}
    assert {"config", "samples", "eval"} <= arts
    assert {a.path for a in c.list_artifacts(run.info.run_id, "samples")} == {"samples/step_0000020.png", "samples/step_0000040.png"}
    resolved = yaml.safe_load(open(c.download_artifacts(run.info.run_id, "config/resolved.yaml", str(tmp_path))))
    assert resolved["train"]["steps"] == 40
    assert run.info.status == "FINISHED"

    # Registry: first version is champion; the model loads back and generates.
    reg = s["registered"]
    assert (reg["name"], reg["version"], reg["alias"]) == ("ganpipe-dcgan-digits", "1", "champion")
    mv = c.get_model_version_by_alias("ganpipe-dcgan-digits", "champion")
    assert mv.tags["family"] == "dcgan" and mv.tags["data_version"] == data_md5 and "metric.fcd" in mv.tags
    out = tmp_path / "grid.png"
    r = CliRunner().invoke(app, ["-C", str(project.root), "generate", "models:/ganpipe-dcgan-digits@champion", "-n", "16", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert Image.open(out).size[0] >= 4 * 16
    r = CliRunner().invoke(app, ["-C", str(project.root), "registry", "list"])
    assert r.exit_code == 0 and "ganpipe-dcgan-digits" in r.output and "champion" in r.output


def test_cached_rerun_skips_every_stage(pipeline_run, pipeline_project, monkeypatch):
    from mlflow.tracking import MlflowClient

    from flows.pipeline import pipeline_flow
    from ganpipe.data import dvc as dvcmod

    project, s = pipeline_project, pipeline_run.summary
    ran = []
    real_dvc = dvcmod.dvc

    def recording_dvc(args, *a, **kw):
        ran.append(args)
        return real_dvc(args, *a, **kw)

    monkeypatch.setattr(dvcmod, "dvc", recording_dvc)
    remote = {p: p.stat().st_mtime_ns for p in pipeline_run.remote.rglob("*")}
    versions = len(MlflowClient(f"sqlite:///{project.root / 'mlflow.db'}").search_model_versions("name = 'ganpipe-dcgan-digits'"))

    # Same config again: every stage is skipped, nothing new is registered.
    s2 = pipeline_flow(config_path=str(PIPELINE_CONFIG), overrides=PIPELINE_TINY, project=str(project.root))
    assert s2["run_id"] == s["run_id"] and s2["reused"] == {"train": True, "evaluate": True}
    assert s2["data"]["reran"] is False
    assert ran == []  # no `dvc add`, `dvc repro` or `dvc push`: nothing they read has changed
    assert {p: p.stat().st_mtime_ns for p in pipeline_run.remote.rglob("*")} == remote
    c = MlflowClient(f"sqlite:///{project.root / 'mlflow.db'}")
    assert len(c.search_model_versions("name = 'ganpipe-dcgan-digits'")) == versions == 1

    # Stage timings: the cached run only looked things up.
    t2 = s2["timing"]
    assert t2["train_loop_s"] == 0 and t2["evaluate_compute_s"] == 0 and t2["prepare_s"] > 0


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
