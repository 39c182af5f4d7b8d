"""A value built on first use. Leaf module.

A serverless cold start pays for every import and object its first request does not need
(the ``db`` and ``files`` functions, the local file store), so those are built when first
asked for, once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Lazy"]

T = TypeVar("T")


class Lazy(Generic[T]):
    """``get()`` builds the value with ``build()`` the first time, then returns that one."""

    __slots__ = ("_build", "_value")

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None

    def get(self) -> T:
        value = self._value
        if value is None:
            value = self._value = self._build()
        return value

    @property
    def built(self) -> T | None:
        """The value if it was built, else None (nothing is built)."""
        return self._value
