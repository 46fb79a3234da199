"""Data sources, registered by name: built-in sets (offline, from data that installed
packages ship) and importers for users' folders (`imagefolder:PATH`, ...).

A source produces an `Examples` table in memory; `prepare` turns it into Parquet shards.
Built-in image sets are first materialised as an image folder under the raw data root
(`data/`, tracked by data.dvc), so the raw data is versioned like a user's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from ganpipe.data.images import IMAGE_EXTS, list_images, load_images, native_channels
from ganpipe.catalog import Catalog
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
    reader: Callable[[Path | None, Any], Examples]  # (raw path, DataConfig) -> Examples
    materialize: Callable[[Path], Path] | None = None  # writes raw files under data root; returns the folder
    default_size: int = 16


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


# -- image folders ------------------------------------------------------------------------

def read_imagefolder(path: Path | None, cfg: Any) -> Examples:
    """ImageFolder layout: one sub-folder per class (or images directly in the folder)."""
    if path is None or not path.exists():
        raise DataError(f"image folder not found: {path}", hint="check the path after 'imagefolder:'")
    if not path.is_dir():
        raise DataError(f"not a folder: {path}", hint="imagefolder: expects a folder of class sub-folders")
    classes = sorted(d.name for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    files: list[Path] = []
    labels: list[int] = []
    loose = [p for p in sorted(path.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_EXTS and not p.name.startswith(".")]
    if loose and classes:  # both layouts at once: the loose images would be left out silently
        shown = ", ".join(p.name for p in loose[:10]) + (f" and {len(loose) - 10} more" if len(loose) > 10 else "")
        raise DataError(
            f"{len(loose)} image file(s) directly in {path}, next to class folders ({', '.join(classes[:10])}): {shown}",
            hint="move them into a class sub-folder or remove them (imagefolder: reads class sub-folders, or one flat folder of images)",
        )
    if loose:
        files, labels = loose, [0] * len(loose)
    empty = []
    for ci, c in enumerate(classes):
        found = list_images(path / c)
        if not found:
            empty.append(c)
        files += found
        labels += [ci] * len(found)
    if not files:
        raise DataError(f"no images found in {path}", hint="put PNG/JPEG files in class sub-folders (ImageFolder layout)")
    if empty:
        raise DataError(
            f"empty class folder(s) in {path}: {', '.join(empty)}", hint="remove empty class folders or add images to them"
        )
    channels = cfg.channels or native_channels(files)
    images = load_images(files, cfg.image_size, channels)
    return Examples(
        "images",
        {"image": images, "label": np.asarray(labels, dtype=np.int64)},
        class_names=classes,
        extra={"files": len(files)},
    )


IMPORTERS.add("imagefolder", Source("imagefolder", "images", "class sub-folders of PNG/JPEG images", read_imagefolder))


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


def _read_materialized(name: str) -> Callable[[Path | None, Any], Examples]:
    def read(path: Path | None, cfg: Any) -> Examples:
        folder = path if path is not None else Path(cfg.raw_root) / name
        if not folder.exists():
            raise DataError(
                f"raw data for {name!r} is missing at {folder}",
                hint=f"run `ganpipe data fetch {name}` (or `dvc pull`)",
            )
        return read_imagefolder(folder, cfg)

    return read


SOURCES.add(
    "digits",
    Source(
        "digits",
        "images",
        "scikit-learn handwritten digits: 1,797 8x8 grayscale images, 10 classes",
        _read_materialized("digits"),
        _materialize_digits,
        16,
    ),
)


def fetch(name: str, raw_root: Path) -> Path:
    """Materialise a built-in source's raw files under `raw_root` (no-op for generated sets)."""
    src = SOURCES.get(name)
    if src.materialize is None:
        raise DataError(f"{name!r} is generated at prepare time; nothing to fetch")
    raw_root.mkdir(parents=True, exist_ok=True)
    return src.materialize(raw_root)


def read_source(source: str, cfg: Any) -> Examples:
    src, path = resolve(source)
    return src.reader(path, cfg)


# Further sources register themselves on import (kept in their own modules by data kind).
from ganpipe.data import faces, mixtures, translation  # noqa: E402,F401
