"""Realtime watches (docs/realtime.md): the hub that follows the outbox and the connections
that carry watches. Transport-independent: the WebSocket and SSE adapters are in
:mod:`minibase.realtime.http`. Imported only when ``minibase serve`` starts realtime."""
