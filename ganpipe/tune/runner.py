"""Run a sweep: Ray Tune over Ray Train, one MLflow child run per trial under a parent run.

ASHA and FIFO trials are full Ray Train runs (the same recipe and loop as the pipeline) that
report `eval.<metric>` at `eval.every` steps through Train's TuneReportCallback, so the
scheduler can stop bad trials early. Population Based Training needs Tune-managed
checkpoints to exploit and explore, so PBT trials run the same loop inside the trial
process (one worker each, on a GPU of its own when the trial trains on GPUs), reporting
through `ray.tune.report(checkpoint=...)`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ganpipe.config import PipelineConfig
from ganpipe.errors import GanpipeError
from ganpipe.project import Project
from ganpipe.train.faults import Faults
from ganpipe.tune.progress import TrialTable, trial_progress
from ganpipe.tune.space import SweepConfig, to_tune, trial_config, validate

# Faults for every trial, or a function from a trial's sampled params to its faults (or None).
TrialFaults = Faults | Callable[[dict[str, Any]], Faults | None] | None


@dataclass
class TrialRow:
    trial_id: str
    params: dict[str, Any]
    status: str
    metric: float | None
    steps: int
    run_id: str | None
    checkpoint: str | None
    error: str | None = None


@dataclass
class SweepResult:
    parent_run_id: str
    metric: str
    mode: str
    rows: list[TrialRow] = field(default_factory=list)
    best: TrialRow | None = None
    best_config: PipelineConfig | None = None

    @property
    def trial_steps(self) -> int:
        return sum(r.steps for r in self.rows)


def _child_run(store: Any, cfg: PipelineConfig, parent: str, params: dict[str, Any], trial_id: str) -> str:
    """The trial's run under the sweep's run: created when the trial first starts, reopened when
    Tune starts the trial again (PBT stops and restarts trials at every exploit and, with
    `synch`, at every perturbation), so a trial has one run however often its process starts.
    Params are the config the trial started with; `trial.*` tags are its current values."""
    from ganpipe.tracking import runs

    rid = _find_child(store, parent, trial_id)
    if rid is None:
        tags = {"mlflow.parentRunId": parent, "ganpipe.trial_id": trial_id, "family": cfg.model.family, "loss": cfg.loss.name, "dataset": cfg.data.key}
        rid = runs.start_run(store, cfg.experiment, f"{cfg.run_name}-{trial_id}", cfg.to_dict(), tags)
    else:
        store.client().update_run(rid, status="RUNNING")
    runs.set_tags(store, rid, {f"trial.{k}": str(v) for k, v in params.items()})
    return rid


def train_trial(params: dict[str, Any], ctx: dict[str, Any]) -> None:
    """A Tune trial that runs a Ray Train fit (ASHA / FIFO)."""
    from ray import tune
    from ray.tune.integration.ray_train import TuneReportCallback

    from ganpipe.tracking import runs
    from ganpipe.train.driver import fit

    project = Project.from_dict(ctx["project"])
    store = project.store
    sweep = SweepConfig.model_validate(ctx["sweep"])
    cfg = trial_config(ctx["base"], sweep, params)  # a ConfigError fails the trial with its reason
    trial_id = tune.get_context().get_trial_id()
    rid = _child_run(store, cfg, ctx["parent"], params, trial_id)
    with runs.lifecycle(store, rid):
        res = fit(cfg, Path(ctx["data_dir"]), project, run_id=rid, callbacks=[TuneReportCallback()], faults=_faults(ctx, params))
    # The checkpoint's place in the shared runs storage: the trial's local copy is on its node.
    runs.set_tags(store, rid, {"ganpipe.train_status": "FINISHED", "ganpipe.checkpoint": res.uri})
    runs.end_run(store, rid, "FINISHED")
    # The run's final report can reach Tune after this function returns, and Tune then drops
    # it (seen in 2 of 6 full-length trials), so the trial's last result would be an earlier
    # step: report the final metrics and checkpoint once more from the trial itself.
    final = {k: v for k, v in res.metrics.items() if isinstance(v, (int, float))}
    tune.report({**final, "checkpoint_path": res.uri})


def _faults(ctx: dict[str, Any], params: dict[str, Any]) -> Faults | None:
    f = ctx.get("faults")
    return f if f is None or isinstance(f, Faults) else f(params)


ORIGIN_FILE = "tune_origin.json"  # in a Tune-managed checkpoint: the trial and step that wrote it


class TuneReporter:
    """The loop's Reporter for in-process trials: Tune-managed metrics and checkpoints.

    Each checkpoint names the trial that wrote it, so a trial that PBT restarts from a checkpoint
    can tell an exploit (another trial's weights) from resuming its own."""

    def __init__(self) -> None:
        self._restored: Path | None = None
        self._fetched = False

    def report(self, metrics: dict[str, float], checkpoint_dir: Path | None) -> None:
        from ray import tune

        ck = None
        if checkpoint_dir:
            origin = {"trial_id": tune.get_context().get_trial_id(), "step": int(metrics.get("step", 0))}
            (Path(checkpoint_dir) / ORIGIN_FILE).write_text(json.dumps(origin))
            ck = tune.Checkpoint.from_directory(str(checkpoint_dir))
        tune.report(metrics, checkpoint=ck)

    def latest_checkpoint(self) -> Path | None:
        """The checkpoint Tune started this trial from, copied here once (the loop and the
        trial's bookkeeping both ask)."""
        from ray import tune

        if not self._fetched:
            ck = tune.get_checkpoint()
            self._restored = Path(ck.to_directory(tempfile.mkdtemp(prefix="ganpipe-pbt-"))) if ck else None
            self._fetched = True
        return self._restored

    def origin(self) -> dict[str, Any] | None:
        """{"trial_id", "step"} of the checkpoint this trial restarts from; None on a first start."""
        ck = self.latest_checkpoint()
        if ck is None:
            return None
        f = ck / ORIGIN_FILE
        return json.loads(f.read_text()) if f.is_file() else {"trial_id": "?", "step": -1}

    def close(self) -> None:
        if self._restored is not None:
            shutil.rmtree(self._restored, ignore_errors=True)


def pbt_trial(params: dict[str, Any], ctx: dict[str, Any]) -> None:
    """A Tune trial running the loop in-process (PBT restores it from Tune checkpoints)."""
    import torch
    from ray import tune

    from ganpipe.tracking import runs
    from ganpipe.tracking.sink import MlflowSink
    from ganpipe.train.loop import make_evaluator, run_training

    project = Project.from_dict(ctx["project"])
    store = project.store
    sweep = SweepConfig.model_validate(ctx["sweep"])
    cfg = trial_config(ctx["base"], sweep, params)
    trial_id = tune.get_context().get_trial_id()
    rid = _child_run(store, cfg, ctx["parent"], params, trial_id)
    reporter = TuneReporter()
    origin = reporter.origin()
    if origin is not None:
        # One record per restart: an exploit is a restore from another trial's checkpoint, with
        # the explored params this trial goes on with.
        runs.set_tags(store, rid, {"ganpipe.restored_from": f"{origin['trial_id']}@{origin['step']}"})
        runs.log_dict(store, rid, {"from_trial": origin["trial_id"], "step": origin["step"], "params": params}, f"pbt/restore-step-{origin['step']}.json")
    # The trial reserved a GPU when the sweep trains on GPUs (`trial_resources`); Ray makes it
    # the trial's only visible device.
    device = torch.device("cuda") if ctx.get("use_gpu") else torch.device("cpu")
    try:
        with runs.lifecycle(store, rid):
            run_training(
                cfg,
                ctx["data_dir"],
                device=device,
                reporter=reporter,
                sink=MlflowSink(project.tracking_uri, rid),
                evaluator=make_evaluator(cfg, ctx["data_dir"], project.cache),
                faults=_faults(ctx, params),
            )
    finally:
        reporter.close()
    runs.set_tags(store, rid, {"ganpipe.train_status": "FINISHED"})
    runs.end_run(store, rid, "FINISHED")


def _scheduler(sweep: SweepConfig, max_t: int, search: str):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, PopulationBasedTraining

    s = sweep.scheduler
    if s.name == "asha":
        return ASHAScheduler(time_attr="step", max_t=max_t, grace_period=min(s.grace_period, max_t), reduction_factor=s.reduction_factor)
    if s.name == "pbt":
        return PopulationBasedTraining(
            time_attr="step",
            perturbation_interval=s.perturbation_interval,
            hyperparam_mutations=to_tune(s.mutations, "random"),
            synch=s.synch,
            # Checkpoints between evaluations report losses only (as for the other schedulers):
            # PBT acts on the results that carry the metric instead of failing on the others.
            require_attrs=False,
        )
    return FIFOScheduler()


def _searcher(sweep: SweepConfig, metric: str, mode: str):
    if sweep.search != "optuna":
        if sweep.seed is None:
            return None
        from ray.tune.search.basic_variant import BasicVariantGenerator

        # An explicit generator must carry the concurrency cap itself: Tune's max_concurrent_trials
        # does not reach it, and uncapped Train-backed trials contend for workers until they time out.
        return BasicVariantGenerator(random_state=sweep.seed, max_concurrent=sweep.max_concurrent_trials)
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    class EvaluatedResultsOnly(OptunaSearch):
        """Optuna records each intermediate result's metric and fails (KeyError) on one without
        it; checkpoints between evaluations report losses only, so those are not passed on."""

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            if self.metric in result:
                super().on_trial_result(trial_id, result)

    return ConcurrencyLimiter(EvaluatedResultsOnly(metric=metric, mode=mode, seed=sweep.seed), max_concurrent=sweep.max_concurrent_trials)


def run_sweep(
    base: dict[str, Any], sweep: SweepConfig, data_dir: Path, project: Project, name: str | None = None, faults: TrialFaults = None
) -> SweepResult:
    """Run every trial; returns the table and the best trial (not yet evaluated/registered).
    `faults`: deliberate faults for drills and tests (see `TrialFaults`)."""
    from ray import tune

    from ganpipe.tracking import runs
    from ganpipe.train.driver import resolve_gpu
    from ganpipe.train.local_ray import ensure_ray
    from ganpipe.train.storage import uri_of

    store = project.store
    invalid = validate(base, sweep)
    first = trial_config(base, sweep, {}) if not sweep.space else None
    probe = first or _first_valid(base, sweep)
    metric = sweep.metric or probe.registry.gate_metric
    mode = sweep.mode or probe.registry.mode
    if not probe.eval.every:
        raise GanpipeError("a sweep needs eval.every > 0 so trials report the metric while training", hint="add `eval.every: 250` under overrides in the sweep file")
    # Checkpoints between evaluations report losses only; schedulers skip results without the metric.
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    ensure_ray(state_api=True)
    _warn_without_state_api()
    sweep_name = name or sweep.name or f"{probe.name}-sweep"
    parent = runs.start_run(store, probe.experiment, sweep_name, {"sweep": sweep.model_dump(mode="json"), "base": base}, {"ganpipe.stage": "sweep"})
    if invalid:
        runs.log_dict(store, parent, {"invalid_combinations": invalid}, "sweep/invalid.json")
    is_pbt = sweep.scheduler.name == "pbt"
    use_gpu = is_pbt and resolve_gpu(probe)  # Train-backed trials decide in their own fit
    ctx = {
        "base": base, "sweep": sweep.model_dump(mode="json"), "data_dir": str(data_dir.resolve()), "project": project.to_dict(),
        "parent": parent, "faults": faults, "use_gpu": use_gpu,
    }
    trainable = make_trainable(pbt_trial if is_pbt else train_trial, ctx, trial_resources(probe, is_pbt, use_gpu))
    progress = trial_progress(TrialTable(f"eval.{metric}", mode, max_steps=probe.train.steps))
    tuner = tune.Tuner(
        trainable,
        param_space=to_tune(sweep.space, sweep.search),
        tune_config=tune.TuneConfig(
            metric=f"eval.{metric}",
            mode=mode,
            scheduler=_scheduler(sweep, probe.train.steps, sweep.search),
            search_alg=_searcher(sweep, f"eval.{metric}", mode),
            num_samples=sweep.num_samples,
            max_concurrent_trials=sweep.max_concurrent_trials,
            # A stopped trial's process must exit: its Ray Train controller and workers are owned
            # by it and only then release their CPUs/GPUs (a reused actor kept them, and later
            # trials timed out waiting for workers).
            reuse_actors=False,
        ),
        # verbose=0: Tune's own reporter is off; the trial table below takes its place.
        run_config=tune.RunConfig(name=sweep_name, storage_path=project.tune_storage, verbose=0, callbacks=[progress]),
    )
    grid = tuner.fit()
    result = SweepResult(parent, metric, mode)
    for r in grid:
        trial_id = r.path.rstrip("/").split("/")[-1] if r.path else "?"
        params = {k: v for k, v in (r.config or {}).items()}
        m = r.metrics or {}
        child = _find_child(store, parent, m.get("trial_id") or "")
        ck = m.get("checkpoint_path") or (uri_of(r.checkpoint, project.tune_storage) if r.checkpoint else None)
        status = "ERROR" if r.error else ("STOPPED_EARLY" if m.get("step", 0) < probe.train.steps else "FINISHED")
        val = m.get(f"eval.{metric}")
        row = TrialRow(m.get("trial_id", trial_id), params, status, float(val) if val is not None else None, int(m.get("step", 0)), child, ck, _reason(r.error))
        result.rows.append(row)
        if child and status == "STOPPED_EARLY":
            runs.set_tags(store, child, {"ganpipe.train_status": "STOPPED_EARLY"})
            runs.end_run(store, child, "KILLED")
    done = [r for r in result.rows if r.metric is not None and r.status == "FINISHED" and r.checkpoint]
    if done:
        best = (min if mode == "min" else max)(done, key=lambda r: r.metric)
        result.best = best
        result.best_config = trial_config(base, sweep, best.params)
    log_summary(store, result)
    return result


def trial_resources(cfg: PipelineConfig, pbt: bool, use_gpu: bool) -> dict[str, float]:
    """What a trial's own process reserves. A Train-backed trial's process needs no CPU (its
    workers reserve theirs; Tune needs a non-empty request: a token amount of memory, which
    every node has). A PBT trial trains in its own process: one worker's CPUs, and one GPU
    when the sweep trains on GPUs (`train.use_gpu`, "auto": when the cluster has GPUs)."""
    if not pbt:
        return {"CPU": 0, "memory": 2**20}
    return {"CPU": cfg.train.cpus_per_worker, **({"GPU": 1} if use_gpu else {})}


def make_trainable(fn: Callable[[dict[str, Any], dict[str, Any]], None], ctx: dict[str, Any], resources: dict[str, float]) -> Any:
    """The Tune trainable: `fn(params, ctx)` with the trial's resource request attached."""
    from ray import tune

    def trainable(params: dict[str, Any], ctx: dict[str, Any] = ctx, fn: Any = fn) -> None:
        fn(params, ctx)

    return tune.with_resources(trainable, resources)


def _warn_without_state_api() -> None:
    """Ray Train releases a stopped trial's workers only if its placement-group cleaner can ask
    Ray's State API (the dashboard) whether the trial's controller is still alive."""
    import logging

    try:
        from ray.util.state import list_nodes

        from ganpipe.train.local_ray import LOCAL_DASHBOARD

        list_nodes(address=LOCAL_DASHBOARD, limit=1, timeout=10)
    except Exception as e:  # noqa: BLE001 - any failure means the cleaner cannot work either
        logging.getLogger("ganpipe").warning(
            "Ray's State API is not reachable (%s): trials that ASHA stops early keep their workers' "
            "resources reserved until the sweep ends. Start the cluster with the dashboard "
            "(pip install 'ray[default]'; `ray start --head` includes it).",
            type(e).__name__,
        )


def _reason(err: BaseException | None) -> str | None:
    """The root cause's one-line message out of Ray's wrapped traceback."""
    if err is None:
        return None
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "Error:" in ln or "Exception:" in ln:
            return ln[:500]
    return (lines[-1] if lines else type(err).__name__)[:500]


def _first_valid(base: dict[str, Any], sweep: SweepConfig) -> PipelineConfig:
    from ganpipe.tune.space import representative_points

    for point in representative_points(sweep):
        try:
            return trial_config(base, sweep, point)
        except GanpipeError:
            continue
    raise GanpipeError("no combination in the sweep space gives a valid config", hint="see the errors from `ganpipe train --dry-run` with one combination")


def _find_child(store: Any, parent: str, trial_id: str) -> str | None:
    c = store.client()
    exp = c.get_run(parent).info.experiment_id
    found = c.search_runs([exp], filter_string=f"tags.`mlflow.parentRunId` = '{parent}' and tags.`ganpipe.trial_id` = '{trial_id}'", max_results=1)
    return found[0].info.run_id if found else None


def log_summary(store: Any, result: SweepResult) -> None:
    """Table (markdown + JSON) and a plot of the metric by each swept parameter, on the parent run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ganpipe.tracking import runs

    keys = sorted({k for r in result.rows for k in r.params})
    head = "| trial | " + " | ".join(keys) + f" | status | steps | {result.metric} |\n|" + "---|" * (len(keys) + 4) + "\n"
    body = "".join(
        f"| {r.trial_id} | " + " | ".join(str(r.params.get(k, "")) for k in keys) + f" | {r.status} | {r.steps} | {'' if r.metric is None else f'{r.metric:.4g}'} |\n"
        for r in result.rows
    )
    best = f"\nBest: trial {result.best.trial_id} ({result.metric}={result.best.metric:.4g})\n" if result.best else "\nNo trial finished.\n"
    store.client().log_text(result.parent_run_id, head + body + best, "sweep/summary.md")
    runs.log_dict(store, result.parent_run_id, {"metric": result.metric, "mode": result.mode, "trial_steps": result.trial_steps, "rows": [r.__dict__ for r in result.rows]}, "sweep/summary.json")
    if keys and any(r.metric is not None for r in result.rows):
        fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False)
        for ax, k in zip(axes[0], keys):
            pts = [(str(r.params.get(k)), r.metric) for r in result.rows if r.metric is not None]
            cats = sorted({p[0] for p in pts})
            ax.scatter([cats.index(p[0]) for p in pts], [p[1] for p in pts])
            ax.set_xticks(range(len(cats)), cats, rotation=30, ha="right", fontsize=8)
            ax.set_title(k, fontsize=9)
            ax.set_ylabel(result.metric)
        fig.tight_layout()
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / "metric_by_param.png"
            fig.savefig(p, dpi=100)
            runs.log_artifact(store, result.parent_run_id, p, "sweep")
        plt.close(fig)
    n_failed = sum(r.status == "ERROR" for r in result.rows)
    runs.log_metrics(store, result.parent_run_id, {"trials": len(result.rows), "trials_failed": n_failed, "trial_steps": result.trial_steps, **({f"best.{result.metric}": result.best.metric} if result.best else {})})
    runs.end_run(store, result.parent_run_id, "FINISHED")
