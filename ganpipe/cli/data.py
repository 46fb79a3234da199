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
) -> None:
    """Write Parquet shards (train/val/test) and a manifest for SOURCE."""
    from ganpipe.config import DataConfig
    from ganpipe.data.prepare import prepare
    from ganpipe.config import dataset_key

    try:
        cfg = DataConfig(source=source, image_size=image_size, channels=channels or None, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed, raw_root=str(raw_root))
    except Exception as e:
        raise GanpipeError(f"invalid option: {e}") from None
    out = out or Path("prepared") / dataset_key(source)
    m = prepare(source, out, cfg)
    console.print(f"prepared {source} -> {out}: {m['counts']} ({m['kind']}, {m['image_size']}px x{m['channels']}), fingerprint {m['fingerprint'][:12]}")

