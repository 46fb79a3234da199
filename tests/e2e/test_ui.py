"""What a person sees: the version that the pipeline's stages evaluated, carded and registered
(the session's shared run, tests/conftest.py `pipeline_run`), in the MLflow UI started by
`ganpipe ui` and rendered by headless Chromium; then a `ganpipe evaluate` of it.

Chromium comes from Debian's package: `make test` installs it (scripts/install-browser.sh);
without it the test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import REPO, free_port

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def chromium() -> str:
    """The browser, checked before any other set-up (the session's pipeline run among it)."""
    if os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    pytest.fail(f"{CHROMIUM} is missing: run scripts/install-browser.sh (as root it installs Debian's chromium)")


def get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


@pytest.fixture
def ui_server(pipeline_project, tmp_path):
    """`ganpipe ui` on a free loopback port, stopped (its whole process group) afterwards."""
    port = free_port()
    log = open(tmp_path / "ui.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ganpipe", "ui", "--port", str(port)],
        cwd=pipeline_project.root,
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


def test_registered_model_renders_in_the_mlflow_ui(chromium, pipeline_run, ui_server, tmp_path):
    from ganpipe.cli import app

    client = pipeline_run.project.store.client
    name, run_id = pipeline_run.summary["registered"]["name"], pipeline_run.summary["run_id"]
    assert pipeline_run.summary["registered"]["alias"] == "champion"

    # What the stages made, as the server's REST API serves it: the registration stage's alias
    # and card (the version's description), the evaluation stage's samples, figures and card.
    q = urllib.parse.quote(name)
    model = json.loads(get(f"{ui_server}/api/2.0/mlflow/registered-models/get?name={q}"))["registered_model"]
    assert {"alias": "champion", "version": "1"} in model["aliases"]
    version = json.loads(get(f"{ui_server}/api/2.0/mlflow/model-versions/get?name={q}&version=1"))["model_version"]
    assert version["description"].startswith(f"# Model card: {name} v1")

    def artifacts(path: str) -> set[str]:
        return {f["path"] for f in json.loads(get(f"{ui_server}/api/2.0/mlflow/artifacts/list?run_id={run_id}&path={path}"))["files"]}

    assert {"eval/interpolation.png", "eval/samples.png", "eval/metrics.json"} <= artifacts("eval")
    assert "plots/losses.png" in artifacts("plots") and "card/model_card.md" in artifacts("card")

    # The pages themselves, as a browser renders them.
    profile = tmp_path / "chromium"
    dom = render(chromium, f"{ui_server}/#/models/{q}", tmp_path / "ui-model.png", profile)
    assert name in dom and "Version 1" in dom and "champion" in dom, dom[-3000:]
    dom = render(chromium, f"{ui_server}/#/models/{q}/versions/1", tmp_path / "ui-model-version.png", profile)
    assert name in dom and "champion" in dom, dom[-3000:]
    assert f"Model card: {name} v1" in dom and "floor / reference" in dom

    # Re-evaluation of the registered version, logged to its run.
    r = CliRunner().invoke(app, ["-C", str(pipeline_run.project.root), "evaluate", f"models:/{name}@champion", "--metrics", "kid_classifier,memorisation"])
    assert r.exit_code == 0, r.output
    run = client().get_run(run_id)
    assert {"eval.kid_classifier", "eval.kid_classifier_floor", "eval.memorisation_share", "eval.fcd"} <= set(run.data.metrics)
    assert run.data.tags["ganpipe.reevaluated_at"] and run.data.tags["ganpipe.reevaluated_metrics"] == "kid_classifier,memorisation"
