"""What a person sees: a registered model in the MLflow UI started by `ganpipe ui`, rendered by
headless Chromium, after the evaluation and registration stages and a `ganpipe evaluate`.

The training stage is replaced by an untrained exported generator (the stages after it are the
real ones), so the test runs without Ray or Prefect. Chromium comes from Debian's package
(scripts/install-browser.sh); without it the test fails under CI and skips elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import ganpipe.evaluate.metrics_suite  # noqa: F401  (pr, memorisation, kid_classifier)
from conftest import REPO

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
STEPS = 7  # classifier cache key; the cache is seeded so nothing is trained
TINY = [
    "train.steps=40",
    "eval.num_samples=200",
    f"eval.classifier_steps={STEPS}",
    "eval.metrics=[fcd,pr]",
    "model.params.g_width=8",
    "model.params.d_width=8",
]


@pytest.fixture
def chromium() -> str:
    """The browser, checked before any other set-up so a missing one costs nothing."""
    if os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    reason = f"{CHROMIUM} is missing: run scripts/install-browser.sh (as root it installs Debian's chromium)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)


def seed_classifier(data_dir: Path, cache_dir: Path) -> None:
    """A seeded untrained classifier where load_or_train looks: any fixed extractor will do here."""
    from ganpipe.data.loading import load_manifest
    from ganpipe.evaluate.classifier import SmallClassifier

    m = load_manifest(data_dir)
    torch.manual_seed(0)
    folder = cache_dir / "classifiers"
    folder.mkdir(parents=True, exist_ok=True)
    key = f"{m['fingerprint'][:16]}-s{STEPS}-seed0"
    torch.save(SmallClassifier(m["channels"], m["num_classes"]).state_dict(), folder / f"{key}.pt")
    (folder / f"{key}.json").write_text(json.dumps({"test_accuracy": 0.0}))


@pytest.fixture
def registered(tmp_path, digits_prepared):
    """A project whose store holds one version that the stages evaluated, registered and carded."""
    from ganpipe import stages
    from ganpipe.config import load_config
    from ganpipe.data.loading import load_manifest
    from ganpipe.models.dcgan import DCGANGenerator
    from ganpipe.project import Project
    from ganpipe.tracking import runs
    from ganpipe.tracking.lineage import lineage_tags
    from ganpipe.train.checkpoint import save_checkpoint

    root = tmp_path / "proj"
    root.mkdir()
    project = Project.load(root, env={})
    store = project.store
    cfg = load_config(REPO / "configs" / "dcgan-digits.yaml", TINY)
    data = root / cfg.data.root / cfg.data.key
    shutil.copytree(digits_prepared, data)
    manifest = load_manifest(data)
    seed_classifier(data, project.cache)

    tags = {**lineage_tags(root, manifest), "family": "dcgan", "loss": cfg.loss.name, "dataset": cfg.data.key}
    run_id = runs.start_run(store, cfg.experiment, cfg.run_name, cfg.to_dict(), tags)
    for step in (10, 20, 30, 40):
        runs.log_metrics(store, run_id, {"loss_d": 1.4 - step / 100, "loss_g": 0.7 + step / 100}, step=step)
    torch.manual_seed(0)
    p = cfg.model.params
    spec = {"family": "dcgan", "z_dim": cfg.model.z_dim, "channels": 1, "image_size": 16, "num_classes": 0, "params": p}
    g = DCGANGenerator(cfg.model.z_dim, 1, 16, p["g_width"])
    ck = save_checkpoint(root / "ck", step=40, recipe_state={}, export=(spec, g.state_dict()), config=cfg.to_dict())

    prepared = stages.Prepared(data, manifest, reran=False)
    evaluated = stages.evaluate_stage(cfg, stages.Trained(run_id, ck, {}), prepared, project)
    reg = stages.register_stage(cfg, evaluated, prepared, project)
    return {"project": project, "name": reg.name, "run_id": run_id, "alias": reg.alias}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


@pytest.fixture
def ui_server(registered, tmp_path):
    """`ganpipe ui` on a free loopback port, stopped (its whole process group) afterwards."""
    port = free_port()
    log = open(tmp_path / "ui.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ganpipe", "ui", "--port", str(port)],
        cwd=registered["project"].root,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # a loaded 2-core machine starts it slowly
        while True:
            try:
                if get(f"{base}/health", 2) == b"OK":
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ganpipe ui did not come up: {(tmp_path / 'ui.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    assert f"MLflow UI on http://127.0.0.1:{port}" in (tmp_path / "ui.log").read_text()


def render(chromium: str, url: str, screenshot: Path, profile: Path) -> str:
    """The DOM after the React app has rendered (virtual time), and a screenshot of the page."""
    flags = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1000",
        "--virtual-time-budget=15000",
    ]  # fmt: skip
    run = subprocess.run([*flags, f"--screenshot={screenshot}", "--dump-dom", url], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0 and screenshot.is_file(), run.stderr[-2000:]
    out = REPO / "test-output"
    out.mkdir(exist_ok=True)
    shutil.copy(screenshot, out / screenshot.name)
    return run.stdout


def test_registered_model_renders_in_the_mlflow_ui(chromium, registered, ui_server, tmp_path):
    from ganpipe.cli import app

    name, run_id = registered["name"], registered["run_id"]
    client = registered["project"].store.client()
    assert registered["alias"] == "champion"
    # What the evaluation stage logged: figures, training curves and the first card.
    logged = {a.path for folder in ("eval", "plots", "card") for a in client.list_artifacts(run_id, folder)}
    assert {"eval/interpolation.png", "plots/losses.png", "card/model_card.md", "eval/samples.png"} <= logged, logged

    # Re-evaluation of the registered version, logged to its run.
    r = CliRunner().invoke(app, ["-C", str(registered["project"].root), "evaluate", f"models:/{name}@champion", "--metrics", "kid_classifier,memorisation"])
    assert r.exit_code == 0, r.output
    run = client.get_run(run_id)
    assert {"eval.kid_classifier", "eval.kid_classifier_floor", "eval.memorisation_share", "eval.fcd"} <= set(run.data.metrics)
    assert run.data.tags["ganpipe.reevaluated_at"] and run.data.tags["ganpipe.reevaluated_metrics"] == "kid_classifier,memorisation"

    # The server's REST API serves what the pages show.
    q = urllib.parse.quote(name)
    model = json.loads(get(f"{ui_server}/api/2.0/mlflow/registered-models/get?name={q}"))["registered_model"]
    assert {"alias": "champion", "version": "1"} in model["aliases"]
    version = json.loads(get(f"{ui_server}/api/2.0/mlflow/model-versions/get?name={q}&version=1"))["model_version"]
    assert version["description"].startswith(f"# Model card: {name} v1")
    arts = json.loads(get(f"{ui_server}/api/2.0/mlflow/artifacts/list?run_id={run_id}&path=eval"))
    assert {"eval/interpolation.png", "eval/samples.png", "eval/metrics.json"} <= {f["path"] for f in arts["files"]}

    # The pages themselves, as a browser renders them.
    profile = tmp_path / "chromium"
    dom = render(chromium, f"{ui_server}/#/models/{q}", tmp_path / "ui-model.png", profile)
    assert name in dom and "Version 1" in dom and "champion" in dom, dom[-3000:]
    dom = render(chromium, f"{ui_server}/#/models/{q}/versions/1", tmp_path / "ui-model-version.png", profile)
    assert name in dom and "champion" in dom, dom[-3000:]
    assert f"Model card: {name} v1" in dom and "floor / reference" in dom
