"""`ganpipe prefect ...`: the local Prefect server that pipeline runs and schedules use."""

from __future__ import annotations

import typer

from ganpipe.cli.common import app, console, handle_errors

prefect_app = typer.Typer(help="The local Prefect server (started on first use, kept for run history and schedules).", no_args_is_help=True)
app.add_typer(prefect_app, name="prefect")


@prefect_app.command("status")
@handle_errors
def prefect_status() -> None:
    """Where runs are sent: PREFECT_API_URL, the local server, or Prefect's temporary server."""
    import os

    from ganpipe import prefect_server as ps

    if os.environ.get("PREFECT_API_URL"):
        console.print(f"PREFECT_API_URL={os.environ['PREFECT_API_URL']} (set in the environment; the local server is not used)")
        return
    info = ps.running()
    if info:
        console.print(f"local Prefect server running: UI {info.ui_url}, API {info.api_url} (pid {info.pid}, home {info.home})")
    elif ps.mode() == "temporary":
        console.print(f"{ps.MODE_ENV}=temporary: every run starts Prefect's temporary server")
    else:
        console.print("no local Prefect server running; the next pipeline run starts one (`ganpipe prefect start` to start it now)")


@prefect_app.command("start")
@handle_errors
def prefect_start() -> None:
    """Start the local Prefect server in the background (no-op when it runs)."""
    from ganpipe import prefect_server as ps

    info = ps.start()
    console.print(f"local Prefect server: UI {info.ui_url}, API {info.api_url} (pid {info.pid})")


@prefect_app.command("stop")
@handle_errors
def prefect_stop() -> None:
    """Stop the local Prefect server (run history stays in its database)."""
    from ganpipe import prefect_server as ps

    info = ps.stop()
    console.print(f"stopped the local Prefect server (pid {info.pid}, port {info.port})" if info else "no local Prefect server was running")
