"""Evaluation runs where the GPUs are: samplers on the recipe's device, and the pipeline's
evaluation stage as a Ray task holding a GPU when the cluster advertises one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import REPO
from ganpipe.config import load_config
from ganpipe.evaluate.placement import Placement, choose_placement, cluster_gpus, run_placed
from ganpipe.train.loop import build_recipe

META = torch.device("meta")  # stands in for an accelerator: nothing may fall back to the CPU


@pytest.mark.parametrize("family", ["dcgan", "biggan"])
def test_sampler_generates_on_the_recipes_device(digits8, family):
    cfg = load_config(REPO / f"configs/{family}-digits.yaml", ["data.image_size=8"])
    recipe = build_recipe(cfg, digits8, META)
    s = recipe.sampler()
    assert s.device == META
    assert {p.device for p in s.generator.parameters()} == {META}
    training = {id(q) for m in recipe.modules().values() for q in m.parameters()}
    assert not any(id(p) in training for p in s.generator.parameters())  # a copy, not the training weights


def test_evaluation_features_on_the_samplers_device(digits8, tmp_path):
    """The offline metrics' classifier runs where the generator samples (trained once on the
    CPU and cached, then moved)."""
    from ganpipe.evaluate.metrics import EvalContext

    cfg = load_config(REPO / "configs/dcgan-digits.yaml", ["data.image_size=8"])
    ctx = EvalContext(build_recipe(cfg, digits8, META).sampler(), digits8, tmp_path, num_samples=10, classifier_steps=2)
    model, accuracy = ctx.classifier
    assert {p.device for p in model.parameters()} == {META} and 0 <= accuracy <= 1


def test_no_cluster_means_in_process_without_importing_ray(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delitem(sys.modules, "ray", raising=False)
    assert cluster_gpus() == 0.0
    assert "ray" not in sys.modules
    p = choose_placement()
    assert not p.remote and p.device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert run_placed(p, dict, a=1) == {"a": 1, "device": p.device}  # called here, with the device


def test_a_cluster_without_gpus_evaluates_in_process(ray_session):
    assert ray_session.cluster_resources().get("GPU", 0) == 0
    p = choose_placement()
    assert p == Placement(remote=False, device="cpu") and p.describe() == "in-process (cpu)"


def test_a_gpu_node_gets_the_evaluation_and_the_head_does_not(tmp_path):
    """Two-node cluster, GPU only on the worker node: evaluation and PBT trials go there."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    r = subprocess.run([sys.executable, str(REPO / "tests/evaluate/placement_driver.py")], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads([ln for ln in r.stdout.splitlines() if ln.startswith("{")][-1])
    assert out["cpu_only"]["remote"] is False and out["cpu_only"]["device"] == "cpu"
    assert out["cpu_only"]["ran"]["device"] == "cpu"
    placed = out["with_gpu"]
    assert placed["remote"] is True and placed["device"] == "cuda" and placed["options"] == {"num_gpus": 1, "num_cpus": 1}
    assert placed["ran"]["node"] == out["gpu_node"] != out["head"]  # the task ran on the GPU node
    assert placed["ran"]["gpu_ids"] == ["0"] and placed["ran"]["device"] == "cuda"
    # A PBT trial of a GPU sweep reserves a GPU, gets it, and trains on it (one per trial).
    trial = out["pbt_trial"]
    assert trial["resources"] == {"CPU": 1, "GPU": 1}
    assert trial["ran"]["node"] == out["gpu_node"] and trial["ran"]["gpu_ids"] == ["0"] and trial["ran"]["device"] == "cuda"
