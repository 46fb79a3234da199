"""Logging one evaluation to its MLflow run: metrics, the record, sample grid, figures, card.

The stage computes (`ganpipe.evaluate`) and draws (`ganpipe.evaluate.figures`); this module
only ships the results, in one artifact upload for the figures.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ganpipe.evaluate.figures import History, image_grid, make_figures, sample_picture, write_artifact
from ganpipe.tracking import cards, runs
from ganpipe.tracking.store import TrackingStore


def training_history(store: TrackingStore, run_id: str) -> History:
    """{key: [(step, value)]} for the run's training metrics (eval.*, time.* and system metrics left out)."""
    c = store.client()
    keys = [k for k in c.get_run(run_id).data.metrics if not k.startswith(("eval.", "system/", "time."))]
    return {k: [(m.step, m.value) for m in c.get_metric_history(run_id, k)] for k in sorted(keys)}


def log_figures(store: TrackingStore, run_id: str, sampler: Any, ctx: Any) -> dict[str, str]:
    """Every applicable evaluation figure, in one upload; returns {figure: artifact path}."""
    artifacts, made = make_figures(sampler, ctx, training_history(store, run_id))
    if artifacts:
        with tempfile.TemporaryDirectory() as tmp:
            for path, obj in artifacts.items():
                write_artifact(Path(tmp), path, obj)
            store.client().log_artifacts(run_id, tmp)
    return made


def log_evaluation(
    store: TrackingStore,
    run_id: str,
    sampler: Any,
    ctx: Any,
    values: dict[str, float],
    info: dict[str, Any],
    step: int,
    compute_s: float,
) -> dict[str, str]:
    """The whole evaluation record of a run; returns {figure or card: artifact path}."""
    runs.log_metrics(store, run_id, {**{f"eval.{k}": v for k, v in values.items()}, "time.evaluate_compute_s": compute_s}, step=step)
    runs.log_dict(store, run_id, {"values": values, "info": info}, "eval/metrics.json")
    if sampler.output_kind == "images":
        real = ctx.split("test") if sampler.needs_inputs else None
        runs.log_image(store, run_id, image_grid(sampler.preview(64, seed=ctx.seed, real=real)), "eval/samples.png")
    elif sampler.output_kind == "points":
        picture = sample_picture(sampler.preview(seed=ctx.seed), real=ctx.heldout.get("x"))
        runs.log_image(store, run_id, picture, "eval/samples.png")
    paths = log_figures(store, run_id, sampler, ctx)
    cards.card_for_run(store, run_id, values, info)
    return {**paths, "card": cards.CARD_PATH}
