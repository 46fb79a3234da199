"""Name -> object catalogs: families, losses, data sources and metrics are looked up here.

A wrong name fails with the list of valid names, so configs never fall through silently.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, Iterator, TypeVar

from ganpipe.errors import UnknownNameError

T = TypeVar("T")


class Catalog(Generic[T]):
    """Names to objects of one kind (families, losses, sources, metrics, figures).

    `names`: the torch-free catalog in `ganpipe.specs` that config checks use; registering a
    name it lacks fails at import, so the two cannot drift apart.
    """

    def __init__(self, kind: str, names: Catalog[Any] | None = None):
        self.kind = kind
        self.allowed = names
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            if self.allowed is not None and name not in self.allowed:
                raise ValueError(f"{self.kind} {name!r} has no entry in ganpipe.specs (config checks would reject it)")
            self._items[name] = obj
            return obj

        return deco

    def add(self, name: str, obj: T) -> T:
        return self.register(name)(obj)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; valid: {', '.join(sorted(self._items))}",
                hint=f"use one of the registered {self.kind} names",
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
