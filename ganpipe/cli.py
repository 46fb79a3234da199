"""`ganpipe` command line: data, train, pipeline, evaluate, generate, registry, ui."""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.table import Table

from ganpipe.errors import GanpipeError

app = typer.Typer(help="ganpipe: DVC data -> Ray Train GANs -> MLflow evaluation and registry, chained by Prefect.", no_args_is_help=True, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Built-in data sets, importers and preparation to Parquet.", no_args_is_help=True)
pipeline_app = typer.Typer(help="Run the Prefect pipeline flow.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(pipeline_app, name="pipeline")

console = Console()
err = Console(stderr=True)

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


def _quiet_libs() -> None:
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Prefect's temporary server can take longer than its default 20 s on a busy 2-core machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def _orchestrator() -> str | None:
    """Quiet the libraries and pick the Prefect API (the local server unless told otherwise);
    must run before Prefect is imported. Returns the API URL, None for a temporary server."""
    _quiet_libs()
    from ganpipe.prefect_server import ensure_api

    return ensure_api()


# -- data ------------------------------------------------------------------------------------

@data_app.command("list")
@handle_errors
def data_list() -> None:
    """Show the built-in sources and the importers."""
    from ganpipe.data.sources import IMPORTERS, SOURCES

    t = Table("name", "kind", "description", title="built-in data sources")
    for n in SOURCES.names():
        s = SOURCES.get(n)
        t.add_row(n, s.kind, s.description)
    for n in IMPORTERS.names():
        s = IMPORTERS.get(n)
        t.add_row(f"{n}:PATH", s.kind, s.description)
    console.print(t)


@data_app.command("fetch")
@handle_errors
def data_fetch(name: str, raw_root: Path = typer.Option(Path("data"), help="Raw data folder (tracked by data.dvc).")) -> None:
    """Materialise a built-in data set as files under the raw data folder."""
    from ganpipe.data.sources import fetch

    path = fetch(name, raw_root)
    n = sum(1 for p in path.rglob("*") if p.is_file())
    console.print(f"{name}: {n} files in {path}")


@data_app.command("prepare")
@handle_errors
def data_prepare(
    source: str = typer.Argument(..., help="Built-in name (see `data list`) or importer:PATH."),
    out: Optional[Path] = typer.Option(None, help="Output folder (default: prepared/<name>)."),
    image_size: int = typer.Option(16, help="Square image size after centre crop and resize."),
    channels: int = typer.Option(0, help="1 or 3; 0 keeps the source's native channels."),
    val_fraction: float = typer.Option(0.1),
    test_fraction: float = typer.Option(0.1),
    seed: int = typer.Option(0, help="Split seed."),
    raw_root: Path = typer.Option(Path("data"), help="Where built-in sets' raw files are."),
) -> None:
    """Write Parquet shards (train/val/test) and a manifest for SOURCE."""
    from ganpipe.config import DataConfig
    from ganpipe.data.prepare import prepare
    from ganpipe.data.sources import dataset_key

    try:
        cfg = DataConfig(source=source, image_size=image_size, channels=channels or None, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed, raw_root=str(raw_root))
    except Exception as e:
        raise GanpipeError(f"invalid option: {e}") from None
    out = out or Path("prepared") / dataset_key(source)
    m = prepare(source, out, cfg)
    console.print(f"prepared {source} -> {out}: {m['counts']} ({m['kind']}, {m['image_size']}px x{m['channels']}), fingerprint {m['fingerprint'][:12]}")


# -- training and pipeline ---------------------------------------------------------------------

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

    from ganpipe import pipeline as stages
    from ganpipe.config import load_config

    cfg = load_config(config, set_)
    if dry_run:
        console.print(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        return
    _quiet_libs()
    project = Path.cwd()
    prepared = stages.prepare_stage(cfg, project)
    trained = stages.train_stage(cfg, prepared, project)
    console.print(f"MLflow run id: {trained.run_id}")
    console.print(f"checkpoint: {trained.checkpoint}")
    print(trained.run_id)


@pipeline_app.command("run")
@handle_errors
def pipeline_run(
    config: Path = typer.Argument(..., help="YAML config."),
    set_: Optional[list[str]] = SetOpt,
    summary_json: Optional[Path] = typer.Option(None, "--summary-json", help="Also write the run summary (run id, metrics, registry, stage timings) as JSON here."),
) -> None:
    """Run prepare -> train -> evaluate -> register as a Prefect flow."""
    from ganpipe.config import load_config

    load_config(config, set_)  # fail fast on a bad config, before Prefect starts
    api = _orchestrator()
    from flows.pipeline import pipeline_flow

    summary = pipeline_flow(config_path=str(config), overrides=list(set_ or []), project=str(Path.cwd()))
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
    if (cron is None) == (interval is None):
        raise GanpipeError("give exactly one of --cron or --interval")
    if _orchestrator() is None:
        raise GanpipeError(
            "scheduled runs need a Prefect server (the temporary one cannot schedule)",
            hint="unset GANPIPE_PREFECT_SERVER to use ganpipe's local server, or export PREFECT_API_URL=<your server>/api",
        )
    from flows.pipeline import pipeline_flow

    params = {"config_path": str(config.resolve()), "overrides": list(set_ or []), "project": str(Path.cwd())}
    schedule = {"cron": cron} if cron else {"interval": interval}
    console.print(f"serving {cfg.name} ({cron or f'every {interval}s'}); Ctrl-C to stop")
    # limit=1: a scheduled run never overlaps the previous one (it waits instead).
    pipeline_flow.serve(name=name or cfg.name, parameters=params, pause_on_shutdown=False, limit=1, **schedule)


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

    load_config(config, set_)
    load_sweep(space)
    _orchestrator()
    from flows.sweep import sweep_flow

    s = sweep_flow(config_path=str(config), space_path=str(space), overrides=list(set_ or []), project=str(Path.cwd()))
    t = Table("trial", "params", "status", "steps", s["metric"], title=f"sweep (MLflow parent run {s['parent_run_id']})")
    for r in s["trials"]:
        t.add_row(r["trial_id"], ", ".join(f"{k}={v}" for k, v in r["params"].items()), r["status"], str(r["steps"]), "" if r["metric"] is None else f"{r['metric']:.4g}")
    console.print(t)
    reg = s["registered"]
    if reg:
        console.print(f"best trial registered: {reg['name']} v{reg['version']} -> {reg['alias']}; compute spent: {s['trial_steps']} trial-steps")


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


# -- models ----------------------------------------------------------------------------------

@app.command()
@handle_errors
def models() -> None:
    """Model families and adversarial losses, one line each."""
    from ganpipe.gans import FAMILIES
    from ganpipe.losses import LOSSES

    t = Table("family", "data", "what it is", title="model families (model.family)")
    for name in FAMILIES.names():
        cls = FAMILIES.get(name)
        t.add_row(name, "/".join(cls.data_kinds), cls.summary)
    console.print(t)
    t = Table("loss", "what it is", title="adversarial losses (loss.name)")
    for name in LOSSES.names():
        t.add_row(name, LOSSES.get(name).summary)
    console.print(t)


def _parse_labels(labels: Optional[str], n: int, num_classes: int) -> Any:
    import torch

    if labels is None:
        return None
    if num_classes <= 0:
        raise GanpipeError("--labels given but this model is not class-conditional")
    try:
        ids = [int(x) for x in labels.split(",") if x.strip() != ""]
    except ValueError:
        raise GanpipeError(f"--labels must be comma-separated class ids, got {labels!r}") from None
    bad = [i for i in ids if not 0 <= i < num_classes]
    if bad or not ids:
        raise GanpipeError(f"labels {bad or ids} out of range 0..{num_classes - 1}")
    return torch.tensor([ids[i % len(ids)] for i in range(n)])


@app.command()
@handle_errors
def generate(
    model_uri: str = typer.Argument(..., help="e.g. models:/ganpipe-dcgan-digits@champion, or a checkpoint folder."),
    n: int = typer.Option(64, "-n", help="Number of samples."),
    out: Path = typer.Option(Path("samples.png"), help="PNG grid, or .npy for the raw array."),
    seed: int = typer.Option(0),
    labels: Optional[str] = typer.Option(None, help="Class ids for conditional models, e.g. 0,1,2 (cycled)."),
    truncation: Optional[float] = typer.Option(None, help="Truncation threshold for BigGAN-style models."),
    input_: Optional[Path] = typer.Option(None, "--input", help="Image or folder to translate (pix2pix, cyclegan)."),
    direction: Optional[str] = typer.Option(None, help="AtoB or BtoA (cyclegan)."),
) -> None:
    """Sample from a registered model (or a checkpoint) to a PNG grid or a .npy array."""
    import numpy as np

    from ganpipe.tracking.pyfunc import MAX_SAMPLES

    if not 1 <= n <= MAX_SAMPLES:
        raise GanpipeError(f"-n {n} is out of range 1..{MAX_SAMPLES}")
    sampler = _load_sampler(model_uri)
    kw: dict[str, Any] = {}
    lab = _parse_labels(labels, n, sampler.num_classes)
    if lab is not None:
        kw["labels"] = lab
    if truncation is not None:
        if truncation <= 0:
            raise GanpipeError("--truncation must be > 0")
        kw["truncation"] = truncation
    if direction is not None:
        if direction not in ("AtoB", "BtoA"):
            raise GanpipeError(f"--direction must be AtoB or BtoA, got {direction!r}")
        kw["direction"] = direction
    if input_ is not None:
        kw["inputs"] = _load_inputs(input_, sampler.spec)
        n = len(kw["inputs"])
    try:
        x = sampler.generate(n, seed=seed, **kw)
    except (ValueError, TypeError) as e:
        raise GanpipeError(f"cannot generate with this model: {e}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npy":
        np.save(out, x.numpy())
    else:
        if sampler.output_kind != "images":
            raise GanpipeError("this model generates points, not images", hint="use --out samples.npy")
        from ganpipe.viz import save_grid

        save_grid(x, str(out))
    console.print(f"wrote {n} samples to {out}")


def _load_inputs(path: Path, spec: dict[str, Any]) -> Any:
    """An image or a folder of images as a tensor shaped for a translator's input."""
    from ganpipe.data.images import list_images, load_images
    from ganpipe.data.loading import images_to_tensor

    if not path.exists():
        raise GanpipeError(f"--input not found: {path}")
    files = list_images(path) if path.is_dir() else [path]
    if not files:
        raise GanpipeError(f"no images in {path}")
    channels = int(spec.get("in_channels", spec.get("channels", 3)))
    return images_to_tensor(load_images(files, int(spec["image_size"]), channels))


def _load_sampler(model_uri: str) -> Any:
    p = Path(model_uri)
    if p.is_dir():
        from ganpipe.gans.base import sampler_from_export
        from ganpipe.train.checkpoint import load_export

        return sampler_from_export(*load_export(p))
    from ganpipe.tracking.pyfunc import load_sampler

    return load_sampler(model_uri)


# Sub-command groups in their own modules (registered on import).
from ganpipe import cli_eval, cli_prefect, cli_registry  # noqa: E402,F401


def main() -> None:
    app()


if __name__ == "__main__":
    main()
