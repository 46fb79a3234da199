"""Data sources, registered by name: built-in sets (offline, from data that installed
packages ship) and importers for users' data (`imagefolder:PATH`, `parquet:PATH`, ...).

A file-backed source (image folders, Parquet, the built-in image sets) has a `planner`: it
lists the examples and `prepare` decodes them in parallel tasks. Sets made in memory (crops,
generated points, translation pairs) have a `reader` that returns an `Examples` table.
Built-in image sets are first materialised as an image folder under the raw data root
(`data/`, tracked by data.dvc), so the raw data is versioned like a user's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from ganpipe.catalog import Catalog
from ganpipe.data.folders import plan_imagefolder
from ganpipe.data.parquet_images import plan_parquet
from ganpipe.data.plan import Plan
from ganpipe.errors import DataError
from ganpipe.specs.sources import IMPORTER_KINDS, SOURCE_KINDS


@dataclass
class Examples:
    """In-memory data set: `arrays` share their first dimension (images are N x H x W x C uint8)."""

    kind: str  # images | paired | unpaired | points
    arrays: dict[str, np.ndarray]
    class_names: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))


@dataclass(frozen=True)
class Source:
    name: str
    kind: str
    description: str
    reader: Callable[[Path | None, Any], Examples] | None = None  # (raw path, DataConfig) -> Examples in memory
    materialize: Callable[[Path], Path] | None = None  # writes raw files under data root; returns the folder
    default_size: int = 16
    planner: Callable[[Path | None, Any], Plan] | None = None  # (raw path, DataConfig) -> Plan of files to prepare


# Names and kinds are declared in ganpipe.specs.sources, where config checks read them.
SOURCES: Catalog[Source] = Catalog("data source", names=SOURCE_KINDS)
IMPORTERS: Catalog[Source] = Catalog("data importer", names=IMPORTER_KINDS)  # used as "<name>:PATH"


def resolve(source: str) -> tuple[Source, Path | None]:
    """Look up a source string; importers return the user path they were given."""
    if ":" in source:
        prefix, path = source.split(":", 1)
        imp = IMPORTERS.get(prefix)
        return imp, Path(path).expanduser()
    return SOURCES.get(source), None


# -- users' files ----------------------------------------------------------------------------

IMPORTERS.add(
    "imagefolder",
    Source("imagefolder", "images", "class sub-folders of images (or nested folders labelled by data.labels: a CSV/Parquet file)", planner=plan_imagefolder),
)
IMPORTERS.add(
    "parquet",
    Source("parquet", "images", "a Parquet file (or folder of them) with a column of encoded image bytes (Hugging Face layout) and an optional label column", planner=plan_parquet),
)


def write_imagefolder(root: Path, images: np.ndarray, labels: np.ndarray, class_names: list[str]) -> Path:
    """Materialise uint8 images (N x H x W [x C]) as root/<class>/<index>.png, deterministically."""
    tmp = root.with_name(root.name + ".tmp")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    for i, (img, y) in enumerate(zip(images, labels)):
        d = tmp / class_names[int(y)]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img.squeeze()).save(d / f"{i:05d}.png", optimize=False)
    if root.exists():
        import shutil

        shutil.rmtree(root)
    tmp.rename(root)
    return root


# -- built-in sets -------------------------------------------------------------------------

def _materialize_digits(raw_root: Path) -> Path:
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = np.clip(d.images * (255.0 / 16.0), 0, 255).round().astype(np.uint8)  # 8x8, values 0..16
    return write_imagefolder(raw_root / "digits", imgs, d.target, [str(i) for i in range(10)])


def plan_materialized(name: str) -> Callable[[Path | None, Any], Plan]:
    """The planner of a built-in set materialised as an image folder under the raw data root."""

    def plan(path: Path | None, cfg: Any) -> Plan:
        folder = path if path is not None else Path(cfg.raw_root) / name
        if not folder.exists():
            raise DataError(
                f"raw data for {name!r} is missing at {folder}",
                hint=f"run `ganpipe data fetch {name}` (or `dvc pull`)",
            )
        return plan_imagefolder(folder, cfg.model_copy(update={"labels": None}) if getattr(cfg, "labels", None) else cfg, source=name)

    return plan


SOURCES.add(
    "digits",
    Source(
        "digits",
        "images",
        "scikit-learn handwritten digits: 1,797 8x8 grayscale images, 10 classes",
        None,
        _materialize_digits,
        16,
        plan_materialized("digits"),
    ),
)


def fetch(name: str, raw_root: Path) -> Path:
    """Materialise a built-in source's raw files under `raw_root` (no-op for generated sets)."""
    src = SOURCES.get(name)
    if src.materialize is None:
        raise DataError(f"{name!r} is generated at prepare time; nothing to fetch")
    raw_root.mkdir(parents=True, exist_ok=True)
    return src.materialize(raw_root)


def planned(source: str, cfg: Any) -> Plan | None:
    """The preparation plan of a file-backed source; None for a set made in memory."""
    src, path = resolve(source)
    if src.planner is None:
        return None
    plan = src.planner(path, cfg)
    plan.source = source  # as the user wrote it, for the manifest
    return plan


def read_source(source: str, cfg: Any) -> Examples:
    src, path = resolve(source)
    if src.reader is None:
        raise ValueError(f"{source!r} is prepared from its plan (`planned`), not read into memory")
    return src.reader(path, cfg)


# Further sources register themselves on import (kept in their own modules by data kind).
from ganpipe.data import faces, mixtures, stacked, translation  # noqa: E402,F401
