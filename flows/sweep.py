"""A sweep as a Prefect flow: prepare -> tune (Ray Tune over Ray Train) -> evaluate best -> register.

The best trial goes through the same evaluation and registry gate as a pipeline run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from ganpipe import logs, stages
from ganpipe.project import Project
from ganpipe.config import deep_merge, load_config, parse_overrides
from ganpipe.errors import GanpipeError
from ganpipe.tune.runner import SweepResult, run_sweep
from ganpipe.train.storage import local_copy
from ganpipe.tune.space import load_sweep


@task(name="prepare", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def prepare(cfg, project: Project) -> stages.Prepared:
    return stages.prepare_stage(cfg, project)


@task(name="tune", cache_policy=NO_CACHE)
def tune(base: dict[str, Any], space_path: str, prepared: stages.Prepared, project: Project) -> SweepResult:
    return run_sweep(base, load_sweep(space_path), prepared.path, project)


@task(name="evaluate-best", retries=1, cache_policy=NO_CACHE)
def evaluate_best(result: SweepResult, prepared: stages.Prepared, project: Project) -> stages.Evaluated:
    if result.best is None or result.best_config is None:
        raise GanpipeError("no trial finished with a metric; nothing to evaluate", hint="see sweep/summary.md on the sweep's MLflow run")
    # The best trial's checkpoint URI (s3://... on shared storage), copied here for evaluation.
    trained = stages.Trained(result.best.run_id, local_copy(result.best.checkpoint, project.cache), {})
    return stages.evaluate_stage(result.best_config, trained, prepared, project)


@task(name="register", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def register(result: SweepResult, ev: stages.Evaluated, prepared: stages.Prepared, project: Project) -> stages.Registered | None:
    return stages.register_stage(result.best_config, ev, prepared, project)


@flow(name="ganpipe-sweep", log_prints=True)
def sweep_flow(config_path: str, space_path: str, overrides: list[str] | None = None, project: str | None = None) -> dict[str, Any]:
    cfg = load_config(config_path, overrides)
    base = deep_merge(yaml.safe_load(Path(config_path).read_text()) or {}, parse_overrides(overrides))
    load_sweep(space_path)  # fail fast on a bad sweep file
    logs.configure()  # the CLI's level (exported), else GANPIPE_LOG_LEVEL, else warnings only
    proj = Project.load(project, cfg.storage)  # None: $GANPIPE_PROJECT, else the working folder
    log = get_run_logger()
    prepared = prepare(cfg, proj)
    result = tune(base, space_path, prepared, proj)
    for r in result.rows:
        log.info("trial %s %s %s=%s steps=%d %s", r.trial_id, r.params, result.metric, r.metric, r.steps, r.status)
    ev = evaluate_best(result, prepared, proj)
    reg = register(result, ev, prepared, proj)
    md = "# ganpipe sweep\n\n" + "\n".join(
        f"- trial {r.trial_id} `{r.params}`: {r.status}, {r.steps} steps, {result.metric}={r.metric}" for r in result.rows
    ) + (f"\n\nBest trial {result.best.trial_id}; registered `{reg.name}` v{reg.version} -> {reg.alias}" if reg else "")
    create_markdown_artifact(markdown=md, key="ganpipe-sweep-summary")
    return {
        "parent_run_id": result.parent_run_id,
        "metric": result.metric,
        "trials": [r.__dict__ for r in result.rows],
        "best": result.best.__dict__ if result.best else None,
        "trial_steps": result.trial_steps,
        "evaluation": ev.metrics,
        "registered": None if reg is None else {"name": reg.name, "version": reg.version, "alias": reg.alias},
    }
