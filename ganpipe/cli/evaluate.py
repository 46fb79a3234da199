"""`ganpipe evaluate` and `ganpipe ui`: measure and look at what the pipeline produced."""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from ganpipe.cli.common import app, console, handle_errors, load_project
from ganpipe.errors import GanpipeError


@app.command()
@handle_errors
def ui(
    port: int = typer.Option(5000),
    host: str = typer.Option("127.0.0.1", help="Bind address; expose deliberately."),
    workers: int = typer.Option(1, min=1, help="Server processes: one serves a person; raise it for a shared server."),
) -> None:
    """Start the MLflow UI against the project's tracking store."""
    import subprocess

    project = load_project()
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", project.tracking_uri, "--host", host, "--port", str(port), "--workers", str(workers)]
    if project.artifact_location:
        cmd += ["--default-artifact-root", project.artifact_location]
    console.print(f"MLflow UI on http://{host}:{port}  (Ctrl-C to stop)")
    raise typer.Exit(subprocess.call(cmd))


def _run_config(store: Any, run_id: str) -> Any:
    """The resolved config the run was trained with (its config/resolved.yaml artifact)."""
    import tempfile

    import yaml

    from ganpipe.config import build_config, upgrade_saved

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a clean table output
    try:
        with tempfile.TemporaryDirectory() as tmp:
            raw = yaml.safe_load(Path(store.client().download_artifacts(run_id, "config/resolved.yaml", tmp)).read_text())
    except Exception as e:
        raise GanpipeError(f"run {run_id} has no readable config/resolved.yaml: {str(e)[:200]}", hint="re-evaluate a version registered by the pipeline") from None
    return build_config(upgrade_saved(raw or {}), source=f"run {run_id} config/resolved.yaml")


def _training_data(project: Any, cfg: Any, data: Optional[Path], fingerprint: str) -> Path:
    """The prepared data the version was trained on, checked by fingerprint."""
    from ganpipe.data.loading import load_manifest

    path = data or project.root / cfg.data.root / cfg.data.key
    found = load_manifest(path).get("fingerprint", "")
    if fingerprint and found != fingerprint:
        raise GanpipeError(
            f"prepared data at {path} has fingerprint {found[:12]}, but the model was trained on {fingerprint[:12]}",
            hint="restore the data it was trained on (`dvc checkout`, then prepare with the run's config) or pass --data DIR",
        )
    return path


@app.command()
@handle_errors
def evaluate(
    model_uri: str = typer.Argument(..., help="models:/NAME/VERSION or models:/NAME@ALIAS."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Comma-separated metric names (default: the run's eval.metrics), e.g. fcd,pr,memorisation."),
    data: Optional[Path] = typer.Option(None, "--data", help="Prepared data folder (default: the one named by the run's config)."),
    num_samples: Optional[int] = typer.Option(None, "--num-samples", min=10, help="Generated samples (default: the run's eval.num_samples)."),
) -> None:
    """Re-evaluate a registered version on the data it was trained on; logs eval.* to its run."""
    from ganpipe.evaluate.metrics import METRICS, EvalContext
    from ganpipe.evaluate.metrics import evaluate as run_metrics
    from ganpipe.tracking import runs
    from ganpipe.tracking.cards import metric_rows
    from ganpipe.tracking.pyfunc import load_sampler
    from ganpipe.tracking.model_registry import resolve_version

    project = load_project()
    store = project.store
    mv = resolve_version(store, model_uri)
    run = store.client().get_run(mv.run_id)
    cfg = _run_config(store, mv.run_id)
    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else list(cfg.eval.metrics)
    for n in names:
        METRICS.get(n)  # an unknown name fails before any work, listing the valid ones
    fingerprint = run.data.tags.get("data.fingerprint") or mv.tags.get("data_fingerprint", "")
    data_dir = _training_data(project, cfg, data, fingerprint)
    sampler = load_sampler(store, f"models:/{mv.name}/{mv.version}")
    n = num_samples or cfg.eval.num_samples
    ctx = EvalContext(sampler, data_dir, project.cache, n, cfg.eval.seed, cfg.eval.classifier_steps, project.inception_weights)
    values, info = run_metrics(ctx, names)

    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    runs.log_metrics(store, mv.run_id, {f"eval.{k}": v for k, v in values.items()}, step=cfg.train.steps)
    runs.log_dict(store, mv.run_id, {"model_uri": model_uri, "version": str(mv.version), "at": stamp, "values": values, "info": info}, f"eval/reevaluation-{stamp.replace(':', '')}.json")
    runs.set_tags(store, mv.run_id, {"ganpipe.reevaluated_at": stamp, "ganpipe.reevaluated_metrics": ",".join(names)})
    store.client().set_model_version_tag(mv.name, str(mv.version), "reevaluated_at", stamp)

    t = Table("metric", "value", "floor / reference", "extractor", "samples", title=f"{mv.name} v{mv.version} on {data_dir}")
    for row in metric_rows(values, info):
        t.add_row(*row)
    console.print(t)
    console.print(f"logged eval.* to run {mv.run_id} (re-evaluated {stamp})")
