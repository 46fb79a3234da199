"""MLflow runs: one per training run, with params, the resolved config and lineage tags."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

from ganpipe.tracking.store import TrackingStore, mask


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = mask(str(v))[:6000]
    return out


def ensure_experiment(store: TrackingStore, name: str) -> str:
    c = store.client()
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    return c.create_experiment(name, artifact_location=store.artifact_location)


def start_run(store: TrackingStore, experiment: str, run_name: str, config: dict[str, Any], tags: dict[str, str]) -> str:
    """Create a run (not left active in this process) and log params, config and tags."""
    import yaml
    from mlflow.entities import Param, RunTag

    c = store.client()
    exp_id = ensure_experiment(store, experiment)
    run = c.create_run(exp_id, run_name=run_name, tags=tags)
    rid = run.info.run_id
    params = [Param(k, v) for k, v in flatten(config).items()]
    for i in range(0, len(params), 100):
        c.log_batch(rid, params=params[i : i + 100], tags=[RunTag("ganpipe.stage", "train")] if i == 0 else [])
    c.log_text(rid, mask(yaml.safe_dump(config, sort_keys=False)), "config/resolved.yaml")
    return rid


def find_run(store: TrackingStore, experiment: str, run_name: str, data_fingerprint: str) -> str | None:
    """A finished run of this config on this data (used to skip completed stages)."""
    c = store.client()
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


def set_tags(store: TrackingStore, run_id: str, tags: dict[str, str]) -> None:
    c = store.client()
    for k, v in tags.items():
        c.set_tag(run_id, k, v)


def log_metrics(store: TrackingStore, run_id: str, metrics: dict[str, float], step: int | None = None) -> None:
    import time

    from mlflow.entities import Metric

    ts = int(time.time() * 1000)
    store.client().log_batch(run_id, metrics=[Metric(k, float(v), ts, step or 0) for k, v in metrics.items()])


def log_dict(store: TrackingStore, run_id: str, data: dict[str, Any], path: str) -> None:
    store.client().log_dict(run_id, data, path)


def log_image(store: TrackingStore, run_id: str, image: Any, path: str) -> None:
    store.client().log_image(run_id, image, artifact_file=path)


def log_artifact(store: TrackingStore, run_id: str, local: str | Path, artifact_path: str | None = None) -> None:
    store.client().log_artifact(run_id, str(local), artifact_path)


def end_run(store: TrackingStore, run_id: str, status: str = "FINISHED") -> None:
    store.client().set_terminated(run_id, status=status)


def run_url(store: TrackingStore, run_id: str) -> str:
    """A link a user can open in the MLflow UI (`ganpipe ui`)."""
    r = store.client().get_run(run_id)
    return f"http://127.0.0.1:5000/#/experiments/{r.info.experiment_id}/runs/{run_id}"


@contextlib.contextmanager
def lifecycle(store: TrackingStore, run_id: str, status_tag: str = "ganpipe.train_status") -> Iterator[None]:
    """A training run's states in one place: RUNNING while the block runs; FAILED (with the
    reason in `ganpipe.failure`, and the MLflow run ended FAILED) if it raises, except for
    SystemExit, with which Tune stops a trial (the sweep records how it ended); the caller sets
    FINISHED with what it produced, since only it knows the checkpoint."""
    set_tags(store, run_id, {status_tag: "RUNNING"})
    try:
        yield
    except SystemExit:  # Tune stopped or paused a trial (a scheduler's decision), not a failure
        raise
    except BaseException as e:
        set_tags(store, run_id, {status_tag: "FAILED", "ganpipe.failure": mask(str(e) or type(e).__name__)[:4000]})
        end_run(store, run_id, "FAILED")
        raise
