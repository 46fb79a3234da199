"""The ganpipe pipeline as a Prefect flow: prepare -> train -> evaluate -> register.

Thin by design: each task calls one function of `ganpipe.stages`, which keys its work on
its inputs (DVC stage cache, MLflow run lookup), so a re-run skips completed stages.
Runs on Prefect's temporary local server by default, on a server when PREFECT_API_URL is set.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from ganpipe import logs, stages
from ganpipe.project import Project
from ganpipe.config import PipelineConfig, build_config, load_config


@task(name="prepare", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def prepare(cfg: PipelineConfig, project: Project) -> stages.Prepared:
    return stages.prepare_stage(cfg, project)


@task(name="train", cache_policy=NO_CACHE)
def train(cfg: PipelineConfig, prepared: stages.Prepared, project: Project) -> stages.Trained:
    return stages.train_stage(cfg, prepared, project)


@task(name="evaluate", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def evaluate(cfg: PipelineConfig, trained: stages.Trained, prepared: stages.Prepared, project: Project) -> stages.Evaluated:
    return stages.evaluate_stage(cfg, trained, prepared, project)


@task(name="register", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def register(cfg: PipelineConfig, evaluated: stages.Evaluated, prepared: stages.Prepared, project: Project) -> stages.Registered | None:
    return stages.register_stage(cfg, evaluated, prepared, project)


def summary_markdown(project: Project, cfg: PipelineConfig, prepared: stages.Prepared, trained: stages.Trained, ev: stages.Evaluated, reg: stages.Registered | None) -> str:
    from ganpipe.tracking.runs import run_url

    rows = "\n".join(f"| {k} | {v:.4g} |" for k, v in sorted(ev.metrics.items()))
    reg_line = f"`{reg.name}` version **{reg.version}** alias **{reg.alias or '-'}** ({reg.reason})" if reg else "registration disabled"
    return (
        f"# ganpipe run `{cfg.run_name}`\n\n"
        f"- family **{cfg.model.family}**, loss **{cfg.loss.name}**, data **{cfg.data.key}** "
        f"(fingerprint `{prepared.manifest['fingerprint'][:12]}`), {cfg.train.steps} steps\n"
        f"- MLflow run: [{trained.run_id}]({run_url(project.store, trained.run_id)})\n"
        f"- model: {ev.model_uri}\n- registry: {reg_line}\n\n"
        f"| metric | value |\n|---|---|\n{rows}\n"
    )


@flow(name="ganpipe-pipeline", log_prints=True)
def pipeline_flow(
    config_path: str | None = None,
    overrides: list[str] | None = None,
    project: str | None = None,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run every stage for one config; returns a summary dict (also a Prefect artifact)."""
    cfg = build_config(config) if config is not None else load_config(config_path, overrides)
    logs.configure()  # the CLI's level (exported), else GANPIPE_LOG_LEVEL, else warnings only
    proj = Project.load(project, cfg.storage)  # None: $GANPIPE_PROJECT, else the working folder
    logger = get_run_logger()
    prepared = prepare(cfg, proj)
    logger.info("data %s at %s (%s)", cfg.data.key, prepared.path, "prepared" if prepared.reran else "unchanged, DVC skipped it")
    trained = train(cfg, prepared, proj)
    logger.info("training run %s%s", trained.run_id, " (reused)" if trained.reused else "")
    ev = evaluate(cfg, trained, prepared, proj)
    logger.info("evaluation: %s", ", ".join(f"{k}={v:.4g}" for k, v in ev.metrics.items()))
    reg = register(cfg, ev, prepared, proj)
    md = summary_markdown(proj, cfg, prepared, trained, ev, reg)
    create_markdown_artifact(markdown=md, key="ganpipe-summary", description=f"ganpipe {cfg.run_name}")
    return {
        "run_id": trained.run_id,
        "checkpoint": str(trained.checkpoint),
        "metrics": ev.metrics,
        "model_uri": ev.model_uri,
        "registered": None if reg is None else {"name": reg.name, "version": reg.version, "alias": reg.alias, "reason": reg.reason},
        "data": {"path": str(prepared.path), "fingerprint": prepared.manifest["fingerprint"], "reran": prepared.reran},
        "reused": {"train": trained.reused, "evaluate": ev.reused},
        "timing": stages.stage_timings(prepared, trained, ev, reg),
    }
