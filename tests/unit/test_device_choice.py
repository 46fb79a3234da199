"""`train.use_gpu: auto` on clusters whose GPU nodes may not exist yet: GPU when the cluster has
one or its autoscaler can add one; CPU only when none can come, and then said in the log and on
the MLflow run."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ganpipe.train.driver import choose_device

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "setting, now, most, on_cluster, use_gpu, fallback",
    [
        ("auto", 8, None, True, True, False),  # GPUs now
        ("auto", 0, 16, True, True, False),  # none yet, the autoscaler can add 16: wait for them
        ("auto", 0, 0, True, False, True),  # the autoscaler declares CPU node types only
        ("auto", 0, None, True, False, True),  # a fixed cluster without GPUs
        ("auto", 0, None, False, False, False),  # a laptop: CPU is no fallback
        ("auto", 1, None, False, True, False),  # a workstation with a GPU
        (True, 0, None, True, True, False),  # told: wait for GPU workers whatever the cluster says
        (False, 8, 16, True, False, False),  # told: CPU
    ],
)
def test_auto_picks_the_gpu_when_one_exists_or_can_be_added(setting, now, most, on_cluster, use_gpu, fallback):
    d = choose_device(setting, now, most, on_cluster)
    assert (d.use_gpu, d.fallback) == (use_gpu, fallback), d
    assert d.reason
    if fallback:
        assert "train.use_gpu=true" in d.reason  # how to get the GPU anyway


def test_a_cpu_fallback_on_a_cluster_is_logged_and_tagged(tmp_path, monkeypatch, caplog):
    from ganpipe.config import load_config
    from ganpipe.project import Project
    from ganpipe.tracking import runs
    from ganpipe.train import driver, local_ray

    class Recorder:
        def __init__(self, fn, train_loop_config, scaling_config, **kwargs):
            given["use_gpu"] = scaling_config.use_gpu

        def fit(self):
            raise RuntimeError("recorded")

    given = {}
    monkeypatch.setattr(local_ray, "ensure_ray", lambda *a, **k: None)
    monkeypatch.setattr(local_ray, "trainer_class", lambda: Recorder)
    monkeypatch.setattr(driver, "resolve_device", lambda cfg: choose_device("auto", 0, 0, on_cluster=True))
    cfg = load_config(REPO / "configs/dcgan-digits.yaml", [])
    project = Project.load(tmp_path, env={})
    run_id = runs.start_run(project.store, cfg.experiment, cfg.run_name, cfg.to_dict(), {})
    with caplog.at_level(logging.WARNING, logger="ganpipe"), pytest.raises(Exception, match="recorded"):
        driver.fit(cfg, tmp_path, project, run_id=run_id)
    assert given["use_gpu"] is False
    assert f"training {cfg.run_name} on CPU" in caplog.text and "autoscaler declares no GPU" in caplog.text
    tags = project.store.client().get_run(run_id).data.tags
    assert tags["ganpipe.device"] == "cpu" and "no GPU" in tags["ganpipe.device_reason"]


def test_the_autoscaler_config_ray_train_reads_is_what_auto_reads(ray_session, monkeypatch):
    """The cluster config an autoscaler reports to the GCS (node types x max counts), written
    where Ray keeps it: auto then picks the GPU on a cluster with no GPU node yet."""
    import ray
    from ray.core.generated import autoscaler_pb2
    from ray.experimental import internal_kv

    from ganpipe.config import load_config
    from ganpipe.train import driver, local_ray

    ns, key = ray._raylet.GCS_AUTOSCALER_STATE_NAMESPACE, ray._raylet.GCS_AUTOSCALER_CLUSTER_CONFIG_KEY
    config = autoscaler_pb2.ClusterConfig(
        node_group_configs=[
            autoscaler_pb2.NodeGroupConfig(name="head", resources={"CPU": 4}, max_count=1),
            autoscaler_pb2.NodeGroupConfig(name="gpu-8x", resources={"CPU": 64, "GPU": 8}, max_count=2),
        ]
    )
    assert local_ray.autoscaler_max_resources() is None  # a local instance has no autoscaler
    internal_kv._internal_kv_put(key, config.SerializeToString(), namespace=ns)
    try:
        assert local_ray.autoscaler_max_resources()["GPU"] == 16
        monkeypatch.setattr(local_ray, "is_private", lambda: False)  # as if joined through RAY_ADDRESS
        cfg = load_config(REPO / "configs/dcgan-digits.yaml", [])
        d = driver.resolve_device(cfg)
        assert d.use_gpu and "autoscaler can add up to 16" in d.reason, d
    finally:
        internal_kv._internal_kv_del(key, namespace=ns)
