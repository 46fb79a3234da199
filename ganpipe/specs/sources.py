"""Data source and importer names with the kind of data each yields (readers: ganpipe.data.sources).

Family checks need the kind before any data is read: pix2pix wants paired images, toy points.
"""

from __future__ import annotations

from ganpipe.catalog import Catalog

SOURCE_KINDS: Catalog[str] = Catalog("data source")
IMPORTER_KINDS: Catalog[str] = Catalog("data importer")  # used as "<name>:PATH"

for _name, _kind in {"digits": "images", "faces": "images", "colorize": "paired", "textures": "unpaired", "ring8": "points", "grid25": "points", "stacked-digits": "images"}.items():
    SOURCE_KINDS.add(_name, _kind)
for _name, _kind in {"imagefolder": "images", "parquet": "images", "aligned": "paired", "unaligned": "unpaired"}.items():
    IMPORTER_KINDS.add(_name, _kind)


def source_kind(source: str) -> str:
    """Kind of a `data.source` string; an unknown name is an UnknownNameError listing the valid ones."""
    if ":" in source:
        return IMPORTER_KINDS.get(source.split(":", 1)[0])
    return SOURCE_KINDS.get(source)


def sources_of_kind(kind: str) -> list[str]:
    """Source strings that yield `kind` data, importers as `name:PATH` (for error hints)."""
    return [n for n in SOURCE_KINDS.names() if SOURCE_KINDS.get(n) == kind] + [
        f"{n}:PATH" for n in IMPORTER_KINDS.names() if IMPORTER_KINDS.get(n) == kind
    ]
