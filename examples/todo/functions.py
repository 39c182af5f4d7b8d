"""The TODO example's own functions, called like built-ins:

    POST /invoke/clearCompleted            (Authorization: Bearer <sessionId>)
    mb.callFunction('clearCompleted', {})  (JS SDK)
"""

from minibase import InvalidArgument, function


@function("clearCompleted")
async def clear_completed(ctx, event):
    """Remove the caller's completed todos; answers how many went."""
    removed = 0
    while True:
        page = await ctx.db.query("todo_list", where={"completed": True}, fields=["id"], limit=100)
        if not page["data"]:
            return {"removed": removed}
        await ctx.db.batch([{"op": "remove", "id": d["id"]} for d in page["data"]], collection="todo_list")
        removed += len(page["data"])
        ctx.log.info("removed %d completed todos", len(page["data"]))


@function("stats")
def stats(ctx, event):
    """How many todos the caller has, and how many are done (a sync function)."""
    total = ctx.db.count("todo_list")
    done = ctx.db.count("todo_list", where={"completed": True})
    return {"total": total, "completed": done, "open": total - done}


@function("rename", timeout=5)
async def rename(ctx, event):
    """Rename a todo, checking the input like any function should."""
    title = event.get("title")
    if not isinstance(title, str) or not title.strip():
        raise InvalidArgument("title must be a non-empty string")
    return await ctx.db.update("todo_list", event.get("id", ""), set={"title": title.strip()})
