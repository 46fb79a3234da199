"""`ganpipe registry ...`: browse and manage the MLflow Model Registry."""

from __future__ import annotations

from typing import Any

import typer
from rich.markdown import Markdown
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from ganpipe.cli.common import app, console, err, handle_errors, load_project

registry_app = typer.Typer(help="Browse and manage the MLflow Model Registry.", no_args_is_help=True)
app.add_typer(registry_app, name="registry")

CARD_LINES = 40


def _num(v: Any) -> str:
    return "-" if v is None else f"{v:.4g}"


@registry_app.command("list")
@handle_errors
def registry_list() -> None:
    """Registered models, their versions, aliases and metrics."""
    from ganpipe.tracking.model_registry import list_models
    from ganpipe.tracking.store import mask

    store = load_project().store
    models = list_models(store)
    if not models:
        console.print(f"no registered models in {mask(store.uri)}")
        return
    for m in models:
        t = Table("version", "aliases", "family", "metrics", "run", title=m["name"])
        for v in m["versions"]:
            t.add_row(str(v["version"]), ", ".join(v["aliases"]), v["family"], ", ".join(f"{k}={v2}" for k, v2 in sorted(v["metrics"].items())), (v["run_id"] or "")[:12])
        console.print(t)


@registry_app.command("show")
@handle_errors
def registry_show(name: str = typer.Argument(..., help="Registered model name.")) -> None:
    """Versions, aliases, metrics beside their floors, tags, alias history and the card."""
    from ganpipe.tracking.model_registry import show

    s = show(load_project().store, name)
    versions = Table("version", "aliases", "created", "family", "loss", "data", "run", title=f"{name}: versions")
    for v in s["versions"]:
        tags = v["tags"]
        versions.add_row(v["version"], ", ".join(v["aliases"]) or "-", v["created"], tags.get("family", ""), tags.get("loss", ""), tags.get("dataset", ""), (v["run_id"] or "")[:12])
    console.print(versions)

    metrics = Table("version", "metric", "value", "floor / reference", title="metrics (floor: real vs real at the same sample count)")
    for v in s["versions"]:
        for i, (k, value, floor) in enumerate(v["metrics"]):
            metrics.add_row(v["version"] if i == 0 else "", k, _num(value), _num(floor))
        metrics.add_section()
    console.print(metrics)

    tags = Table("version", "tag", "value", title="tags")
    for v in s["versions"]:
        for i, (k, value) in enumerate(v["tags"].items()):
            tags.add_row(v["version"] if i == 0 else "", escape(k), escape(str(value)[:80]))
        tags.add_section()
    console.print(tags)

    history = Table("when", "who", "version", "event", title="alias history")
    for h in s["history"]:
        history.add_row(h["when"], escape(h["who"]), h["version"], escape(h["event"]))
    console.print(history)

    if s["card"]:
        lines = s["card"].splitlines()
        more = f"\n\n... {len(lines) - CARD_LINES} more lines" if len(lines) > CARD_LINES else ""
        console.print(Panel(Markdown("\n".join(lines[:CARD_LINES]) + more), title="model card"))


@registry_app.command("compare")
@handle_errors
def registry_compare(name: str, v1: str = typer.Argument(..., help="First version."), v2: str = typer.Argument(..., help="Second version.")) -> None:
    """Metric-by-metric comparison of two versions, naming the better one where that is defined."""
    from ganpipe.tracking.model_registry import compare

    c = compare(load_project().store, name, v1, v2)
    t = Table("metric", f"v{c['a']}", f"v{c['b']}", "better", "direction", title=f"{name}: v{c['a']} vs v{c['b']}")
    for r in c["rows"]:
        better = f"v{r['better']}" if r["better"] not in ("", "same") else r["better"]
        direction = {"min": "lower", "max": "higher"}.get(r["direction"], "")
        t.add_row(f"[bold]{r['metric']}[/] (gate)" if r["gate"] else r["metric"], _num(r["a"]), _num(r["b"]), better, direction)
    console.print(t)
    if c["gate_metric"]:
        console.print(f"gate: {c['gate_metric']} ({'lower' if c['mode'] == 'min' else 'higher'} is better)")


def _refresh_cards(store: Any, name: str, *versions: str | None) -> None:
    """The cards list aliases; an alias move already happened, so a card failure only warns."""
    from ganpipe.tracking.cards import card_for_version

    for v in filter(None, versions):
        try:
            card_for_version(store, name, v)
        except Exception as e:
            err.print(f"[yellow]warning:[/] card of v{v} not updated: {type(e).__name__}: {e}")


@registry_app.command("promote")
@handle_errors
def registry_promote(
    name: str,
    version: str,
    force: bool = typer.Option(False, "--force", help="Promote even if the gate metric is not better."),
    reason: str = typer.Option("", "--reason", help="Why (recorded in the alias history; required with --force)."),
) -> None:
    """Move alias champion to VERSION if it beats the current champion on the gate metric."""
    from ganpipe.tracking.model_registry import promote

    store = load_project().store
    p = promote(store, name, version, force=force, reason=reason)
    _refresh_cards(store, name, p.version, p.previous_champion)
    console.print(f"{name} v{p.version} is champion (was {'v' + p.previous_champion if p.previous_champion else 'none'}): {escape(p.reason)}")


@registry_app.command("rollback")
@handle_errors
def registry_rollback(name: str, reason: str = typer.Option("", "--reason", help="Why (recorded in the alias history).")) -> None:
    """Give alias champion back to the previous champion (or the best earlier version)."""
    from ganpipe.tracking.model_registry import rollback

    store = load_project().store
    p = rollback(store, name, reason=reason)
    _refresh_cards(store, name, p.version, p.previous_champion)
    console.print(f"{name}: champion rolled back from v{p.previous_champion} to v{p.version} ({escape(p.reason)})")
