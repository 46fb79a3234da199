"""Model Registry: register versions with their metrics, gate promotion with aliases.

The gate moves alias `champion` only when the new version beats the current champion on
the gate metric; otherwise the version gets `challenger`. Every alias move is recorded on
the version as a tag line (who, when, why).
"""

from __future__ import annotations

import getpass
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ganpipe.errors import GanpipeError
from ganpipe.tracking.store import TrackingStore

CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass
class Registration:
    name: str
    version: str
    alias: str
    metric: float
    previous_champion: str | None
    previous_metric: float | None
    reason: str


def _metric_of(version: Any, metric: str) -> float | None:
    v = version.tags.get(f"metric.{metric}")
    return float(v) if v is not None else None


def champion(store: TrackingStore, name: str) -> Any | None:
    try:
        return store.client().get_model_version_by_alias(name, CHAMPION)
    except Exception:
        return None


def better(new: float, old: float | None, mode: str) -> bool:
    if old is None or math.isnan(old):
        return True
    return new < old if mode == "min" else new > old


def record_alias(store: TrackingStore, name: str, version: str, alias: str, why: str) -> None:
    store.client().set_registered_model_alias(name, alias, version)
    record_history(store, name, version, f"-> {alias} ({why})")


def record_history(store: TrackingStore, name: str, version: str, event: str) -> None:
    """Append 'when who: event' to the version's alias_history tag."""
    c = store.client()
    who = getpass.getuser()
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    mv = c.get_model_version(name, version)
    history = mv.tags.get("alias_history", "")
    line = f"{when} {who}: {event}"
    c.set_model_version_tag(name, version, "alias_history", (history + "\n" + line).strip()[-4900:])


def register(
    store: TrackingStore,
    name: str,
    model_uri: str,
    run_id: str,
    metrics: dict[str, float],
    gate_metric: str,
    mode: str,
    tags: dict[str, str],
    description: str = "",
) -> Registration:
    """Register `model_uri` as a new version of `name` and apply the promotion gate."""
    if gate_metric not in metrics:
        raise GanpipeError(f"gate metric {gate_metric!r} was not computed (have: {', '.join(sorted(metrics))})", hint="add it to eval.metrics")
    c = store.client()
    try:
        c.get_registered_model(name)
    except Exception:
        c.create_registered_model(name, description=f"ganpipe generator: {name}")
    all_tags = {**tags, **{f"metric.{k}": f"{v:.6g}" for k, v in metrics.items()}, "gate.metric": gate_metric, "gate.mode": mode}
    # A logged model's URI (models:/m-<id>) must come with its id: a tracking server refuses the
    # source alone ("the model_id request parameter must identify the resource"); SQLite took it.
    model_id = model_uri[len("models:/") :].split("/")[0] if model_uri.startswith("models:/m-") else None
    with store.active():  # a models:/ or runs:/ source is resolved against the fluent API's store
        mv = c.create_model_version(name, model_uri, run_id=run_id, tags=all_tags, description=description, model_id=model_id)
    new = float(metrics[gate_metric])
    champ = champion(store, name)
    old = _metric_of(champ, gate_metric) if champ else None
    if better(new, old, mode):
        alias = CHAMPION
        why = f"{gate_metric}={new:.4g} " + (f"beats v{champ.version} ({old:.4g})" if champ else "first version")
        if champ is not None:
            record_history(store, name, champ.version, f"lost {CHAMPION} to v{mv.version}")
    else:
        alias = CHALLENGER
        why = f"{gate_metric}={new:.4g} does not beat champion v{champ.version} ({old:.4g})"
    record_alias(store, name, mv.version, alias, f"gate: {why}")
    return Registration(name, str(mv.version), alias, new, str(champ.version) if champ else None, old, why)


def list_models(store: TrackingStore) -> list[dict[str, Any]]:
    """Registered ganpipe models with their versions, aliases and metrics."""
    c = store.client()
    out = []
    for rm in c.search_registered_models():
        aliases: dict[str, list[str]] = {}
        for a, v in (rm.aliases or {}).items():
            aliases.setdefault(str(v), []).append(a)
        versions = []
        for mv in c.search_model_versions(f"name = '{rm.name}'"):
            versions.append(
                {
                    "version": str(mv.version),
                    "aliases": aliases.get(str(mv.version), []),
                    "metrics": {k[len("metric.") :]: v for k, v in mv.tags.items() if k.startswith("metric.")},
                    "run_id": mv.run_id,
                    "family": mv.tags.get("family", ""),
                    "created": mv.creation_timestamp,
                }
            )
        versions.sort(key=lambda v: int(v["version"]))
        out.append({"name": rm.name, "versions": versions})
    return out


# -- browsing and managing versions ---------------------------------------------------------

