"""`parquet:PATH`: encoded images in a Parquet column, as Hugging Face datasets and many export
tools write them. PATH is one file or a folder of `*.parquet` files (read in sorted order).

The image column is a binary column of encoded image bytes (PNG, JPEG, ...) or the struct
`{"bytes": binary, "path": string}` of Hugging Face's `Image` feature; the one named
`image`/`img` wins when several qualify. An optional `label`/`labels`/`class` column holds
integer class ids (names from Hugging Face's `ClassLabel` metadata when present) or class
names. Rows are split by a hash of their image bytes, so appending rows never moves a row
between splits. A preparation task reads whole row groups.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterator

from ganpipe.data.plan import READERS, Example, Plan, opener
from ganpipe.data.shards import shard_rows
from ganpipe.errors import DataError

IMAGE_NAMES = ("image", "img", "images", "picture")
LABEL_NAMES = ("label", "labels", "class")
PROBE_ROWS = 64  # images whose mode decides the channel count when data.channels is unset


def _files(path: Path | None) -> list[Path]:
    if path is None or not path.exists():
        raise DataError(f"Parquet source not found: {path}", hint="check the path after 'parquet:' (a .parquet file or a folder of them)")
    files = [path] if path.is_file() else sorted(path.rglob("*.parquet"))
    if not files:
        raise DataError(f"no .parquet files in {path}", hint="parquet: expects a .parquet file or a folder of them")
    return files


def _open(f: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(f)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"not a readable Parquet file: {f} ({str(e)[:120]})", hint="remove it from the folder or re-export it") from None


def _is_image_type(t: Any) -> bool:
    import pyarrow as pa

    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return True
    if pa.types.is_struct(t):
        i = t.get_field_index("bytes")
        return i >= 0 and (pa.types.is_binary(t.field(i).type) or pa.types.is_large_binary(t.field(i).type))
    return False


def image_column(schema: Any, where: Path) -> str:
    found = [f.name for f in schema if _is_image_type(f.type)]
    if len(found) == 1:
        return found[0]
    named = [n for n in found if n.lower() in IMAGE_NAMES]
    if len(named) == 1:
        return named[0]
    cols = ", ".join(f"{f.name}: {f.type}" for f in schema)
    if not found:
        raise DataError(
            f"{where} has no column of encoded image bytes (columns: {cols})",
            hint='parquet: needs a binary column of PNG/JPEG bytes, or a struct {"bytes": binary, ...} (Hugging Face Image)',
        )
    raise DataError(f"{where} has several image columns ({', '.join(found)}) and none is named {'/'.join(IMAGE_NAMES)}", hint="keep one image column, or name the one to use `image`")


def label_column(schema: Any, where: Path) -> str | None:
    import pyarrow as pa

    name = next((f.name for f in schema if f.name.lower() in LABEL_NAMES), None)
    if name is None:
        return None
    t = schema.field(name).type
    if not (pa.types.is_integer(t) or pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t)):
        raise DataError(f"{where}: label column {name!r} has type {t}", hint="labels must be integer class ids or class-name strings")
    return name


def _hf_class_names(schema: Any, column: str) -> list[str] | None:
    """Class names from Hugging Face's schema metadata (a ClassLabel feature), if written."""
    meta = (schema.metadata or {}).get(b"huggingface")
    if not meta:
        return None
    try:
        feat = json.loads(meta)["info"]["features"][column]
        names = feat.get("names") if feat.get("_type") == "ClassLabel" else None
        return [str(n) for n in names] if names else None
    except (KeyError, TypeError, ValueError):
        return None


