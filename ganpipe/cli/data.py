"""`ganpipe data ...`: built-in sources, importers, preparation to Parquet."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ganpipe.cli.common import app, console, handle_errors
from ganpipe.errors import GanpipeError

data_app = typer.Typer(help="Built-in data sets, importers and preparation to Parquet.", no_args_is_help=True)
app.add_typer(data_app, name="data")

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
    on_bad_file: str = typer.Option("error", help="error: stop at an unreadable image; skip: leave it out (listed in the manifest)."),
    labels: str = typer.Option("", help="CSV/Parquet file (file,label) labelling an imagefolder: source's images."),
) -> None:
    """Write Parquet shards (train/val/test) and a manifest for SOURCE."""
    from ganpipe.config import DataConfig, dataset_key, format_errors
    from ganpipe.data.prepare import prepare_with_report
    from ganpipe.train.progress import fmt_duration
    from pydantic import ValidationError

    try:
        cfg = DataConfig(
            source=source, image_size=image_size, channels=channels or None, val_fraction=val_fraction, test_fraction=test_fraction,
            seed=seed, raw_root=str(raw_root), on_bad_file=on_bad_file, labels=labels or None,
        )  # fmt: skip
    except ValidationError as e:
        raise GanpipeError(f"invalid option: {format_errors(e, prefix='data')}") from None
    out = out or Path("prepared") / dataset_key(source)
    m, report = prepare_with_report(source, out, cfg, progress=True)
    console.print(f"prepared {source} -> {out}: {m['counts']} ({m['kind']}, {m['image_size']}px x{m['channels']}), fingerprint {m['fingerprint'][:12]}")
    if report is not None:
        console.print(f"{report.examples} images in {fmt_duration(report.seconds)} ({report.images_per_s:.0f} images/s, {report.chunks} chunk(s), {report.executor}); {len(report.skipped)} skipped")
        for s in report.skipped[:20]:
            console.print(f"  skipped {s['file']}: {s['reason']}")
        if len(report.skipped) > 20:
            console.print(f"  ... and {len(report.skipped) - 20} more (all listed in {out / 'manifest.json'})")