# Which way is better for metrics other than the gate metric (whose mode the version records).
DIRECTIONS = {
    "fcd": "min", "fid": "min", "kid": "min", "kid_classifier": "min", "swd": "min", "target_swd": "min",
    "l1": "min", "cycle_l1": "min", "memorisation_share": "min",
    "is": "max", "cis": "max", "cond_acc": "max", "precision": "max", "recall": "max", "coverage": "max",
    "psnr": "max", "ssim": "max", "modes_covered": "max", "high_quality_share": "max",
}  # fmt: skip
FLOOR_SUFFIXES = ("_floor", "_real", "_baseline")
_LINE = re.compile(r"^(\S+) (\S+?): (.*)$")
_LOST = re.compile(r"lost champion to v(\d+)\b")


@dataclass
class Promotion:
    name: str
    version: str
    previous_champion: str | None
    reason: str


def get_version(store: TrackingStore, name: str, version: str | int) -> Any:
    try:
        return store.client().get_model_version(name, str(version))
    except Exception:
        raise GanpipeError(f"model {name!r} has no version {version}", hint="see the versions with `ganpipe registry show NAME`") from None


def resolve_version(store: TrackingStore, model_uri: str) -> Any:
    """The registry version behind models:/NAME/VERSION or models:/NAME@ALIAS."""
    m = re.fullmatch(r"models:/([^/@]+)(?:/(\d+)|@([\w-]+))", model_uri.strip())
    if not m:
        raise GanpipeError(f"not a registry model URI: {model_uri!r}", hint="use models:/NAME/VERSION or models:/NAME@champion")
    name, version, alias = m.groups()
    if version:
        return get_version(store, name, version)
    try:
        return store.client().get_model_version_by_alias(name, alias)
    except Exception:
        raise GanpipeError(f"model {name!r} has no alias {alias!r}", hint="see the aliases with `ganpipe registry show NAME`") from None


def _aliases(store: TrackingStore, name: str) -> dict[str, list[str]]:
    """version -> its aliases."""
    out: dict[str, list[str]] = {}
    for alias, v in (store.client().get_registered_model(name).aliases or {}).items():
        out.setdefault(str(v), []).append(alias)
    return out


def _versions(store: TrackingStore, name: str) -> list[Any]:
    try:
        store.client().get_registered_model(name)
    except Exception:
        raise GanpipeError(f"no registered model {name!r}", hint="see the names with `ganpipe registry list`") from None
    return sorted(store.client().search_model_versions(f"name = '{name}'"), key=lambda mv: int(mv.version))


def _history(mv: Any) -> list[dict[str, str]]:
    out = []
    for line in filter(None, mv.tags.get("alias_history", "").splitlines()):
        m = _LINE.match(line)
        when, who, event = m.groups() if m else ("", "", line)
        out.append({"when": when, "who": who, "version": str(mv.version), "event": event})
    return out


def metric_values(mv: Any) -> dict[str, float]:
    return {k[len("metric.") :]: float(v) for k, v in mv.tags.items() if k.startswith("metric.")}


def metrics_with_floors(metrics: dict[str, float]) -> list[tuple[str, float, float | None]]:
    """(metric, value, floor or reference) with the floors folded into their metric's row."""
    rows = []
    for k, v in sorted(metrics.items()):
        if k.endswith(FLOOR_SUFFIXES) and k.rsplit("_", 1)[0] in metrics:
            continue
        floor = next((metrics[k + s] for s in FLOOR_SUFFIXES if k + s in metrics), None)
        rows.append((k, v, floor))
    return rows


def show(store: TrackingStore, name: str) -> dict[str, Any]:
    """Everything about one model: versions with metrics, floors, aliases and tags, the alias
    history of all versions in time order, and the champion's (else the latest) card."""
    versions = _versions(store, name)
    aliases = _aliases(store, name)
    hidden = ("alias_history", "card.description")
    rows = [
        {
            "version": str(mv.version),
            "aliases": sorted(aliases.get(str(mv.version), [])),
            "created": datetime.fromtimestamp(mv.creation_timestamp / 1000, timezone.utc).isoformat(timespec="seconds"),
            "run_id": mv.run_id,
            "metrics": metrics_with_floors(metric_values(mv)),
            "tags": {k: v for k, v in sorted(mv.tags.items()) if not k.startswith("metric.") and k not in hidden},
            "description": mv.description or "",
        }
        for mv in versions
    ]
    history = sorted((h for mv in versions for h in _history(mv)), key=lambda h: (h["when"], int(h["version"])))
    champ = next((r for r in rows if CHAMPION in r["aliases"]), rows[-1] if rows else None)
    return {"name": name, "versions": rows, "history": history, "card": champ["description"] if champ else ""}


def _direction(metric: str, gate_metric: str | None, mode: str) -> str | None:
    return mode if metric == gate_metric else DIRECTIONS.get(metric)


