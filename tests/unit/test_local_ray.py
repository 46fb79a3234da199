"""ganpipe's private local Ray (`ganpipe.train.local_ray`): the Ray releases its internals hold
for, and the instance: lean for training (no dashboard, no actors a one-machine run has no use
for), with the State API once a sweep asks.

The instance runs in a child process so that it starts its own beside the test session's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import json, os, ray
    from ray.util.state import list_nodes
    import ganpipe.train.local_ray as d

    def state_api(address):
        try:
            return len(list_nodes(address=address, limit=1, timeout=5)) == 1
        except Exception:
            return False

    out = {}
    d.ensure_ray(num_cpus=2, log_to_driver=False)
    from ray.train import ScalingConfig
    from ray.train.torch import TorchTrainer

    def callbacks():
        cls = d.trainer_class()
        trainer = cls(lambda config: None, scaling_config=ScalingConfig(num_workers=1))
        return cls is TorchTrainer, sorted(type(c).__name__ for c in trainer._create_default_callbacks())

    out["lean"] = {"dashboard": d.LOCAL_DASHBOARD, "state_api": state_api(None),
                   "env": {k: os.environ.get(k) for k in d.LEAN_LOCAL_ENV}}
    out["lean_callbacks"] = callbacks()

    # Which of Ray's actor processes run while a lean run's training function runs.
    import tempfile
    from ray.train import RunConfig

    def actors(config):
        import psutil, ray.train
        names = set()
        driver = psutil.Process().parent().parent()  # worker <- raylet <- this script (which started the instance)
        for p in driver.children(recursive=True):  # this instance only, not the test session's
            try:
                first = (p.cmdline() or [""])[0]
            except psutil.Error:
                continue
            if first.startswith("ray::"):
                names.add(first.split()[0].split(".")[0])
        ray.train.report({"n": 1.0})
        with open(config["out"], "w") as f:
            json.dump(sorted(names), f)

    seen = os.path.join(tempfile.mkdtemp(), "actors.json")
    d.trainer_class()(actors, train_loop_config={"out": seen}, scaling_config=ScalingConfig(num_workers=1),
                       run_config=RunConfig(name="lean-actors", storage_path=tempfile.mkdtemp())).fit()
    out["lean_actors"] = json.load(open(seen))
    d.ensure_ray(state_api=True)
    out["sweep"] = {"dashboard": d.LOCAL_DASHBOARD, "state_api": state_api(d.LOCAL_DASHBOARD),
                    "cpus": ray.cluster_resources().get("CPU")}
    out["sweep_callbacks"] = callbacks()
    d.ensure_ray()  # a later training run keeps the instance it finds
    out["again"] = {"dashboard": d.LOCAL_DASHBOARD, "state_api": state_api(d.LOCAL_DASHBOARD)}
    print("OUT " + json.dumps(out))
    """
)


def test_training_starts_lean_and_a_sweep_restarts_it_with_the_state_api():
    import ray

    from ganpipe.train.local_ray import SUPPORTED_RAY, ray_supported

    # The lean trainer subclasses Ray Train's internals (ray.train.v2._internal), checked against
    # these releases only; on any other ganpipe falls back to Ray Train's defaults.
    assert ray_supported(), (
        f"Ray {ray.__version__} is outside ganpipe.train.local_ray.SUPPORTED_RAY ({SUPPORTED_RAY}): check the lean "
        "trainer's internals (default callbacks, scaling policy) and this test against it, then widen SUPPORTED_RAY"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "GANPIPE_RAY_DASHBOARD", "RAY_TRAIN_METRICS_ENABLED", "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER")}
    p = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(next(line for line in p.stdout.splitlines() if line.startswith("OUT "))[4:])
    assert out["lean"] == {"dashboard": None, "state_api": False, "env": {"RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0", "RAY_TRAIN_METRICS_ENABLED": "0"}}
    # Without the State API, Train's placement-group cleaner could only poll it and warn every second.
    plain_class, lean_cbs = out["lean_callbacks"]
    assert not plain_class and "PlacementGroupCleanerCallback" not in lean_cbs and "BackendSetupCallback" in lean_cbs
    plain_class, sweep_cbs = out["sweep_callbacks"]
    assert plain_class and "PlacementGroupCleanerCallback" in sweep_cbs
    # No Ray Datasets in the run: no dataset manager either.
    assert set(sweep_cbs) - set(lean_cbs) == {"PlacementGroupCleanerCallback", "DatasetsCallback"}
    # A lean run starts Train's controller, its synchronization actor and the worker, and neither
    # the dataset manager nor Ray Data's autoscaling coordinator (each wakes 100 times a second).
    actors = set(out["lean_actors"])
    assert {"ray::TrainController", "ray::SynchronizationActor", "ray::RayTrainWorker"} <= actors, actors
    assert not {a for a in actors if "DatasetManager" in a or "AutoscalingCoordinator" in a}, actors
    assert out["sweep"]["dashboard"].startswith("http://127.0.0.1:")
    assert out["sweep"]["state_api"] is True
    assert out["sweep"]["cpus"] == 2.0  # restarted with the first call's size
    assert out["again"] == {"dashboard": out["sweep"]["dashboard"], "state_api": True}
