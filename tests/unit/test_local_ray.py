"""ganpipe's private local Ray: lean for training, with the State API once a sweep asks.

Runs in a child process so that it starts its own instances beside the test session's.
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
    import ganpipe.train.driver as d

    def state_api(address):
        try:
            return len(list_nodes(address=address, limit=1, timeout=5)) == 1
        except Exception:
            return False

    out = {}
    d.ensure_ray(num_cpus=2, log_to_driver=False)
    out["lean"] = {"dashboard": d.LOCAL_DASHBOARD, "state_api": state_api(None),
                   "env": {k: os.environ.get(k) for k in d.LEAN_LOCAL_ENV}}
    d.ensure_ray(state_api=True)
    out["sweep"] = {"dashboard": d.LOCAL_DASHBOARD, "state_api": state_api(d.LOCAL_DASHBOARD),
                    "cpus": ray.cluster_resources().get("CPU")}
    d.ensure_ray()  # a later training run keeps the instance it finds
    out["again"] = {"dashboard": d.LOCAL_DASHBOARD, "state_api": state_api(d.LOCAL_DASHBOARD)}
    print("OUT " + json.dumps(out))
    """
)


def test_training_starts_lean_and_a_sweep_restarts_it_with_the_state_api():
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "GANPIPE_RAY_DASHBOARD", "RAY_TRAIN_METRICS_ENABLED", "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER")}
    p = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(next(line for line in p.stdout.splitlines() if line.startswith("OUT "))[4:])
    assert out["lean"] == {"dashboard": None, "state_api": False, "env": {"RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0", "RAY_TRAIN_METRICS_ENABLED": "0"}}
    assert out["sweep"]["dashboard"].startswith("http://127.0.0.1:")
    assert out["sweep"]["state_api"] is True
    assert out["sweep"]["cpus"] == 2.0  # restarted with the first call's size
    assert out["again"] == {"dashboard": out["sweep"]["dashboard"], "state_api": True}
