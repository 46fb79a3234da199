"""`ganpipe registry ...`: browse and manage the MLflow Model Registry."""

from __future__ import annotations

import typer
from rich.table import Table

from ganpipe.cli import app, console, handle_errors

registry_app = typer.Typer(help="Browse and manage the MLflow Model Registry.", no_args_is_help=True)
app.add_typer(registry_app, name="registry")


@registry_app.command("list")
@handle_errors
def registry_list() -> None:
    """Registered models, their versions, aliases and metrics."""
    from ganpipe.tracking.registry import list_models
    from ganpipe.tracking.store import mask, tracking_uri

    models = list_models()
    if not models:
        console.print(f"no registered models in {mask(tracking_uri())}")
        return
    for m in models:
        t = Table("version", "aliases", "family", "metrics", "run", title=m["name"])
        for v in m["versions"]:
            t.add_row(str(v["version"]), ", ".join(v["aliases"]), v["family"], ", ".join(f"{k}={v2}" for k, v2 in sorted(v["metrics"].items())), (v["run_id"] or "")[:12])
        console.print(t)
