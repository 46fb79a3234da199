"""The promotion gate, against a real (SQLite) MLflow registry."""

import pytest


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)  # the store's artifacts go to ./mlruns
    from ganpipe.tracking.runs import client, ensure_experiment

    exp = ensure_experiment("gate")
    c = client()

    def new_run():
        rid = c.create_run(exp).info.run_id
        c.log_text(rid, "x", "model/MLmodel")
        return rid

    return new_run


def test_champion_moves_only_on_improvement(store):
    from ganpipe.tracking.model_registry import champion, register

    def reg(value, mode="min"):
        rid = store()
        return register("m", f"runs:/{rid}/model", rid, {"fcd": value}, "fcd", mode, {"family": "dcgan"})

    r1 = reg(50.0)
    assert (r1.version, r1.alias) == ("1", "champion")
    r2 = reg(60.0)  # worse
    assert r2.alias == "challenger" and str(champion("m").version) == "1"
    r3 = reg(40.0)  # better
    assert r3.alias == "champion" and r3.previous_champion == "1" and str(champion("m").version) == "3"
    from ganpipe.tracking.runs import client

    hist = client().get_model_version("m", "1").tags["alias_history"]
    assert "-> champion" in hist and "lost champion to v3" in hist


def test_gate_metric_must_be_computed(store):
    from ganpipe.errors import GanpipeError
    from ganpipe.tracking.model_registry import register

    rid = store()
    with pytest.raises(GanpipeError, match="gate metric"):
        register("m", f"runs:/{rid}/model", rid, {"other": 1.0}, "fcd", "min", {})


def test_credentials_are_masked():
    from ganpipe.tracking.store import mask

    assert mask("postgresql://bob:s3cret@db:5432/mlflow") == "postgresql://bob:***@db:5432/mlflow"
    assert mask("http://host:5000") == "http://host:5000"
