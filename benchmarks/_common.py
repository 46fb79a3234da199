"""Shared set-up for the benchmark scripts: a config's data in a temporary folder, and the
final machine-readable line that `run_all.py` collects into its summary table."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def prepared(config: str | Path, work: Path, overrides: list[str] | None = None):
    """(resolved config, prepared data folder) for `config`, with its raw data materialised
    under `work` (DVC off: benchmarks must not touch the project's data repo)."""
    from ganpipe.config import load_config
    from ganpipe.data.prepare import prepare
    from ganpipe.data.sources import SOURCES

    sets = [f"data.raw_root={work / 'data'}", "data.use_dvc=false", *(overrides or [])]
    cfg = load_config(REPO / config, sets)
    src = SOURCES.get(cfg.data.source)
    data = work / "prepared" / cfg.data.key
    if not (data / "manifest.json").exists():
        if src.materialize is not None:
            src.materialize(work / "data")
        prepare(cfg.data.source, data, cfg.data)
    return cfg, data


def result_line(benchmark: str, figure: str, target: str, met: bool | None, **extra: Any) -> None:
    """`RESULT {json}`: one line per headline figure, for `make bench`'s summary table."""
    print("RESULT " + json.dumps({"benchmark": benchmark, "figure": figure, "target": target, "met": met, **extra}), flush=True)
