"""The developer's own functions: ``@function`` to declare, a registry to load and call them.

::

    from minibase import function

    @function("clearCompleted")
    async def clear_completed(ctx, event):
        done = await ctx.db.query("todo_list", where={"completed": True}, limit=1000)
        await ctx.db.batch([{"op": "remove", "id": d["id"]} for d in done["data"]], collection="todo_list")
        return {"removed": len(done["data"])}
"""

from __future__ import annotations

from .context import Context, DataHandle
from .registry import FunctionSpec, Registry, function

__all__ = ["Context", "DataHandle", "FunctionSpec", "Registry", "function"]
