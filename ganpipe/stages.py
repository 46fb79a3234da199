"""The pipeline's stages as plain functions (the Prefect flows and the CLI call these).

Each stage is keyed on its inputs so a re-run of the same config skips what is done:
DVC skips an unchanged prepare stage, a training run with the same config and data is found
in MLflow (and an interrupted one resumes from its Ray Train checkpoint), evaluation and
registration are recorded on the run and not repeated.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganpipe.config import PipelineConfig
from ganpipe.data.loading import load_manifest
from ganpipe.project import Project

log = logging.getLogger("ganpipe")


@dataclass
class Prepared:
    path: Path
    manifest: dict[str, Any]
    reran: bool
    seconds: float = 0.0  # wall time of the stage function (set by `timed`)


@dataclass
class Trained:
    run_id: str
    checkpoint: Path
    metrics: dict[str, Any]
    reused: bool = False
    seconds: float = 0.0
    loop_seconds: float = 0.0  # inside the training loop (the worker's `time.train_s` metric); 0 when reused


@dataclass
class Evaluated:
    run_id: str
    metrics: dict[str, float]
    info: dict[str, Any]
    model_uri: str
    reused: bool = False
    seconds: float = 0.0
    compute_seconds: float = 0.0  # computing the metrics (evaluate_and_log); 0 when reused


@dataclass
class Registered:
    name: str
    version: str
    alias: str
    reason: str
    reused: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def timed(fn: Any) -> Any:
    """Record a stage function's wall time on the result it returns (`.seconds`)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        if out is not None:
            out.seconds = time.perf_counter() - t0
        return out

    return wrapper


def stage_timings(prepared: Prepared, trained: Trained, evaluated: Evaluated, registered: Registered | None) -> dict[str, float]:
    """Seconds per stage, and the parts spent training (the loop) and computing metrics."""
    return {
        "prepare_s": prepared.seconds,
        "train_s": trained.seconds,
        "train_loop_s": trained.loop_seconds,
        "evaluate_s": evaluated.seconds,
        "evaluate_compute_s": evaluated.compute_seconds,
        "register_s": registered.seconds if registered else 0.0,
    }


@timed
def prepare_stage(cfg: PipelineConfig, project: Project, progress: bool = True) -> Prepared:
    """`progress`: show the DVC commands' and the preparation's progress on stderr."""
    from ganpipe.data.dvc import is_dvc_repo, prepare_with_dvc
    from ganpipe.data.prepare import prepare

    root = project.root
    if cfg.data.use_dvc and is_dvc_repo(root):
        path, reran = prepare_with_dvc(project, cfg.data, progress=progress)
    else:
        path = root / cfg.data.root / cfg.data.key
        data_cfg = cfg.data.model_copy(update={"raw_root": str(root / cfg.data.raw_root)})
        from ganpipe.data.sources import SOURCES, fetch

        if ":" not in cfg.data.source:
            src = SOURCES.get(cfg.data.source)
            if src.materialize is not None and not (root / cfg.data.raw_root / cfg.data.source).exists():
                fetch(cfg.data.source, root / cfg.data.raw_root)
        prepare(cfg.data.source, path, data_cfg, progress=progress)
        reran = True
    return Prepared(path, load_manifest(path), reran)


@timed
def train_stage(cfg: PipelineConfig, prepared: Prepared, project: Project, progress: bool = True, faults: Any = None) -> Trained:
    """`progress`: show the run's progress on this process's stdout (a live display on a
    terminal, else one line per log point). `faults`: deliberate faults for drills and tests
    (`train.faults.Faults`)."""
    from ganpipe.tracking import runs
    from ganpipe.tracking.lineage import lineage_tags
    from ganpipe.project import is_remote
    from ganpipe.train.checkpoint import verify
    from ganpipe.train.driver import fit
    from ganpipe.train.storage import local_copy

    store = project.store
    store.check_reachable()  # fail before any training starts
    from ganpipe.train.cluster import check_cluster

    check_cluster()  # RAY_ADDRESS: a cluster that is down or refuses us fails here, in seconds
    fp = prepared.manifest["fingerprint"]
    run_id = runs.find_run(store, cfg.experiment, cfg.run_name, fp)
    if run_id:
        r = store.client().get_run(run_id)
        ck = r.data.tags.get("ganpipe.checkpoint")  # its URI in the runs storage (a local path, or s3://...)
        if r.data.tags.get("ganpipe.train_status") == "FINISHED" and ck and (is_remote(ck) or Path(ck).exists()):
            try:
                local = local_copy(ck, project.cache)
                verify(local)
                log.info("training run %s already finished for this config and data; reusing it", run_id)
                return Trained(run_id, local, dict(r.data.metrics), reused=True)
            except Exception as e:  # e.g. storage unreachable: train again (Ray resumes from the newest checkpoint)
                log.warning("training run %s finished, but its checkpoint %s cannot be used (%s); training again", run_id, ck, str(e)[:300])
    else:
        tags = {**lineage_tags(project.root, prepared.manifest), "family": cfg.model.family, "loss": cfg.loss.name, "dataset": cfg.data.key}
        run_id = runs.start_run(store, cfg.experiment, cfg.run_name, cfg.to_dict(), tags)
        if prepared.manifest.get("skipped"):  # data.on_bad_file=skip: which files the run did not see, and why
            runs.log_dict(store, run_id, {"skipped": prepared.manifest["skipped"]}, "data/skipped.json")
    view = None
    if progress:
        from ganpipe.train.progress import make_view

        view = make_view(cfg.run_name, f"{run_id} {runs.run_url(store, run_id)}")
    with runs.lifecycle(store, run_id):
        result = fit(cfg, prepared.path, project, run_id=run_id, view=view, faults=faults)
    runs.set_tags(store, run_id, {"ganpipe.train_status": "FINISHED", "ganpipe.checkpoint": result.uri or str(result.checkpoint), "ganpipe.storage": result.storage})
    return Trained(run_id, result.checkpoint, result.metrics, loop_seconds=float(result.metrics.get("time.train_s", 0.0)))