def compare(store: TrackingStore, name: str, v1: str, v2: str) -> dict[str, Any]:
    """Metric-by-metric comparison; `better` names the better version where a direction is known
    (the gate mode for the gate metric, the usual direction for the others)."""
    a, b = get_version(store, name, v1), get_version(store, name, v2)
    gate_metric = b.tags.get("gate.metric") or a.tags.get("gate.metric")
    mode = b.tags.get("gate.mode") or a.tags.get("gate.mode") or "min"
    ma, mb = metric_values(a), metric_values(b)
    rows = []
    for k in sorted(set(ma) | set(mb)):
        x, y = ma.get(k), mb.get(k)
        d = _direction(k, gate_metric, mode)
        verdict = ""
        if d and x is not None and y is not None:
            verdict = "same" if x == y else (str(a.version) if better(x, y, d) else str(b.version))
        rows.append({"metric": k, "a": x, "b": y, "direction": d or "", "better": verdict, "gate": k == gate_metric})
    return {"name": name, "a": str(a.version), "b": str(b.version), "gate_metric": gate_metric, "mode": mode, "rows": rows}


def _hand_over(store: TrackingStore, name: str, old: Any | None, new_version: str, why: str) -> None:
    """Move `champion` to new_version; the loser and the winner both record the move."""
    if old is not None:
        record_history(store, name, str(old.version), f"lost {CHAMPION} to v{new_version} ({why})")
    if CHALLENGER in _aliases(store, name).get(str(new_version), []):
        store.client().delete_registered_model_alias(name, CHALLENGER)
        why += f"; {CHALLENGER} alias cleared"
    record_alias(store, name, str(new_version), CHAMPION, why)


def promote(store: TrackingStore, name: str, version: str, force: bool = False, reason: str = "") -> Promotion:
    """Make `version` the champion if it beats the current one on the gate metric.

    With force it is promoted anyway, but only with a reason: the history must say why.
    """
    mv = get_version(store, name, version)
    champ = champion(store, name)
    if champ is not None and str(champ.version) == str(mv.version):
        raise GanpipeError(f"v{mv.version} is already the {CHAMPION} of {name}")
    if force and not reason.strip():
        raise GanpipeError("a forced promotion needs a reason", hint="add --reason '...'")
    metric = mv.tags.get("gate.metric") or (champ.tags.get("gate.metric") if champ else None)
    mode = mv.tags.get("gate.mode", "min")
    new = _metric_of(mv, metric) if metric else None
    old = _metric_of(champ, metric) if champ is not None and metric else None
    against = f"v{champ.version} ({old:.4g})" if champ is not None and old is not None else "no champion"
    if new is None:
        verdict, ok = f"v{mv.version} has no gate metric {metric!r}", False
    elif better(new, old, mode):
        verdict, ok = f"{metric}={new:.4g} beats {against}", True
    else:
        verdict, ok = f"{metric}={new:.4g} does not beat {against} ({'lower' if mode == 'min' else 'higher'} is better)", False
    if not ok and not force:
        raise GanpipeError(f"gate refused v{mv.version} of {name}: {verdict}", hint="pass --force --reason '...' to promote anyway")
    why = f"promote: {verdict}" + ("" if ok else ", forced") + (f"; reason: {reason.strip()}" if reason.strip() else "")
    _hand_over(store, name, champ, str(mv.version), why)
    return Promotion(name, str(mv.version), str(champ.version) if champ else None, why)


def previous_champion(store: TrackingStore, name: str, current: str) -> str | None:
    """The version that lost `champion` to `current` most recently, by the alias history.

    Moves made by a rollback are skipped, so repeated rollbacks walk further back.
    """
    found = []
    for mv in _versions(store, name):
        if str(mv.version) == str(current):
            continue
        for h in _history(mv):
            m = _LOST.search(h["event"])
            if m and m.group(1) == str(current) and "(rollback" not in h["event"]:
                found.append((h["when"], int(mv.version)))
    return str(max(found)[1]) if found else None


def _best_earlier(store: TrackingStore, name: str, current: Any) -> str | None:
    metric, mode = current.tags.get("gate.metric"), current.tags.get("gate.mode", "min")
    scored = [(float(mv.tags[f"metric.{metric}"]), int(mv.version)) for mv in _versions(store, name) if int(mv.version) < int(current.version) and f"metric.{metric}" in mv.tags]
    if not scored:
        return None
    return str((min(scored) if mode == "min" else max(scored))[1])


def rollback(store: TrackingStore, name: str, reason: str = "") -> Promotion:
    """Give `champion` back to the previous champion (alias history), else the best earlier version."""
    champ = champion(store, name)
    if champ is None:
        raise GanpipeError(f"model {name!r} has no {CHAMPION} to roll back", hint="promote a version first")
    target, how = previous_champion(store, name, champ.version), "previous champion"
    if target is None:
        target, how = _best_earlier(store, name, champ), "best earlier version on the gate metric"
    if target is None:
        raise GanpipeError(f"no earlier version of {name} to roll back to from v{champ.version}")
    why = f"rollback from v{champ.version} to {how} v{target}" + (f"; reason: {reason.strip()}" if reason.strip() else "")
    _hand_over(store, name, champ, target, why)
    return Promotion(name, target, str(champ.version), why)
