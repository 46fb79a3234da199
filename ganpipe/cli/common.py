"""Shared pieces of the `ganpipe` CLI: the root app, consoles and the error handler."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.console import Console

from ganpipe.errors import GanpipeError

app = typer.Typer(help="ganpipe: DVC data -> Ray Train GANs -> MLflow evaluation and registry, chained by Prefect.", no_args_is_help=True, pretty_exceptions_enable=False)

console = Console()
err = Console(stderr=True)

_project_root: list[Path | None] = [None]  # set by the root callback for this invocation


@app.callback()
def _root(
    project: Optional[Path] = typer.Option(None, "--project", "-C", help="Project folder (default: $GANPIPE_PROJECT, else the current folder)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the libraries' INFO lines (Ray, Ray Train, MLflow); also GANPIPE_LOG_LEVEL=INFO|DEBUG."),
) -> None:
    from ganpipe import logs

    logs.configure(verbose)  # before Prefect, MLflow or Ray is imported
    _project_root[0] = project


def load_project(cfg: Any = None) -> Any:
    """The `Project` of this invocation: --project, else $GANPIPE_PROJECT, else the current
    folder; storage from the config's `storage:` section, the project's ganpipe.yaml, defaults."""
    from ganpipe.project import Project

    return Project.load(_project_root[0], cfg.storage if cfg is not None else None)


SetOpt = typer.Option(None, "--set", "-s", help="Override a config key, e.g. --set train.steps=100 (repeatable).")

def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """User errors print one line with the fix and exit non-zero; bugs keep their traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except GanpipeError as e:
            err.print(f"[bold red]error:[/] {e.message}", highlight=False, soft_wrap=True)
            if e.hint:
                err.print(f"[yellow]fix:[/] {e.hint}", highlight=False, soft_wrap=True)
            raise typer.Exit(e.exit_code) from None

    return wrapper


def _orchestrator() -> str | None:
    """Pick the Prefect API (the local server unless told otherwise);
    must run before Prefect is imported. Returns the API URL, None for a temporary server."""
    from ganpipe.prefect_server import ensure_api

    return ensure_api()

