"""The TODO example's own functions, called like built-ins:

POST /invoke/clearCompleted            (Authorization: Bearer <sessionId>)
mb.callFunction('clearCompleted', {})  (JS SDK)
"""

import os
import secrets
import time

from minibase import Conflict, InvalidArgument, NotFound, function
from minibase.events import after_write, schedule, webhook

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


# ---------------------------------------------------------------------------- events
# Webhooks, a scheduled job and a trigger (docs/events.md):
# - a fake "pay for premium" flow: buyPremium creates an order, Alipay's asynchronous
#   notification (POST /webhooks/payNotify) marks it paid and the buyer premium;
# - a nightly cleanup of orders never paid;
# - a trigger that keeps each user's count of todos.
# Orders, profiles and counts are written by the server (ctx.admin): clients may only read
# their own (write = "none" in minibase.toml).

PREMIUM_PRICE = "9.90"  # yuan, as Alipay writes amounts


@function("buyPremium")
async def buy_premium(ctx, event):
    """Create an order for premium; a real app then calls Alipay's alipay.trade.create with
    this out_trade_no and notify_url = <server>/webhooks/payNotify."""
    order_id = "pm" + secrets.token_hex(8)
    await ctx.admin.db.insert(
        "orders",
        {"id": order_id, "status": "pending", "amount": PREMIUM_PRICE, "since": time.time()},
        owner=ctx.uid,
    )
    return {"out_trade_no": order_id, "total_amount": PREMIUM_PRICE}


@webhook("payNotify", verify="alipay")
async def pay_notify(ctx, event):
    """Alipay says a trade changed: verified by minibase (signature, app_id) and run once
    per notify_id. Raising answers "fail", so Alipay retries."""
    p = event.payload
    if p.get("trade_status") not in ("TRADE_SUCCESS", "TRADE_FINISHED"):
        return
    found = await ctx.admin.db.query("orders", where={"id": p.get("out_trade_no", "")}, limit=1)
    if not found["data"]:
        ctx.log.warning("notification for an unknown order %s", p.get("out_trade_no"))
        return  # acknowledged: retrying will not make the order exist
    order = found["data"][0]
    if p.get("total_amount") != order["amount"]:
        ctx.log.error("order %s: paid %s, expected %s", order["id"], p.get("total_amount"), order["amount"])
        return
    await ctx.admin.db.update(
        "orders", order["id"], owner=order["uid"], set={"status": "paid", "trade_no": p.get("trade_no")}
    )
    await ctx.admin.db.put("profiles", {"id": "me", "premium": True}, owner=order["uid"])


@schedule("cleanup", cron="0 3 * * *")
async def cleanup(ctx, event):
    """Every night at 03:00 ([functions] timezone): drop orders left unpaid for a day."""
    cutoff = time.time() - 86400
    page = await ctx.admin.db.query(
        "orders", where={"status": "pending", "since": {"$lt": cutoff}}, limit=100
    )
    for order in page["data"]:
        await ctx.admin.db.remove("orders", order["id"], owner=order["uid"])
    ctx.log.info("removed %d unpaid orders", len(page["data"]))


@after_write("todo_list", ops=["insert", "remove"])
async def count_todos(ctx, change):
    """Keep todo_counts/me {n} per user. Triggers run at least once: a delivery repeated
    after a crash may count twice, which a counter like this one accepts."""
    uid, step = change["uid"], 1 if change["op"] == "insert" else -1
    try:
        await ctx.admin.db.update("todo_counts", "me", owner=uid, inc={"n": step})
    except NotFound:
        try:
            await ctx.admin.db.insert("todo_counts", {"id": "me", "n": step}, owner=uid)
        except Conflict:  # another event of this user created it meanwhile
            await ctx.admin.db.update("todo_counts", "me", owner=uid, inc={"n": step})