def plan_parquet(path: Path | None, cfg: Any, source: str | None = None) -> Plan:
    import pyarrow as pa
    import pyarrow.compute as pc

    files = _files(path)
    pfs = [_open(f) for f in files]
    schema = pfs[0].schema_arrow
    image = image_column(schema, files[0])
    label = label_column(schema, files[0])
    for f, pf in zip(files[1:], pfs[1:]):
        s = pf.schema_arrow
        if image not in s.names or not _is_image_type(s.field(image).type) or (label is not None and label not in s.names):
            raise DataError(f"{f} does not have the columns of {files[0]} ({image}{', ' + label if label else ''})", hint="all files of a parquet: source need the same columns")
    label_map: dict[str, int] | None = None
    classes: list[str] = []
    if label is not None:  # one column read over all files: small next to the images
        col = pa.chunked_array([c for pf in pfs for c in pf.read(columns=[label]).column(0).chunks])
        if col.null_count:
            raise DataError(f"{col.null_count} row(s) of {path} have no {label!r}", hint="fill in the labels or drop the label column")
        if pa.types.is_dictionary(col.type):
            col = col.cast(pa.string())
        if pa.types.is_integer(col.type):
            lo, hi = (pc.min(col).as_py(), pc.max(col).as_py()) if len(col) else (0, -1)
            if lo is not None and lo < 0:
                raise DataError(f"{path}: label column {label!r} has negative ids (e.g. {lo}: Hugging Face writes -1 for 'no label')", hint="drop unlabelled rows or the label column")
            classes = _hf_class_names(schema, label) or [str(i) for i in range(hi + 1)]
            if hi >= len(classes):
                raise DataError(f"{path}: label id {hi} but only {len(classes)} class names in the metadata", hint="fix the labels or the ClassLabel names")
        else:
            classes = sorted(set(col.to_pylist()))
            label_map = {c: i for i, c in enumerate(classes)}
    channels = cfg.channels or _probe_channels(pfs[0], image)
    target = shard_rows(cfg.image_size * cfg.image_size * channels)
    chunks: list[dict[str, Any]] = []
    parts: list[list[Any]] = []  # [file, row groups, index of its first row] of the chunk being filled
    rows = total = 0
    for f, pf in zip(files, pfs):  # whole row groups, several files to a chunk when they are small
        meta, first = pf.metadata, 0
        for rg in range(meta.num_row_groups):
            if not parts or parts[-1][0] != str(f):
                parts.append([str(f), [], first])
            parts[-1][1].append(rg)
            n = meta.row_group(rg).num_rows
            rows, first = rows + n, first + n
            if rows >= target:
                chunks.append({"kind": "parquet", "parts": parts, "image": image, "label": label, "label_map": label_map})
                parts, rows = [], 0
        total += meta.num_rows
    if parts:
        chunks.append({"kind": "parquet", "parts": parts, "image": image, "label": label, "label_map": label_map})
    if total == 0:
        raise DataError(f"no rows in {path}", hint="the Parquet file(s) are empty")
    return Plan(source or f"parquet:{path}", str(path), chunks, total, channels, classes, {"files": len(files), "rows": total, "image_column": image, "label_column": label})


def _probe_channels(pf: Any, image: str) -> int:
    """3 if any of the first PROBE_ROWS images is in colour, else 1."""
    from PIL import Image

    from ganpipe.data.images import GRAY_MODES, READ_ERRORS

    if pf.metadata.num_row_groups == 0:
        return 1
    for batch in pf.iter_batches(batch_size=PROBE_ROWS, row_groups=[0], columns=[image]):
        for cell in batch.column(0).to_pylist():
            data = cell.get("bytes") if isinstance(cell, dict) else cell
            try:
                with Image.open(opener(data, "image")()) as im:
                    if im.mode not in GRAY_MODES:
                        return 3
            except READ_ERRORS:
                continue
        break
    return 1


def read_parquet_chunk(chunk: dict[str, Any]) -> Iterator[Example]:
    import pyarrow.parquet as pq

    cols = [chunk["image"]] + ([chunk["label"]] if chunk["label"] else [])
    label_map = chunk["label_map"]
    for file, row_groups, first in chunk["parts"]:
        table = pq.ParquetFile(file).read_row_groups(row_groups, columns=cols)
        images = table.column(chunk["image"]).to_pylist()
        labels = table.column(chunk["label"]).to_pylist() if chunk["label"] else [0] * len(images)
        del table
        for i, (cell, y) in enumerate(zip(images, labels)):
            data = cell.get("bytes") if isinstance(cell, dict) else cell
            what = f"{file}#row {first + i}"
            key = "sha:" + hashlib.blake2b(data, digest_size=16).hexdigest() if data is not None else f"row:{Path(file).name}:{first + i}"
            yield Example(key, what, int(label_map[y]) if label_map is not None else int(y), opener(data, what))


READERS.add("parquet", read_parquet_chunk)
