"""The TODO example's own functions, called like built-ins:

POST /invoke/clearCompleted            (Authorization: Bearer <sessionId>)
mb.callFunction('clearCompleted', {})  (JS SDK)
"""

import os

from minibase import InvalidArgument, NotFound, function

# The subscribe-message template a "todo done" notice uses, per platform (set up on the
# platform's console; the user must have accepted it with wx.requestSubscribeMessage /
# my.requestSubscribeMessage). Unset: notifyDone completes the todo and sends nothing.
DONE_TEMPLATES = {"wechat": "WECHAT_DONE_TEMPLATE", "alipay": "ALIPAY_DONE_TEMPLATE"}


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


@function("notifyDone")
async def notify_done(ctx, event):
    """Complete a todo and tell its owner through the platform's subscribe message."""
    todo = await ctx.db.update("todo_list", event.get("id", ""), set={"completed": True})
    if todo is None:
        raise NotFound("no such todo")
    identity = ctx.identity
    variable = DONE_TEMPLATES.get(identity.provider) if identity else None
    template = os.environ.get(variable) if variable else None
    if not template:
        return {"todo": todo, "sent": False}
    title = str(todo.get("title", ""))[:20]  # WeChat's "thing" values hold 20 characters
    if identity.provider == "wechat":
        await ctx.platform.wechat.send_subscribe_message(
            identity.openid, template, {"thing1": title, "phrase2": "done"}, page="pages/index/index"
        )
    else:
        await ctx.platform.alipay.send_template_message(
            identity.openid, template, {"keyword1": title, "keyword2": "done"}, page="pages/index/index"
        )
    ctx.log.info("sent the done notice for %s", todo["id"])
    return {"todo": todo, "sent": True}
