"""One registry for everything a config names: models, KD terms, losses, optimizers, schedulers, heads.

``Registry(kind)`` is a read-only mapping ``name -> class or builder``. ``@REG.register(name)``
adds one (a second registration of a name is an error), ``REG.build(name, *args, **kwargs)``
calls it, and an unknown name raises ``KeyError`` naming the kind and every known name, so a
typo in a config reads ``unknown scheduler 'cosin'; known: cosine, none, onecycle, ...``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


class Registry(Mapping, Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: make the class or function buildable as ``name``."""

        def wrap(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = obj
            return obj

        return wrap

    def __getitem__(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._items))}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """``self[name](*args, **kwargs)``."""
        return self[name](*args, **kwargs)
