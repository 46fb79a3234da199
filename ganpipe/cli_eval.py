"""`ganpipe ui` (and evaluation commands): look at what the pipeline produced."""

from __future__ import annotations

import sys

import typer

from ganpipe.cli import app, console, handle_errors


@app.command()
@handle_errors
def ui(port: int = typer.Option(5000), host: str = typer.Option("127.0.0.1", help="Bind address; expose deliberately.")) -> None:
    """Start the MLflow UI against the project's tracking store."""
    import subprocess

    from ganpipe.tracking.store import artifact_root, tracking_uri

    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tracking_uri(), "--host", host, "--port", str(port)]
    if artifact_root():
        cmd += ["--default-artifact-root", artifact_root()]
    console.print(f"MLflow UI on http://{host}:{port}  (Ctrl-C to stop)")
    raise typer.Exit(subprocess.call(cmd))
