"""A preparation plan: what a file-backed source holds, cut into chunks that tasks prepare
independently (one chunk -> at most one shard per split).

A planner (one per importer) lists the examples without decoding them; a chunk is a small
JSON-able dict naming its examples, so it travels to a Ray task as a few kilobytes. The
reader registered for the chunk's `kind` yields its examples in the task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO, Any, Callable, Iterator

from ganpipe.catalog import Catalog


@dataclass(frozen=True)
class Example:
    """One example of a chunk: `key` decides its split, `name` is how errors and the manifest
    name it, `open` returns what PIL opens (a path or a file-like of encoded bytes)."""

    key: str
    name: str
    label: int
    open: Callable[[], Any]


@dataclass
class Plan:
    source: str  # the source string, for messages and the manifest
    root: str  # the folder or file the examples are read from
    chunks: list[dict[str, Any]]
    num_examples: int
    channels: int
    class_names: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


# chunk kind -> reader(chunk) yielding its examples, in order
READERS: Catalog[Callable[[dict[str, Any]], Iterator[Example]]] = Catalog("chunk reader")


def chunked(items: list[Any], rows: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), rows):
        yield items[start : start + rows]


def opener(payload: bytes | None, what: str) -> Callable[[], IO[bytes]]:
    """An `Example.open` over encoded bytes held in memory (a Parquet cell)."""
    import io

    def open_() -> IO[bytes]:
        if payload is None:
            raise ValueError(f"{what} is empty (null)")
        return io.BytesIO(payload)

    return open_
