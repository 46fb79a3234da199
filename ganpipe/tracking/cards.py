"""Model cards and evaluation figures: what a person needs to judge a registered generator.

`enrich_run` (evaluation stage) logs the figures and a first card to the run;
`card_for_version` (registration stage, or later) writes the version's card, with its
aliases, into the version description that the MLflow UI shows and into the run's artifacts.
Each metric is listed beside its real-vs-real floor or reference, its extractor and sample
count, because a bare FID/FCD number means little without them.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from PIL import Image

from ganpipe.errors import GanpipeError
from ganpipe.evaluate import latent, plots
from ganpipe.catalog import Catalog
from ganpipe.tracking.runs import client
from ganpipe.viz import image_grid

log = logging.getLogger("ganpipe")

CARD_PATH = "card/model_card.md"
MAX_DESCRIPTION = 4900  # the SQL stores cap a version description at 5000 characters
TRUNCATIONS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
SWEEP_SAMPLES = 500
ORIGINAL_TAG = "card.description"
PROGRESS_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
CONFIG_KEYS = (
    "data.source", "data.image_size", "data.channels", "model.family", "model.z_dim", "model.params",
    "loss.name", "loss.n_critic", "optim.lr_g", "optim.lr_d", "train.steps", "train.batch_size",
    "train.num_workers", "eval.metrics", "eval.num_samples", "registry.gate_metric", "registry.mode",
)  # fmt: skip

Artifacts = dict[str, Any]  # artifact path -> matplotlib Figure | HxW(xC) uint8 array | dict (JSON)
FigureFn = Callable[[Any, Any, plots.History], Artifacts]
FIGURES: Catalog[FigureFn] = Catalog("evaluation figure")


# ------------------------------------------------------------------------------- figures


def _grid(images: Any, nrow: int) -> np.ndarray:
    return image_grid(images, nrow=nrow, upscale=max(1, 64 // images.shape[-1]))


@FIGURES.register("interpolation")
def _interpolation(sampler: Any, ctx: Any, history: plots.History) -> Artifacts:
    if not sampler.spec.get("z_dim") or sampler.output_kind != "images":
        return {}
    walk = latent.interpolation_walk(sampler, steps=10, rows=min(8, max(4, sampler.num_classes)), seed=ctx.seed)
    return {"eval/interpolation.png": _grid(walk.flatten(0, 1), nrow=walk.shape[1])}


@FIGURES.register("class_grid")
def _class_grid(sampler: Any, ctx: Any, history: plots.History) -> Artifacts:
    if not sampler.num_classes or sampler.output_kind != "images":
        return {}
    grid = latent.class_grid(sampler, per_class=10, seed=ctx.seed)
    return {"eval/class_grid.png": _grid(grid.flatten(0, 1), nrow=grid.shape[1])}


@FIGURES.register("truncation_sweep")
def _truncation(sampler: Any, ctx: Any, history: plots.History) -> Artifacts:
    if not latent.accepts(sampler, "truncation") or not ctx.manifest.get("num_classes"):
        return {}
    from dataclasses import replace

    small = replace(ctx, num_samples=min(ctx.num_samples, SWEEP_SAMPLES))
    rows = latent.truncation_sweep(sampler, list(TRUNCATIONS), small)
    return {"eval/truncation_sweep.png": plots.truncation_sweep(rows), "eval/truncation_sweep.json": {"rows": rows, "n": small.num_samples}}


def _paired_rows(sampler: Any, held: dict[str, Any], n: int, seed: int) -> list[Any]:
    x, y = held["image"][:n], held["target"][:n]
    return [x, sampler.generate(n, seed=seed, inputs=x), y]  # input, output, target


def _unpaired_rows(sampler: Any, held: dict[str, Any], n: int, seed: int) -> list[Any]:
    x = held["image"][:n]
    out = sampler.generate(n, seed=seed, inputs=x, direction="AtoB")
    return [x, out, sampler.generate(n, seed=seed, inputs=out, direction="BtoA")]  # input, output, cycle


TRIPLETS: dict[str, Callable[..., list[Any]]] = {"paired": _paired_rows, "unpaired": _unpaired_rows}


@FIGURES.register("triplets")
def _triplets(sampler: Any, ctx: Any, history: plots.History) -> Artifacts:
    make = TRIPLETS.get(ctx.manifest.get("kind", ""))
    if make is None:
        return {}
    n = min(8, len(ctx.heldout["image"]))
    cols = make(sampler, ctx.heldout, n, ctx.seed)
    channels = max(c.shape[1] for c in cols)
    cols = [c.expand(-1, channels, -1, -1) if c.shape[1] == 1 else c for c in cols]
    import torch

    rows = torch.stack(cols, dim=1).flatten(0, 1)  # n x 3 triplets, one per grid row
    return {"eval/triplets.png": _grid(rows, nrow=3)}


@FIGURES.register("losses")
def _losses(sampler: Any, ctx: Any, history: plots.History) -> Artifacts:
    return {"plots/losses.png": plots.curves(history, "training curves")} if history else {}


def _write(root: Path, path: str, obj: Any) -> None:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(obj, dict):
        target.write_text(json.dumps(obj, indent=2))
    elif isinstance(obj, np.ndarray):
        Image.fromarray(obj).save(target)
    else:
        target.write_bytes(plots.to_png(obj))


def log_eval_figures(run_id: str, sampler: Any, ctx: Any, metric_history: plots.History) -> dict[str, str]:
    """Make every applicable figure and log them in one upload; returns {figure: artifact path}.

    Figures are extras: one that fails is logged as a warning and skipped, never failing
    an evaluation that already produced its metrics.
    """
    made: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in FIGURES:
            try:
                artifacts = FIGURES.get(name)(sampler, ctx, metric_history)
            except Exception as e:
                log.warning("figure %s skipped: %s: %s", name, type(e).__name__, e, exc_info=not isinstance(e, GanpipeError))
                continue
            for path, obj in artifacts.items():
                _write(Path(tmp), path, obj)
                made[name if path.endswith(".png") else f"{name}.json"] = path
        if made:
            client().log_artifacts(run_id, tmp)
    return made


def training_history(run_id: str) -> plots.History:
    """{key: [(step, value)]} for the run's training metrics (eval.*, time.* and system metrics left out)."""
    c = client()
    keys = [k for k in c.get_run(run_id).data.metrics if not k.startswith(("eval.", "system/", "time."))]
    return {k: [(m.step, m.value) for m in c.get_metric_history(run_id, k)] for k in sorted(keys)}


