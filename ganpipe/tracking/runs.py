"""MLflow runs: one per training run, with params, the resolved config and lineage tags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ganpipe.tracking.store import artifact_root, mask, tracking_uri


def client():
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri())


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = mask(str(v))[:6000]
    return out


def ensure_experiment(name: str) -> str:
    c = client()
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    return c.create_experiment(name, artifact_location=artifact_root())


def start_run(experiment: str, run_name: str, config: dict[str, Any], tags: dict[str, str]) -> str:
    """Create a run (not left active in this process) and log params, config and tags."""
    import yaml
    from mlflow.entities import Param, RunTag

    c = client()
    exp_id = ensure_experiment(experiment)
    run = c.create_run(exp_id, run_name=run_name, tags=tags)
    rid = run.info.run_id
    params = [Param(k, v) for k, v in flatten(config).items()]
    for i in range(0, len(params), 100):
        c.log_batch(rid, params=params[i : i + 100], tags=[RunTag("ganpipe.stage", "train")] if i == 0 else [])
    c.log_text(rid, mask(yaml.safe_dump(config, sort_keys=False)), "config/resolved.yaml")
    return rid


def find_run(experiment: str, run_name: str, data_fingerprint: str) -> str | None:
    """A finished run of this config on this data (used to skip completed stages)."""
    c = client()
    exp = c.get_experiment_by_name(experiment)
    if exp is None:
        return None
    runs = c.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.mlflow.runName = '{run_name}' and tags.`data.fingerprint` = '{data_fingerprint}'",
        order_by=["attributes.start_time DESC"],
        max_results=5,
    )
    for r in runs:
        if r.data.tags.get("ganpipe.train_status") == "FINISHED":
            return r.info.run_id
    for r in runs:  # an interrupted run of the same config: continue logging into it
        if r.info.status in ("RUNNING", "FAILED", "KILLED"):
            return r.info.run_id
    return None


def set_tags(run_id: str, tags: dict[str, str]) -> None:
    c = client()
    for k, v in tags.items():
        c.set_tag(run_id, k, v)


def log_metrics(run_id: str, metrics: dict[str, float], step: int | None = None) -> None:
    import time

    from mlflow.entities import Metric

    ts = int(time.time() * 1000)
    client().log_batch(run_id, metrics=[Metric(k, float(v), ts, step or 0) for k, v in metrics.items()])


def log_dict(run_id: str, data: dict[str, Any], path: str) -> None:
    client().log_dict(run_id, data, path)


def log_image(run_id: str, image: Any, path: str) -> None:
    client().log_image(run_id, image, artifact_file=path)


def log_artifact(run_id: str, local: str | Path, artifact_path: str | None = None) -> None:
    client().log_artifact(run_id, str(local), artifact_path)


def end_run(run_id: str, status: str = "FINISHED") -> None:
    client().set_terminated(run_id, status=status)


def run_url(run_id: str) -> str:
    """A link a user can open in the MLflow UI (`ganpipe ui`)."""
    r = client().get_run(run_id)
    return f"http://127.0.0.1:5000/#/experiments/{r.info.experiment_id}/runs/{run_id}"
