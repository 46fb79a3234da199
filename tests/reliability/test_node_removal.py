"""A Ray node removed during a 2-node run, for real: the run restarts from its latest checkpoint
on the surviving node plus a replacement node and finishes, losing no progress and redoing at
most one checkpoint interval. And capacity that never comes back fails the run with a named
reason instead of waiting for ever."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import REPO
from ganpipe.project import Project

DRIVER = REPO / "tests/reliability/node_removal_driver.py"


def test_removed_node_run_resumes_from_latest_checkpoint(tmp_path, digits_raw):
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    t0 = time.time()
    r = subprocess.run(
        [sys.executable, str(DRIVER), str(tmp_path), str(digits_raw), "--steps", "300", "--every", "100"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    # Ray may print its own warnings to stdout; the result is the driver's JSON line.
    out = json.loads([line for line in r.stdout.splitlines() if line.startswith("{")][-1])
    print(f"node removal: {json.dumps(out['timing'])}, total {time.time() - t0:.1f}s")
    assert out["error"] is None, out["error"]
    killed, m, every, steps = out["killed"], out["metrics"], out["checkpoint_every"], out["steps"]
    assert "killed_node" in killed, "the worker node was never removed (the run finished first?)"
    # One rank per node before the removal: the removed node really held part of the run.
    assert len(out["nodes_before"]) == 2 and killed["placement_before"] == out["nodes_before"]
    # Rescheduled onto the surviving head node and the replacement, with fresh processes.
    assert sorted(out["placement_after"]) == sorted([out["head"], killed["replacement_node"]])
    assert killed["killed_node"] not in out["placement_after"] and killed["killed_pid"] not in out["pids_after"]
    # Nothing lost: the run finished every step, after resuming from a checkpoint.
    assert m["step"] == steps
    assert 0 < m["start_step"] < steps and m["start_step"] % every == 0
    # At most one checkpoint interval redone. When the node went, every complete checkpoint
    # on disk was at most killed["ckpt_after_kill"], and the run had reached fewer than
    # ckpt_after_kill + every steps (a rank alone cannot pass the next checkpoint's barrier).
    # The run resumed from that newest complete checkpoint (or from one that a surviving rank
    # 0 finished uploading right after), not from the older one Ray Train had recorded.
    assert killed["ckpt_after_kill"] <= m["start_step"] <= killed["ckpt_after_kill"] + every

def test_resume_takes_the_newest_complete_checkpoint_not_rays_record(ray_session, digits_prepared, tmp_path):
    """Ray Train records a report only when its controller next polls the workers (one report
    per poll, every 2 s), so the checkpoint of step 20 below is complete on disk but not yet
    recorded when the worker dies at step 25: Ray alone would restart from step 10."""
    from ganpipe.config import load_config
    from ganpipe.train.driver import fit
    from ganpipe.train.faults import Faults

    cfg = load_config(
        REPO / "configs/dcgan-digits.yaml",
        ["train.steps=40", "train.checkpoint_every=10", "train.log_every=10", "train.sample_every=1000",
         "train.max_failures=1", "train.run_name=newest-ckpt", "model.params.g_width=8", "model.params.d_width=8"],
    )
    res = fit(cfg, digits_prepared, Project.load(tmp_path, env={}), faults=Faults(exit_at_step=25))
    assert res.metrics["step"] == 40 and res.metrics["start_step"] == 20


def test_newest_verified_skips_incomplete_checkpoints(tmp_path):
    import torch

    from ganpipe.train.checkpoint import newest_verified, save_checkpoint

    for i, step in enumerate((100, 200, 300)):
        save_checkpoint(tmp_path / f"checkpoint_{i}", step=step, recipe_state={"x": torch.ones(3)}, export=({"family": "dcgan"}, {"w": torch.ones(2)}), config={})
    (tmp_path / "checkpoint_2" / "state.pt").write_bytes(b"half an upload")  # fails its digest
    (tmp_path / "checkpoint_3").mkdir()  # no meta.json yet
    assert newest_verified(tmp_path) == (tmp_path / "checkpoint_1", 200)
    assert newest_verified(tmp_path / "nothing-here") is None


def test_capacity_that_never_returns_fails_with_a_reason(ray_session, digits_prepared, tmp_path, monkeypatch):
    """Three 1-CPU workers on a 2-CPU instance are as unplaceable as a lost node nobody
    replaces: Ray Train would retry the start for ever; train.worker_wait_s bounds it."""
    from ganpipe.config import load_config
    from ganpipe.errors import TrainingError
    from ganpipe.train.driver import fit
    from ganpipe.train.local_ray import START_TIMEOUT_ENV

    monkeypatch.setenv(START_TIMEOUT_ENV, "2")  # propagated to the Train controller
    cfg = load_config(
        REPO / "configs/dcgan-digits.yaml",
        ["train.num_workers=3", "train.steps=10", "train.worker_wait_s=4", "train.run_name=no-capacity", "model.params.g_width=8", "model.params.d_width=8"],
    )
    t0 = time.time()
    with pytest.raises(TrainingError) as e:
        fit(cfg, digits_prepared, Project.load(tmp_path, env={}))
    took = time.time() - t0
    assert "did not place 3 worker(s)" in e.value.message and "worker_wait_s=4" in e.value.message
    assert "train.num_workers" in e.value.hint
    assert took < 240, took  # two 2 s attempts (plus start-up on a busy machine), not for ever