def eval_context(cfg: PipelineConfig, export: tuple[dict[str, Any], dict[str, Any]], data_dir: Path, project: Project, device: str = "cpu"):
    """The sampler (the exported generator, on `device`) and the evaluation context (real data,
    fakes, classifier), built once and shared by the metrics and the figures."""
    from ganpipe.evaluate.metrics import EvalContext
    from ganpipe.gans.base import sampler_from_export

    sampler = sampler_from_export(*export, device=device)
    return EvalContext(
        sampler, data_dir, project.cache, cfg.eval.num_samples, cfg.eval.seed, cfg.eval.classifier_steps, project.inception_weights
    )


def evaluate_and_log(cfg: dict[str, Any], export: tuple[dict[str, Any], dict[str, Any]], data_dir: str, project: dict[str, Any], run_id: str, device: str = "cpu") -> tuple[dict[str, float], dict[str, Any], float]:
    """The evaluation stage's work, wherever `evaluate.placement` runs it (this process or a
    Ray task on a GPU node): the config's metrics with the generator on `device`, then the
    record, sample grid, figures and card logged to the run. Plain arguments (a config dict,
    the generator's export, paths): a task on another node cannot read the driver's disk.
    Returns (values, info, seconds computing the metrics)."""
    from ganpipe.config import build_config
    from ganpipe.evaluate.metrics import evaluate
    from ganpipe.tracking.evaluation import log_evaluation

    config, proj = build_config(cfg), Project.from_dict(project)
    t0 = time.perf_counter()
    ctx = eval_context(config, export, Path(data_dir), proj, device)
    values, info = evaluate(ctx, config.eval.metrics)
    compute_s = time.perf_counter() - t0
    log_evaluation(proj.store, run_id, ctx.sampler, ctx, values, info, step=config.train.steps, compute_s=compute_s)
    return values, info, compute_s


@timed
def evaluate_stage(cfg: PipelineConfig, trained: Trained, prepared: Prepared, project: Project) -> Evaluated:
    """Evaluates where a GPU is (`evaluate.placement`: a Ray task with one when the cluster
    has them), so a head node without GPUs never samples on its CPU."""
    from ganpipe.evaluate.placement import choose_placement, run_placed
    from ganpipe.tracking import runs
    from ganpipe.tracking.pyfunc import log_generator
    from ganpipe.train.checkpoint import load_export

    store = project.store
    r = store.client().get_run(trained.run_id)
    if r.data.tags.get("ganpipe.eval_status") == "FINISHED" and r.data.tags.get("ganpipe.model_uri"):
        vals = {k[len("eval.") :]: v for k, v in r.data.metrics.items() if k.startswith("eval.")}
        return Evaluated(trained.run_id, vals, {}, r.data.tags["ganpipe.model_uri"], reused=True)
    placement = choose_placement()
    log.info("evaluating run %s: %s", trained.run_id, placement.describe())
    values, info, compute_s = run_placed(
        placement, evaluate_and_log, cfg.to_dict(), load_export(trained.checkpoint), str(prepared.path), project.to_dict(), trained.run_id
    )
    model_uri = log_generator(store, trained.run_id, trained.checkpoint)
    runs.set_tags(store, trained.run_id, {"ganpipe.eval_status": "FINISHED", "ganpipe.model_uri": model_uri, "ganpipe.eval_placement": placement.describe()})
    runs.end_run(store, trained.run_id, "FINISHED")
    return Evaluated(trained.run_id, values, info, model_uri, compute_seconds=compute_s)


@timed
def register_stage(cfg: PipelineConfig, evaluated: Evaluated, prepared: Prepared, project: Project) -> Registered | None:
    from ganpipe.tracking import model_registry
    from ganpipe.tracking.cards import card_for_version

    if not cfg.registry.enabled:
        return None
    store = project.store
    r = store.client().get_run(evaluated.run_id)
    done = r.data.tags.get("ganpipe.registered_version")
    if done:
        name, version = done.rsplit("/", 1)
        return Registered(name, version, "", "already registered by this run", reused=True)
    tags = {
        "family": cfg.model.family,
        "dataset": cfg.data.key,
        "loss": cfg.loss.name,
        "data_version": r.data.tags.get("data.dvc_md5", ""),
        "data_fingerprint": prepared.manifest.get("fingerprint", ""),
        "git_commit": r.data.tags.get("git.commit", ""),
        "config": cfg.run_name,
    }
    reg = model_registry.register(
        store,
        cfg.model_name,
        evaluated.model_uri,
        evaluated.run_id,
        evaluated.metrics,
        cfg.registry.gate_metric,
        cfg.registry.mode,
        tags,
        description=f"{cfg.model.family} on {cfg.data.key}, loss {cfg.loss.name}, {cfg.train.steps} steps (run {evaluated.run_id}).",
    )
    card_for_version(store, reg.name, reg.version)
    if reg.alias == model_registry.CHAMPION and reg.previous_champion:
        card_for_version(store, reg.name, reg.previous_champion)  # its card no longer lists champion
    store.client().set_tag(evaluated.run_id, "ganpipe.registered_version", f"{reg.name}/{reg.version}")
    return Registered(reg.name, reg.version, reg.alias, reg.reason)
