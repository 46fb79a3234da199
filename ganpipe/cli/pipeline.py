"""`ganpipe pipeline run|serve`: the Prefect pipeline flow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from ganpipe.cli.common import SetOpt, _orchestrator, app, console, handle_errors, load_project
from ganpipe.errors import GanpipeError

pipeline_app = typer.Typer(help="Run the Prefect pipeline flow.", no_args_is_help=True)
app.add_typer(pipeline_app, name="pipeline")

@pipeline_app.command("run")
@handle_errors
def pipeline_run(
    config: Path = typer.Argument(..., help="YAML config."),
    set_: Optional[list[str]] = SetOpt,
    summary_json: Optional[Path] = typer.Option(None, "--summary-json", help="Also write the run summary (run id, metrics, registry, stage timings) as JSON here."),
) -> None:
    """Run prepare -> train -> evaluate -> register as a Prefect flow."""
    from ganpipe.config import load_config

    project = load_project(load_config(config, set_))  # fail fast on a bad config, before Prefect starts
    api = _orchestrator()
    from flows.pipeline import pipeline_flow

    summary = pipeline_flow(config_path=str(config), overrides=list(set_ or []), project=str(project.root))
    _print_summary(summary, api)
    if summary_json is not None:
        summary_json.parent.mkdir(parents=True, exist_ok=True)
        summary_json.write_text(json.dumps(summary, indent=2, default=str))


@pipeline_app.command("serve")
@handle_errors
def pipeline_serve(
    config: Path = typer.Argument(..., help="YAML config."),
    cron: Optional[str] = typer.Option(None, help='Cron schedule, e.g. "0 3 * * *" (nightly at 03:00).'),
    interval: Optional[int] = typer.Option(None, help="Run every N seconds instead of a cron schedule."),
    name: Optional[str] = typer.Option(None, help="Deployment name (default: the config name)."),
    set_: Optional[list[str]] = SetOpt,
) -> None:
    """Serve the pipeline on a schedule (a long-running local scheduler; needs a Prefect server)."""
    from ganpipe.config import load_config

    cfg = load_config(config, set_)
    project = load_project(cfg)
    if (cron is None) == (interval is None):
        raise GanpipeError("give exactly one of --cron or --interval")
    if _orchestrator() is None:
        raise GanpipeError(
            "scheduled runs need a Prefect server (the temporary one cannot schedule)",
            hint="unset GANPIPE_PREFECT_SERVER to use ganpipe's local server, or export PREFECT_API_URL=<your server>/api",
        )
    from flows.pipeline import pipeline_flow

    params = {"config_path": str(config.resolve()), "overrides": list(set_ or []), "project": str(project.root)}
    schedule = {"cron": cron} if cron else {"interval": interval}
    console.print(f"serving {cfg.name} ({cron or f'every {interval}s'}); Ctrl-C to stop")
    # limit=1: a scheduled run never overlaps the previous one (it waits instead).
    pipeline_flow.serve(name=name or cfg.name, parameters=params, pause_on_shutdown=False, limit=1, **schedule)


def _print_summary(s: dict[str, Any], prefect_api: str | None = None) -> None:
    tm = s.get("timing", {})

    def secs(key: str) -> str:
        return f"{tm[key]:.1f}" if key in tm else ""

    t = Table("stage", "result", "s", title="ganpipe pipeline")
    t.add_row("data", f"{s['data']['path']} (fingerprint {s['data']['fingerprint'][:12]}{', re-prepared' if s['data']['reran'] else ', unchanged'})", secs("prepare_s"))
    loop = f", {tm['train_loop_s']:.1f} s in the training loop" if tm.get("train_loop_s") else ""
    t.add_row("train", f"MLflow run {s['run_id']}{' (reused)' if s['reused']['train'] else ''}{loop}", secs("train_s"))
    t.add_row("evaluate", ", ".join(f"{k}={v:.4g}" for k, v in s["metrics"].items()), secs("evaluate_s"))
    reg = s.get("registered")
    t.add_row("register", f"{reg['name']} v{reg['version']} -> {reg['alias'] or '-'} ({reg['reason']})" if reg else "disabled", secs("register_s"))
    console.print(t)
    prefect_ui = f"Prefect UI {prefect_api.removesuffix('/api')}" if prefect_api else "Prefect ran on a temporary server (no history kept)"
    console.print(f"browse: `make ui` (MLflow on http://127.0.0.1:5000); {prefect_ui}")

