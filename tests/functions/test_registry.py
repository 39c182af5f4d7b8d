"""The registry holds the built-ins beside the developer's functions, each kind in its place."""

from __future__ import annotations

from typing import Any

import pytest

from minibase.functions.registry import FunctionSpec, Registry, function


async def _builtin(event: dict[str, Any], caller: Any, rid: str, base_url: str | None) -> Any:
    return None


def test_builtins_and_developer_functions_side_by_side() -> None:
    @function("hello")
    def hello(ctx: Any, event: Any) -> Any:
        return "hi"

    reg = Registry()
    reg.add(hello)
    reg.add_builtin(FunctionSpec("db", _builtin, True, None, True, builtin=True))
    assert "db" in reg and "hello" in reg and reg.developer() == ["hello"]
    spec = reg.get("hello")
    assert spec is not None and not spec.builtin and not spec.sessionless
    # A developer function cannot take a built-in's place, nor a built-in a developer name.
    with pytest.raises(ValueError, match="not a built-in"):
        reg.add_builtin(FunctionSpec("hello", _builtin, True, None, True, builtin=True))
    with pytest.raises(ValueError, match="not a built-in"):
        reg.add_builtin(FunctionSpec("files", _builtin, True, None, True))

    @function("db")
    def db(ctx: Any, event: Any) -> Any:
        return None

    with pytest.raises(ValueError, match="reserved"):
        reg.add(db)
