"""The admin console at ``/_/``: a single-page app (``static/``) on a JSON API under
``/_/api/`` (docs/console.md). ``api`` is the logic, ``http`` the adapter, ``store`` its
tables, ``cli`` the ``minibase admins``/``export``/``import``/``backup``/``restore`` commands.

Importing this package is cheap: the app imports :class:`ConsoleMount` at start, which
builds the rest on the first request under ``/_/``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.types import Receive, Scope, Send

if TYPE_CHECKING:
    from ..core import Minibase
    from ..util.counters import Counters

__all__ = ["ConsoleMount"]


class ConsoleMount:
    """What the app holds: the audit sink (installed at once, so the trail starts with the
    first request) and the console's ASGI app (built on first use)."""

    def __init__(self, core: Minibase, counters: Counters) -> None:
        from .sink import AuditSink

        self.core = core
        self.counters = counters
        self.sink = AuditSink.install(core.config)
        self._app: Any = None

    def bind(self, loop: Any) -> None:
        """At the app's start: the audit events of this loop are this app's."""
        self.sink.bind(loop)

    async def close(self) -> None:
        await self.sink.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            from .api import Console
            from .http import console_app

            self._app = console_app(Console(self.core, self.counters, self.sink))
        await self._app(scope, receive, send)
