"""`ganpipe train --dry-run`, `ganpipe models` and config errors never import torch (nor Ray
or MLflow): the names they check live in ganpipe.specs, so they answer in a second or two."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "ray", "mlflow")

# Runs the CLI in a fresh interpreter, then reports the exit code and which heavy libraries got imported.
RUN_CLI = """
import json, sys
from ganpipe.cli import app
try:
    app(sys.argv[1:], prog_name="ganpipe")
    code = 0
except SystemExit as e:
    code = e.code
print(json.dumps({"code": code, "heavy": [m for m in %r if m in sys.modules]}))
""" % (HEAVY,)


def ganpipe(*args: str) -> tuple[dict, str]:
    r = subprocess.run([sys.executable, "-c", RUN_CLI, *args], capture_output=True, text=True, cwd=REPO, timeout=300)
    *out, last = r.stdout.strip().splitlines()
    return json.loads(last), "\n".join(out) + r.stderr


def test_dry_run_prints_the_resolved_config_without_torch():
    res, out = ganpipe("train", "configs/dcgan-digits.yaml", "--dry-run")
    assert res == {"code": 0, "heavy": []}, out
    assert "family: dcgan" in out and "d_norm: batch" in out  # family params filled in by validation


def test_models_lists_without_torch():
    res, out = ganpipe("models")
    assert res == {"code": 0, "heavy": []}, out
    assert "pix2pix" in out and "wgan-gp" in out


@pytest.mark.parametrize(
    "config, override, message",
    [
        ("dcgan-digits", "model.family=stylegan", "unknown model family 'stylegan'; valid: biggan, cgan, cyclegan, dcgan, pix2pix, toy"),
        ("dcgan-digits", "eval.metrics=[fcd, nope]", "unknown metric 'nope'; valid: cis,"),
        ("cgan-digits", "model.family=pix2pix", "family pix2pix trains on paired data, but data.source 'digits' is 'images'"),
        # Another family's params left behind by the switch: which ones, and the family's own.
        ("dcgan-digits", "model.family=pix2pix", "unknown key 'model.params.ema_decay' fix: pix2pix params: d_layers,"),
    ],
)
def test_config_errors_without_torch(config, override, message):
    res, out = ganpipe("train", f"configs/{config}.yaml", "--dry-run", "--set", override)
    assert res == {"code": 2, "heavy": []}, out
    assert message in " ".join(out.split()), out  # rich may wrap the line


def test_load_and_validate_without_torch():
    code = (
        "import sys; from ganpipe.config import load_config; from ganpipe.validation import validate; "
        "cfg = validate(load_config('configs/pix2pix-colorize.yaml')); "
        "assert cfg.model.params['lambda_l1'] == 100.0; "
        "print([m for m in %r if m in sys.modules])" % (HEAVY,)
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr
