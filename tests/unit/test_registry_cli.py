"""`ganpipe registry show|compare|promote|rollback` against a real SQLite MLflow registry."""

from __future__ import annotations

import getpass
import itertools
from pathlib import Path

import pytest
from typer.testing import CliRunner

_names = itertools.count()


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    """One store for the module (creating a SQLite store runs every migration); one model per test."""
    return tmp_path_factory.mktemp("registry")


@pytest.fixture
def model(db, monkeypatch):
    """A fresh model name and a function registering a version of it with a given FCD."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db / 'mlflow.db'}")
    monkeypatch.chdir(db)  # the store's artifacts go to ./mlruns
    from ganpipe.cli.common import console
    from ganpipe.tracking.model_registry import register
    from ganpipe.tracking.runs import client, ensure_experiment

    monkeypatch.setattr(console, "width", 200)  # keep table rows on one line for the asserts
    name = f"m{next(_names)}"
    exp = ensure_experiment("registry-cli")

    def reg(fcd: float, precision: float = 0.5):
        rid = client().create_run(exp).info.run_id
        client().log_text(rid, "x", "model/MLmodel")
        metrics = {"fcd": fcd, "fcd_floor": 2.0, "precision": precision}
        return register(name, f"runs:/{rid}/model", rid, metrics, "fcd", "min", {"family": "dcgan", "dataset": "digits"})

    return name, reg


def cli(*args: str):
    from ganpipe.cli import app

    return CliRunner().invoke(app, list(args))


def champion_of(name: str) -> str:
    from ganpipe.tracking.model_registry import champion

    return str(champion(name).version)


def history(name: str, version: str) -> str:
    from ganpipe.tracking.runs import client

    return client().get_model_version(name, version).tags["alias_history"]


def test_promote_follows_the_gate_unless_forced_with_a_reason(model):
    name, reg = model
    reg(10.0)
    reg(20.0)  # worse: challenger
    assert champion_of(name) == "1"

    r = cli("registry", "promote", name, "2")
    assert r.exit_code == 2 and "gate refused v2" in r.output and "fcd=20 does not beat v1 (10)" in r.output
    assert "--force" in r.output and champion_of(name) == "1"

    r = cli("registry", "promote", name, "2", "--force")
    assert r.exit_code == 2 and "needs a reason" in r.output and champion_of(name) == "1"

    r = cli("registry", "promote", name, "2", "--force", "--reason", "hotfix for a data bug")
    assert r.exit_code == 0, r.output
    assert champion_of(name) == "2"
    line = history(name, "2").splitlines()[-1]
    assert f" {getpass.getuser()}: -> champion (promote:" in line and ", forced; reason" in line and "reason: hotfix for a data bug" in line
    assert "lost champion to v2 (promote:" in history(name, "1")

    r = cli("registry", "promote", name, "2")
    assert r.exit_code == 2 and "already the champion" in r.output


def test_promote_a_better_version_without_force(model):
    name, reg = model
    reg(10.0)
    from ganpipe.tracking.runs import client

    client().set_registered_model_alias(name, "champion", "1")
    rid = reg(20.0)  # challenger
    assert rid.alias == "challenger"
    reg(30.0)
    # Pretend v3 was measured better after a re-evaluation: the gate reads the version's tag.
    client().set_model_version_tag(name, "3", "metric.fcd", "5")
    r = cli("registry", "promote", name, "3", "--reason", "re-evaluated")
    assert r.exit_code == 0, r.output
    assert champion_of(name) == "3" and "fcd=5 beats v1 (10)" in history(name, "3")


def test_rollback_walks_back_through_the_alias_history(model):
    name, reg = model
    reg(30.0)
    reg(20.0)  # beats v1
    reg(10.0)  # beats v2
    assert champion_of(name) == "3"

    r = cli("registry", "rollback", name, "--reason", "v3 samples look broken")
    assert r.exit_code == 0, r.output
    assert champion_of(name) == "2"
    assert "rollback from v3 to previous champion v2; reason: v3 samples look broken" in history(name, "2")
    assert "lost champion to v2 (rollback from v3" in history(name, "3")

    assert cli("registry", "rollback", name).exit_code == 0
    assert champion_of(name) == "1"  # further back, not forth to v3
    r = cli("registry", "rollback", name)
    assert r.exit_code == 2 and "no earlier version" in r.output and champion_of(name) == "1"


def test_rollback_without_history_takes_the_best_earlier_version(model):
    name, reg = model
    reg(30.0)
    reg(40.0)
    reg(35.0)
    from ganpipe.tracking.runs import client

    client().set_registered_model_alias(name, "champion", "3")  # moved by hand, no history
    assert cli("registry", "rollback", name).exit_code == 0
    assert champion_of(name) == "1"
    assert "best earlier version on the gate metric v1" in history(name, "1")


def test_compare_names_the_better_version_per_metric(model):
    name, reg = model
    reg(10.0, precision=0.4)
    reg(20.0, precision=0.9)
    r = cli("registry", "compare", name, "1", "2")
    assert r.exit_code == 0, r.output
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:]] for line in r.output.splitlines() if line.count("│") >= 5}
    assert rows["fcd (gate)"][:4] == ["10", "20", "v1", "lower"]
    assert rows["precision"][:4] == ["0.4", "0.9", "v2", "higher"]
    assert rows["fcd_floor"][2] == ""  # a floor is not better or worse
    assert "gate: fcd (lower is better)" in r.output

    from ganpipe.tracking.model_registry import compare

    c = compare(name, "2", "1")
    assert {x["metric"]: x["better"] for x in c["rows"]} == {"fcd": "1", "fcd_floor": "", "precision": "2"}


def test_show_lists_versions_metrics_with_floors_history_and_card(model):
    name, reg = model
    reg(10.0)
    reg(20.0)
    from ganpipe.tracking.cards import card_for_version

    card = card_for_version(name, "1")
    assert card.startswith(f"# Model card: {name} v1") and "| fcd | 10 | 2 |" in card and "champion" in card

    r = cli("registry", "show", name)
    assert r.exit_code == 0, r.output
    out = r.output
    assert f"{name}: versions" in out and "champion" in out and "challenger" in out
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines() if line.count("│") == 5]
    assert [c[1:] for c in cells if c[1] == "fcd"] == [["fcd", "10", "2"], ["fcd", "20", "2"]]  # floor beside value
    assert "fcd_floor" not in out  # folded into the fcd row
    assert "-> champion (gate: fcd=10 first version)" in out
    assert "-> challenger (gate: fcd=20 does not beat champion v1 (10))" in out
    assert "model card" in out and f"Model card: {name} v1" in out

    r = cli("registry", "show", "no-such-model")
    assert r.exit_code == 2 and "no registered model 'no-such-model'" in r.output
