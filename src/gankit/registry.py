"""Named choices (losses, models, data sets, metrics, feature extractors, export formats) listed once.

Each module that defines a kind of thing owns its registry and registers its entries where it
defines them; config validation and the CLI's choices read the names from there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from gankit.errors import GankitError

T = TypeVar("T")


class Registry(Generic[T]):
    """An ordered name -> entry table whose unknown names are user errors listing the known ones."""

    def __init__(self, kind: str):
        self.kind = kind  # what a name names, for messages: "loss", "metric", ...
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: `@LOSSES.register("hinge")` adds the decorated object under `name`."""

        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = entry
            return entry

        return add

    def __getitem__(self, name: str) -> T:
        if name not in self._entries:
            raise GankitError(f"unknown {self.kind} '{name}' (known: {', '.join(self._entries)})")
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(self._entries.items())

    def entries(self) -> Iterator[T]:
        return iter(self._entries.values())
