"""Image folders as a preparation plan: `imagefolder:PATH` with one sub-folder per class (or one
flat folder of images), or any nested folders with labels from a CSV/Parquet file
(`data.labels`: a `file` column of paths relative to PATH and a `label` column).

Listing a folder opens no image (only `native_channels` peeks at headers until it meets a
colour one); decoding happens in the preparation tasks.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import Any, Iterator

from ganpipe.data.images import IMAGE_EXTS, image_names, native_channels
from ganpipe.data.plan import READERS, Example, Plan, chunked
from ganpipe.data.shards import shard_rows
from ganpipe.errors import DataError

FILE_COLUMNS = ("file", "path", "filename", "image")
LABEL_COLUMNS = ("label", "class", "labels")


def _shown(items: list[str], n: int = 10) -> str:
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def check_folder(path: Path | None, prefix: str = "imagefolder") -> Path:
    if path is None or not path.exists():
        raise DataError(f"image folder not found: {path}", hint=f"check the path after '{prefix}:'")
    if not path.is_dir():
        raise DataError(f"not a folder: {path}", hint=f"{prefix}: expects a folder of class sub-folders")
    return path


def class_folders(path: Path) -> tuple[list[str], list[int], list[str]]:
    """(files relative to `path`, labels, class names) of the ImageFolder layout: one
    sub-folder per class, or images directly in the folder (one class)."""
    classes = sorted(d.name for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    loose = [p for p in sorted(path.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_EXTS and not p.name.startswith(".")]
    if loose and classes:  # both layouts at once: the loose images would be left out silently
        raise DataError(
            f"{len(loose)} image file(s) directly in {path}, next to class folders ({', '.join(classes[:10])}): {_shown([p.name for p in loose])}",
            hint="move them into a class sub-folder or remove them (imagefolder: reads class sub-folders, or one flat folder of images)",
        )
    files: list[str] = [p.name for p in loose]
    labels: list[int] = [0] * len(loose)
    empty = []
    for ci, c in enumerate(classes):
        found = [f"{c}/{name}" for name in image_names(path / c)]
        if not found:
            empty.append(c)
        files += found
        labels += [ci] * len(found)
    if not files:
        raise DataError(f"no images found in {path}", hint="put PNG/JPEG files in class sub-folders (ImageFolder layout)")
    if empty:
        raise DataError(f"empty class folder(s) in {path}: {', '.join(empty)}", hint="remove empty class folders or add images to them")
    return files, labels, classes if classes else []


def read_label_file(labels: Path) -> tuple[list[str], list[Any]]:
    """(relative paths, label values) from a CSV or Parquet file."""
    import pyarrow as pa

    if not labels.is_file():
        raise DataError(f"labels file not found: {labels}", hint="data.labels names a CSV or Parquet file with `file` and `label` columns")
    try:
        if labels.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            table = pq.read_table(labels)
        else:
            import pyarrow.csv as pcsv

            table = pcsv.read_csv(labels)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"cannot read labels file {labels}: {str(e)[:200]}", hint="give a CSV (with a header row) or a Parquet file") from None
    cols = {c.lower(): c for c in table.column_names}
    fcol = next((cols[c] for c in FILE_COLUMNS if c in cols), None)
    lcol = next((cols[c] for c in LABEL_COLUMNS if c in cols), None)
    if fcol is None or lcol is None:
        raise DataError(
            f"labels file {labels} has columns {table.column_names}: it needs a file column ({'/'.join(FILE_COLUMNS)}) and a label column ({'/'.join(LABEL_COLUMNS)})",
            hint="rename the columns, e.g. `file,label`, with file paths relative to the image folder",
        )
    files = [str(v) if v is not None else "" for v in table.column(fcol).to_pylist()]
    values = table.column(lcol).to_pylist()
    missing = [f for f, v in zip(files, values) if v is None or f == ""]
    if missing:
        raise DataError(f"labels file {labels}: {len(missing)} row(s) without a file or a label", hint="fill in or remove those rows")
    return files, values


def labelled_files(path: Path, labels: Path) -> tuple[list[str], list[int], list[str]]:
    """Every image under `path` (nested folders, as paths relative to it), each labelled by
    the labels file."""
    names, values = read_label_file(labels)
    by_file: dict[str, Any] = {}
    dup = []
    for f, v in zip(names, values):
        key = posixpath.normpath(f.replace("\\", "/"))
        if key in by_file and by_file[key] != v:
            dup.append(f)
        by_file[key] = v
    if dup:
        raise DataError(f"labels file {labels} gives different labels to the same file: {_shown(dup)}", hint="keep one label per file")
    rel = image_names(path)
    if not rel:
        raise DataError(f"no images found in {path}", hint="put PNG/JPEG files under the folder (any nesting)")
    unlabelled = [r for r in rel if r not in by_file]
    if unlabelled:
        raise DataError(
            f"{len(unlabelled)} image(s) under {path} have no row in {labels}: {_shown(unlabelled)}",
            hint="add a row (file,label) for each image, or move unlabelled images out of the folder",
        )
    found = set(rel)
    absent = [f for f in by_file if f not in found]
    if absent:
        raise DataError(
            f"{len(absent)} file(s) named in {labels} are not images under {path}: {_shown(absent)}",
            hint="file paths are relative to the image folder; fix them or remove those rows",
        )
    classes = sorted({by_file[r] for r in rel}, key=lambda v: (isinstance(v, str), v))
    index = {c: i for i, c in enumerate(classes)}
    return rel, [index[by_file[r]] for r in rel], [str(c) for c in classes]


def plan_imagefolder(path: Path | None, cfg: Any, source: str | None = None) -> Plan:
    root = check_folder(path)
    labels = getattr(cfg, "labels", None)
    if labels:
        files, labels_, classes = labelled_files(root, Path(labels).expanduser())
    else:
        files, labels_, classes = class_folders(root)
    channels = cfg.channels or native_channels(root / f for f in files)
    rows = shard_rows(cfg.image_size * cfg.image_size * channels)
    items = [[f, y] for f, y in zip(files, labels_)]
    chunks = [{"kind": "files", "root": str(root), "items": part} for part in chunked(items, rows)]
    extra: dict[str, Any] = {"files": len(files)}
    if labels:
        extra["labels"] = str(labels)
    return Plan(source or f"imagefolder:{root}", str(root), chunks, len(files), channels, classes, extra)


def read_files(chunk: dict[str, Any]) -> Iterator[Example]:
    root = chunk["root"]
    for rel, label in chunk["items"]:
        p = os.path.join(root, rel)
        yield Example(rel, p, int(label), lambda p=p: p)


READERS.add("files", read_files)
