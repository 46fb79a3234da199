"""Model Registry: register versions with their metrics, gate promotion with aliases.

The gate moves alias `champion` only when the new version beats the current champion on
the gate metric; otherwise the version gets `challenger`. Every alias move is recorded on
the version as a tag line (who, when, why).
"""

from __future__ import annotations

import getpass
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ganpipe.errors import GanpipeError
from ganpipe.tracking.runs import client

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


def champion(name: str) -> Any | None:
    try:
        return client().get_model_version_by_alias(name, CHAMPION)
    except Exception:
        return None


def better(new: float, old: float | None, mode: str) -> bool:
    if old is None or math.isnan(old):
        return True
    return new < old if mode == "min" else new > old


def record_alias(name: str, version: str, alias: str, why: str) -> None:
    client().set_registered_model_alias(name, alias, version)
    record_history(name, version, f"-> {alias} ({why})")


def record_history(name: str, version: str, event: str) -> None:
    """Append 'when who: event' to the version's alias_history tag."""
    c = client()
    who = getpass.getuser()
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    mv = c.get_model_version(name, version)
    history = mv.tags.get("alias_history", "")
    line = f"{when} {who}: {event}"
    c.set_model_version_tag(name, version, "alias_history", (history + "\n" + line).strip()[-4900:])


def register(
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
    import mlflow

    from ganpipe.tracking.store import tracking_uri

    if gate_metric not in metrics:
        raise GanpipeError(f"gate metric {gate_metric!r} was not computed (have: {', '.join(sorted(metrics))})", hint="add it to eval.metrics")
    c = client()
    try:
        c.get_registered_model(name)
    except Exception:
        c.create_registered_model(name, description=f"ganpipe generator: {name}")
    mlflow.set_tracking_uri(tracking_uri())
    all_tags = {**tags, **{f"metric.{k}": f"{v:.6g}" for k, v in metrics.items()}, "gate.metric": gate_metric, "gate.mode": mode}
    mv = c.create_model_version(name, model_uri, run_id=run_id, tags=all_tags, description=description)
    new = float(metrics[gate_metric])
    champ = champion(name)
    old = _metric_of(champ, gate_metric) if champ else None
    if better(new, old, mode):
        alias = CHAMPION
        why = f"{gate_metric}={new:.4g} " + (f"beats v{champ.version} ({old:.4g})" if champ else "first version")
        if champ is not None:
            record_history(name, champ.version, f"lost {CHAMPION} to v{mv.version}")
    else:
        alias = CHALLENGER
        why = f"{gate_metric}={new:.4g} does not beat champion v{champ.version} ({old:.4g})"
    record_alias(name, mv.version, alias, f"gate: {why}")
    return Registration(name, str(mv.version), alias, new, str(champ.version) if champ else None, old, why)


def list_models() -> list[dict[str, Any]]:
    """Registered ganpipe models with their versions, aliases and metrics."""
    c = client()
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
