"""Where things live: `Project.load` precedence, shared storage, and what moved."""

from __future__ import annotations

from pathlib import Path

import pytest

from ganpipe.config import StorageConfig, load_config
from ganpipe.errors import ConfigError
from ganpipe.project import Project

REPO = Path(__file__).resolve().parents[2]


def test_defaults_live_in_the_project_folder(tmp_path):
    p = Project.load(tmp_path, env={"XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert p.root == tmp_path.resolve()
    assert p.tracking_uri == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert p.artifact_location == (tmp_path.resolve() / "mlartifacts").as_uri()
    assert p.runs_storage == str(tmp_path.resolve() / ".ganpipe" / "runs")
    assert p.tune_storage == str(tmp_path.resolve() / ".ganpipe" / "tune")
    assert p.dvc_remote == str(tmp_path / "xdg" / "ganpipe" / "dvc-remote") and not p.dvc_remote_set
    assert p.cache == p.state / "cache" and p.spool == p.state / "spool"
    assert p.run_dir("r1") == tmp_path.resolve() / ".ganpipe" / "runs" / "r1"


def test_storage_root_puts_every_shared_thing_under_one_prefix(tmp_path):
    p = Project.load(tmp_path, StorageConfig(root="s3://bucket/team/"), env={})
    assert (p.runs_storage, p.tune_storage, p.dvc_remote) == ("s3://bucket/team/runs", "s3://bucket/team/tune", "s3://bucket/team/dvc")
    assert p.artifact_location == "s3://bucket/team/mlartifacts"  # the local SQLite store's artifacts are shared too
    assert p.dvc_remote_set and p.run_dir("r1") is None  # remote checkpoints: no local run folder
    assert p.cache == tmp_path.resolve() / ".ganpipe" / "cache"  # caches stay local


def test_precedence_env_then_config_then_settings_file_then_defaults(tmp_path):
    (tmp_path / "ganpipe.yaml").write_text("storage:\n  root: s3://from-file\n  runs: /shared/runs\n  tune: tune-here\n")
    env = {"MLFLOW_TRACKING_URI": "http://user:pw@mlflow:5000"}
    p = Project.load(tmp_path, StorageConfig(runs="s3://from-config/runs", tracking_uri="sqlite:///ignored.db"), env=env)
    assert p.tracking_uri == "http://user:pw@mlflow:5000"  # the environment wins
    assert p.artifact_location is None  # a tracking server decides its artifacts unless told
    assert p.runs_storage == "s3://from-config/runs"  # the config beats the settings file
    assert p.tune_storage == str(tmp_path.resolve() / "tune-here")  # relative paths are under the project
    assert p.dvc_remote == "s3://from-file/dvc"  # from the settings file's root
    assert "pw" not in p.describe()["tracking"] and "***" in p.describe()["tracking"]


def test_root_from_the_environment_when_none_is_given(tmp_path):
    assert Project.load(None, env={"GANPIPE_PROJECT": str(tmp_path)}).root == tmp_path.resolve()


def test_the_project_travels_to_workers_as_plain_data(tmp_path):
    import json

    p = Project.load(tmp_path, StorageConfig(root="s3://b/g"), env={})
    d = json.loads(json.dumps(p.to_dict()))
    assert Project.from_dict(d) == p


def test_settings_file_holds_only_storage(tmp_path):
    (tmp_path / "ganpipe.yaml").write_text("train:\n  steps: 3\n")
    with pytest.raises(ConfigError, match="only a `storage:` section"):
        Project.load(tmp_path, env={})
    (tmp_path / "ganpipe.yaml").write_text("storage:\n  rooot: s3://x\n")
    with pytest.raises(ConfigError, match="invalid storage section") as e:
        Project.load(tmp_path, env={})
    assert "root" in (e.value.hint or "")


def test_train_storage_moved_and_storage_is_not_part_of_the_run_name():
    with pytest.raises(ConfigError, match="'train.storage' moved to 'storage.runs'"):
        load_config(REPO / "configs/dcgan-digits.yaml", ["train.storage=s3://x"])
    a = load_config(REPO / "configs/dcgan-digits.yaml")
    b = load_config(REPO / "configs/dcgan-digits.yaml", ["storage.root=s3://bucket/x"])
    assert a.run_name == b.run_name  # moving storage does not retrain


def test_cli_dry_run_shows_where_things_go(tmp_path):
    from typer.testing import CliRunner

    from ganpipe.cli import app

    r = CliRunner().invoke(app, ["-C", str(tmp_path), "train", str(REPO / "configs/dcgan-digits.yaml"), "--dry-run", "--set", "storage.root=s3://bucket/x"])
    assert r.exit_code == 0, r.output
    assert f"project: {tmp_path.resolve()}" in r.output and "runs: s3://bucket/x/runs" in r.output
    assert not (tmp_path / "mlflow.db").exists()  # a dry run creates nothing


def test_using_a_store_leaves_the_process_environment_as_it_was(tmp_path, monkeypatch):
    """mlflow's set_tracking_uri also exports MLFLOW_TRACKING_URI; a later Project.load (which
    gives that variable precedence) must not see a store some earlier call activated."""
    import os

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with Project.load(tmp_path, env={}).store.active():
        assert os.environ["MLFLOW_TRACKING_URI"].endswith("mlflow.db")
    assert "MLFLOW_TRACKING_URI" not in os.environ
    other = tmp_path / "other"
    assert Project.load(other).tracking_uri == f"sqlite:///{other.resolve() / 'mlflow.db'}"
