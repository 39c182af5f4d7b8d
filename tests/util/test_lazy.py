from __future__ import annotations

from minibase.util.lazy import Lazy


def test_built_once_on_first_get() -> None:
    calls: list[int] = []

    def build() -> list[int]:
        calls.append(1)
        return [len(calls)]

    lazy = Lazy(build)
    assert lazy.built is None and calls == []
    first = lazy.get()
    assert lazy.get() is first and lazy.built is first and calls == [1]
