"""Model cards: what a person needs to judge a registered generator.

`card_for_run` (evaluation stage, after the figures are logged) writes a first card to the run;
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
from typing import Any, Iterator

from ganpipe.tracking.store import TrackingStore

log = logging.getLogger("ganpipe")

CARD_PATH = "card/model_card.md"
MAX_DESCRIPTION = 4900  # the SQL stores cap a version description at 5000 characters
ORIGINAL_TAG = "card.description"
PROGRESS_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
CONFIG_KEYS = (
    "data.source", "data.image_size", "data.channels", "model.family", "model.z_dim", "model.params",
    "loss.name", "loss.n_critic", "optim.lr_g", "optim.lr_d", "train.steps", "train.batch_size",
    "train.num_workers", "eval.metrics", "eval.num_samples", "registry.gate_metric", "registry.mode",
)  # fmt: skip

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


def artifact_url(run_id: str, path: str) -> str:
    """The URL of a run artifact as the MLflow UI fetches it (its `get-artifact` route),
    relative so that it resolves against the server the card is viewed on, under any static
    prefix. The UI renders version descriptions as sanitized markdown that keeps `<img src>`."""
    from urllib.parse import urlencode

    return "get-artifact?" + urlencode({"path": path, "run_uuid": run_id})


def serving_example(name: str, version: str | None, run_id: str, needs_inputs: bool = False) -> list[str]:
    """Markdown: serve this model with `mlflow models serve` and ask it for samples. The fields
    are the pyfunc signature's (tracking/pyfunc.py): `n`, optional `seed`, `labels`,
    `truncation`, `direction`, `inputs`."""
    uri = f"models:/{name}/{version}" if version else f"runs:/{run_id}/generator"
    record: dict[str, Any] = {"n": 4, "seed": 0}
    if needs_inputs:
        record["inputs"] = ["<one input image, C*H*W floats in [-1, 1]>"]
    body = json.dumps({"dataframe_records": [record]})
    return [
        "## Serving",
        "",
        "```bash",
        f"mlflow models serve -m {uri} -p 5001 --env-manager local   # MLFLOW_TRACKING_URI set to this store",
        "curl -s http://127.0.0.1:5001/invocations -H 'Content-Type: application/json' -d @request.json",
        "```",
        "",
        "`request.json`:",
        "",
        "```json",
        body,
        "```",
        "",
        "Optional fields: `seed` (same seed, same samples), `labels` (one class id per sample, conditional families), "
        "`truncation` (BigGAN), `direction` (CycleGAN: `AtoB` or `BtoA`), `inputs` (translators: flattened input images). "
        "The answer is `{\"predictions\": [...]}`: images N x C x H x W in [-1, 1], or N x 2 points.",
        "",
    ]


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
    needs_inputs: bool = False,
) -> str:
    """A markdown model card: identity, lineage, metrics beside floors, figures (shown by the
    MLflow UI), an example request for `mlflow models serve`, config."""
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
        for label, path in sorted(artifacts.items()):
            text = label.replace("_", " ")
            lines += [f"**{text}** (`runs:/{run_id}/{path}`)", "", f"![{text}]({artifact_url(run_id, path)})", ""]
    lines += serving_example(name, version, run_id, needs_inputs=needs_inputs)
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


def _eval_record(store: TrackingStore, run_id: str) -> tuple[dict[str, float], dict[str, Any]]:
    """(values, info) from the run's eval/metrics.json, else its eval.* metrics."""
    c = store.client()
    try:
        with tempfile.TemporaryDirectory() as tmp, _quiet_downloads():
            rec = json.loads(Path(c.download_artifacts(run_id, "eval/metrics.json", tmp)).read_text())
        return rec.get("values", {}), rec.get("info", {})
    except Exception:
        metrics = c.get_run(run_id).data.metrics
        return {k[len("eval.") :]: v for k, v in metrics.items() if k.startswith("eval.")}, {}


def _figure_paths(store: TrackingStore, run_id: str) -> dict[str, str]:
    c = store.client()
    out = {}
    for folder in ("eval", "plots"):
        for a in c.list_artifacts(run_id, folder):
            if a.path.endswith(".png"):
                out[Path(a.path).stem] = a.path
    return out


def _needs_inputs(family: str) -> bool:
    """Whether the family's sampler needs input images (translators); False when unknown."""
    try:
        from ganpipe.gans import SAMPLERS  # the package registers every family

        return bool(SAMPLERS.get(family).needs_inputs)
    except Exception:
        return False


# Version tags (register_stage) that stand in for run tags a run lacks.
VERSION_TAGS = {"family": "family", "loss": "loss", "dataset": "dataset", "data.dvc_md5": "data_version", "data.fingerprint": "data_fingerprint"}


def _card_for_run(store: TrackingStore, run_id: str, values: dict[str, float], info: dict[str, Any], version_tags: dict[str, str] | None = None, **extra: Any) -> str:
    r = store.client().get_run(run_id)
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
        artifacts=_figure_paths(store, run_id),
        run_id=run_id,
        needs_inputs=_needs_inputs(tags.get("family", params.get("model.family", ""))),
        **extra,
    )


def card_for_run(store: TrackingStore, run_id: str, values: dict[str, float], info: dict[str, Any]) -> str:
    """Evaluation stage: the run's first card (no version yet), logged beside its figures."""
    name = store.client().get_run(run_id).data.tags.get("mlflow.runName", run_id)
    card = _card_for_run(store, run_id, values, info, name=name, version=None)
    store.client().log_text(run_id, card, CARD_PATH)
    return card


def card_for_version(store: TrackingStore, name: str, version: str) -> str:
    """Registration stage: the version's card, set as its description and logged to its run."""
    c = store.client()
    mv = c.get_model_version(name, str(version))
    aliases = [a for a, v in (c.get_registered_model(name).aliases or {}).items() if str(v) == str(mv.version)]
    values, info = _eval_record(store, mv.run_id)
    if not values:
        values = {k[len("metric.") :]: float(v) for k, v in mv.tags.items() if k.startswith("metric.")}
    gate = (mv.tags["gate.metric"], mv.tags.get("gate.mode", "min")) if "gate.metric" in mv.tags else None
    original = mv.tags.get(ORIGINAL_TAG)
    if original is None:  # first card: keep the registration description, the card replaces it
        original = mv.description or ""
        c.set_model_version_tag(name, str(mv.version), ORIGINAL_TAG, original[:4900])
    card = _card_for_run(store, mv.run_id, values, info, mv.tags, name=name, version=str(mv.version), aliases=sorted(aliases), gate=gate, description=original)
    c.log_text(mv.run_id, card, CARD_PATH)
    short = card if len(card) <= MAX_DESCRIPTION else card[: MAX_DESCRIPTION - 80].rsplit("\n", 1)[0] + f"\n\n(cut here; full card: `runs:/{mv.run_id}/{CARD_PATH}`)"
    c.update_model_version(name, str(mv.version), description=short)
    return card
