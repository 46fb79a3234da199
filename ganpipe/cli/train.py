"""`ganpipe init`, `ganpipe train`, `ganpipe tune` and `ganpipe models`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ganpipe.cli.common import SetOpt, _orchestrator, app, console, handle_errors, load_project

@app.command()
@handle_errors
def init(folder: Path = typer.Argument(Path("."), help="Project folder to create or complete.")) -> None:
    """Create a ganpipe project: git + DVC repo, dvc.yaml, params.yaml, local DVC remote."""
    from ganpipe.data.dvc import init_project

    p = init_project(folder)
    console.print(f"ganpipe project ready in {p.resolve()}")


@app.command()
@handle_errors
def train(
    config: Path = typer.Argument(..., help="YAML config, e.g. configs/dcgan-digits.yaml."),
    set_: Optional[list[str]] = SetOpt,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved config and exit."),
) -> None:
    """Prepare the data (if needed) and run the training stage alone; prints the MLflow run id."""
    import yaml

    from ganpipe.config import load_config

    cfg = load_config(config, set_)
    project = load_project(cfg)
    if dry_run:  # before anything that imports torch, Ray or MLflow
        console.print(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        console.print(yaml.safe_dump({"where": project.describe()}, sort_keys=False))
        return
    from ganpipe.train.cluster import check_cluster

    check_cluster()  # a RAY_ADDRESS that is down or refuses us: before preparing any data
    from ganpipe import stages

    prepared = stages.prepare_stage(cfg, project)
    trained = stages.train_stage(cfg, prepared, project)
    console.print(f"MLflow run id: {trained.run_id}")
    console.print(f"checkpoint: {trained.checkpoint}")
    print(trained.run_id)


@app.command()
@handle_errors
def tune(
    config: Path = typer.Argument(..., help="Base YAML config."),
    space: Path = typer.Option(..., "--space", help="Sweep file, e.g. configs/sweeps/toy-grid25-losses.yaml."),
    set_: Optional[list[str]] = SetOpt,
) -> None:
    """Ray Tune sweep (Tune over Train) as a Prefect flow; the best trial is evaluated and registered."""
    from ganpipe.config import load_config
    from ganpipe.tune.space import load_sweep

    project = load_project(load_config(config, set_))
    load_sweep(space)
    _orchestrator()
    from ganpipe.train.cluster import check_cluster

    check_cluster()
    from flows.sweep import sweep_flow

    s = sweep_flow(config_path=str(config), space_path=str(space), overrides=list(set_ or []), project=str(project.root))
    t = Table("trial", "params", "status", "steps", s["metric"], title=f"sweep (MLflow parent run {s['parent_run_id']})")
    for r in s["trials"]:
        t.add_row(r["trial_id"], ", ".join(f"{k}={v}" for k, v in r["params"].items()), r["status"], str(r["steps"]), "" if r["metric"] is None else f"{r['metric']:.4g}")
    console.print(t)
    reg = s["registered"]
    if reg:
        console.print(f"best trial registered: {reg['name']} v{reg['version']} -> {reg['alias']}; compute spent: {s['trial_steps']} trial-steps")


@app.command()
@handle_errors
def models() -> None:
    """Model families and adversarial losses, one line each."""
    from ganpipe.specs.families import FAMILY_SPECS  # the same names and lines as the recipes, without torch
    from ganpipe.specs.losses import LOSS_SPECS

    t = Table("family", "data", "what it is", title="model families (model.family)")
    for name in FAMILY_SPECS.names():
        spec = FAMILY_SPECS.get(name)
        t.add_row(name, "/".join(spec.data_kinds), spec.summary)
    console.print(t)
    t = Table("loss", "what it is", title="adversarial losses (loss.name)")
    for name in LOSS_SPECS.names():
        t.add_row(name, LOSS_SPECS.get(name).summary)
    console.print(t)

