"""The model card shows its figures in the MLflow UI and says how to ask a served model for
samples: against a real SQLite MLflow store, and the MLflow server's own `get-artifact` route."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32  # the header is all the checks below look at


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from ganpipe.project import Project

    return Project.load(tmp_path_factory.mktemp("cards"), env={})


@pytest.fixture(scope="module")
def registered(project, tmp_path_factory):
    """A run with figures under eval/ and plots/, registered as version 1 of `card-model`."""
    from ganpipe.tracking.model_registry import register
    from ganpipe.tracking.runs import ensure_experiment

    store = project.store
    c = store.client()
    rid = c.create_run(ensure_experiment(store, "cards")).info.run_id
    c.log_param(rid, "model.family", "dcgan")
    figs = tmp_path_factory.mktemp("figs")
    for folder, name in (("eval", "samples"), ("eval", "nearest_neighbours"), ("plots", "losses")):
        (figs / f"{name}.png").write_bytes(PNG)
        c.log_artifact(rid, str(figs / f"{name}.png"), folder)
    c.log_text(rid, "x", "model/MLmodel")
    register(store, "card-model", f"runs:/{rid}/model", rid, {"fcd": 3.0, "fcd_floor": 1.0}, "fcd", "min", {"family": "dcgan", "dataset": "digits"})
    return rid


def _images(markdown: str) -> list[tuple[str, str]]:
    return re.findall(r"!\[([^\]]*)\]\(([^)\s]+)\)", markdown)


def test_card_embeds_figures_that_are_artifacts_of_the_run(project, registered):
    from ganpipe.tracking.cards import CARD_PATH, card_for_version

    store, rid = project.store, registered
    card = card_for_version(store, "card-model", "1")
    c = store.client()
    description = c.get_model_version("card-model", "1").description
    logged = (c.download_artifacts(rid, CARD_PATH, str(project.root / "dl")))
    for text in (card, description, open(logged).read()):
        images = _images(text)
        assert {alt for alt, _ in images} == {"samples", "nearest neighbours", "losses"}, text
        for _, url in images:
            parts = urlsplit(url)
            assert parts.path == "get-artifact" and not parts.scheme and not parts.netloc, url  # relative: any host, any prefix
            q = {k: v[0] for k, v in parse_qs(parts.query).items()}
            assert q["run_uuid"] == rid
            folder, _, name = q["path"].rpartition("/")
            assert name in {a.path.rpartition("/")[2] for a in c.list_artifacts(rid, folder)}, q


def test_the_mlflow_server_serves_the_card_images(project, registered, monkeypatch):
    """The URLs in the card, requested from MLflow's own server app (as the UI page would,
    relative to the server root), answer with the PNG files."""
    from mlflow.server import app, handlers

    from ganpipe.tracking.cards import card_for_run

    monkeypatch.setattr(handlers, "_tracking_store", None)  # this store, not one cached by another test
    handlers._get_tracking_store(project.store.uri)
    card = card_for_run(project.store, registered, {"fcd": 3.0}, {})
    client = app.test_client()
    for _, url in _images(card):
        r = client.get("/" + url, headers={"Host": "localhost"})
        assert r.status_code == 200 and r.data.startswith(PNG[:8]), (url, r.status_code, r.data[:200])


def test_card_shows_a_serving_request_that_matches_the_model_signature(project, registered):
    from ganpipe.tracking.cards import card_for_version

    card = card_for_version(project.store, "card-model", "1")
    assert "mlflow models serve -m models:/card-model/1" in card
    assert "curl -s http://127.0.0.1:5001/invocations" in card
    body = json.loads(re.search(r"```json\n(.*?)\n```", card, re.S).group(1))
    (record,) = body["dataframe_records"]
    assert record == {"n": 4, "seed": 0}  # dcgan: no inputs needed
    # every field named is one of the pyfunc signature's columns (tracking/pyfunc.py)
    for field in ("seed", "labels", "truncation", "direction", "inputs"):
        assert f"`{field}`" in card