# ---------------------------------------------------------------------------------- cards


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


REFERENCE_SUFFIXES = ("_floor", "_real", "_std", "_baseline")


def _is_reference(key: str, values: dict[str, float]) -> bool:
    return key.endswith(REFERENCE_SUFFIXES) and key.rsplit("_", 1)[0] in values


def metric_rows(values: dict[str, float], info: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(metric, value, floor or reference, extractor, samples); references sit beside their metric."""
    rows = []
    for key, value in values.items():
        if _is_reference(key, values):
            continue
        owner = next((n for n in info if key == n or key.startswith(f"{n}_")), None)
        meta = info.get(owner, {}) if owner else {}
        floor = meta.get("floor", meta.get("reference"))
        ref = floor.get(key) if isinstance(floor, dict) else (floor if key == owner else None)
        if ref is None:
            ref = next((values[key + s] for s in REFERENCE_SUFFIXES if s != "_std" and key + s in values), None)
        extractor = str(meta.get("extractor", meta.get("distance", "")))
        n = str(meta.get("n_fake", meta.get("n", "")))
        rows.append((key, _fmt(value), "" if ref is None else _fmt(ref), extractor, n))
    return rows


def build_card(
    *,
    name: str,
    version: str | None,
    family: str,
    loss: str,
    data: dict[str, str],
    config: dict[str, Any],
    values: dict[str, float],
    info: dict[str, Any],
    artifacts: dict[str, str],
    run_id: str,
    aliases: list[str] | None = None,
    gate: tuple[str, str] | None = None,
    description: str = "",
) -> str:
    """A markdown model card: identity, lineage, metrics beside floors, figures, config."""
    title = f"{name} v{version}" if version else name
    lines = [f"# Model card: {title}", ""]
    if description:
        lines += [description.strip(), ""]
    facts = [
        ("family", family),
        ("loss", loss),
        ("data", ", ".join(f"{k} {v}" for k, v in data.items() if v)),
        ("aliases", ", ".join(aliases or []) or "-"),
        ("run", run_id),
    ]
    lines += ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in facts), ""]
    lines += ["## Metrics", "", "| metric | value | floor / reference | extractor | samples |", "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(r)} |" for r in metric_rows(values, info)]
    if gate:
        lines += ["", f"Promotion gate: `{gate[0]}`, {'lower' if gate[1] == 'min' else 'higher'} is better."]
    lines += ["", "Floors compare real images with real images at the same sample count: no generator is expected to beat them.", ""]
    if artifacts:
        lines += ["## Figures", ""]
        lines += [f"- {label.replace('_', ' ')}: `runs:/{run_id}/{path}`" for label, path in sorted(artifacts.items())]
        lines.append("")
    rows = [(k, config[k]) for k in CONFIG_KEYS if k in config]
    if rows:
        lines += ["## Config", "", "| key | value |", "|---|---|", *(f"| {k} | `{v}` |" for k, v in rows), ""]
    return "\n".join(lines)


@contextmanager
def _quiet_downloads() -> Iterator[None]:
    """No MLflow download progress bar in the middle of a command's output."""
    old = os.environ.get(PROGRESS_ENV)
    os.environ[PROGRESS_ENV] = "false"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(PROGRESS_ENV, None)
        else:
            os.environ[PROGRESS_ENV] = old


def _eval_record(run_id: str) -> tuple[dict[str, float], dict[str, Any]]:
    """(values, info) from the run's eval/metrics.json, else its eval.* metrics."""
    c = client()
    try:
        with tempfile.TemporaryDirectory() as tmp, _quiet_downloads():
            rec = json.loads(Path(c.download_artifacts(run_id, "eval/metrics.json", tmp)).read_text())
        return rec.get("values", {}), rec.get("info", {})
    except Exception:
        metrics = c.get_run(run_id).data.metrics
        return {k[len("eval.") :]: v for k, v in metrics.items() if k.startswith("eval.")}, {}


def _figure_paths(run_id: str) -> dict[str, str]:
    c = client()
    out = {}
    for folder in ("eval", "plots"):
        for a in c.list_artifacts(run_id, folder):
            if a.path.endswith(".png"):
                out[Path(a.path).stem] = a.path
    return out


# Version tags (register_stage) that stand in for run tags a run lacks.
VERSION_TAGS = {"family": "family", "loss": "loss", "dataset": "dataset", "data.dvc_md5": "data_version", "data.fingerprint": "data_fingerprint"}


def _card_for_run(run_id: str, values: dict[str, float], info: dict[str, Any], version_tags: dict[str, str] | None = None, **extra: Any) -> str:
    r = client().get_run(run_id)
    params = r.data.params
    fallback = {k: (version_tags or {}).get(v, "") for k, v in VERSION_TAGS.items()}
    tags = {**{k: v for k, v in fallback.items() if v}, **r.data.tags}
    data = {
        "set": tags.get("dataset", ""),
        "source": tags.get("data.source", ""),
        "DVC md5": tags.get("data.dvc_md5", "")[:12],
        "fingerprint": tags.get("data.fingerprint", "")[:12],
    }
    extra.setdefault("gate", (params["registry.gate_metric"], params.get("registry.mode", "min")) if "registry.gate_metric" in params else None)
    return build_card(
        family=tags.get("family", params.get("model.family", "")),
        loss=tags.get("loss", params.get("loss.name", "")),
        data=data,
        config=params,
        values=values,
        info=info,
        artifacts=_figure_paths(run_id),
        run_id=run_id,
        **extra,
    )


def enrich_run(run_id: str, sampler: Any, ctx: Any, values: dict[str, float], info: dict[str, Any]) -> dict[str, str]:
    """Evaluation stage: log figures and a first model card to the run; returns artifact paths."""
    paths = log_eval_figures(run_id, sampler, ctx, training_history(run_id))
    name = client().get_run(run_id).data.tags.get("mlflow.runName", run_id)
    client().log_text(run_id, _card_for_run(run_id, values, info, name=name, version=None), CARD_PATH)
    return {**paths, "card": CARD_PATH}


def card_for_version(name: str, version: str) -> str:
    """Registration stage: the version's card, set as its description and logged to its run."""
    c = client()
    mv = c.get_model_version(name, str(version))
    aliases = [a for a, v in (c.get_registered_model(name).aliases or {}).items() if str(v) == str(mv.version)]
    values, info = _eval_record(mv.run_id)
    if not values:
        values = {k[len("metric.") :]: float(v) for k, v in mv.tags.items() if k.startswith("metric.")}
    gate = (mv.tags["gate.metric"], mv.tags.get("gate.mode", "min")) if "gate.metric" in mv.tags else None
    original = mv.tags.get(ORIGINAL_TAG)
    if original is None:  # first card: keep the registration description, the card replaces it
        original = mv.description or ""
        c.set_model_version_tag(name, str(mv.version), ORIGINAL_TAG, original[:4900])
    card = _card_for_run(mv.run_id, values, info, mv.tags, name=name, version=str(mv.version), aliases=sorted(aliases), gate=gate, description=original)
    c.log_text(mv.run_id, card, CARD_PATH)
    short = card if len(card) <= MAX_DESCRIPTION else card[: MAX_DESCRIPTION - 80].rsplit("\n", 1)[0] + f"\n\n(cut here; full card: `runs:/{mv.run_id}/{CARD_PATH}`)"
    c.update_model_version(name, str(mv.version), description=short)
    return card
