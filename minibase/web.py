"""The ``[app] web`` folder, served at ``/``: static files and nothing else.

Only regular files under the folder itself are served: no path with a segment starting
with ``.`` (``/.env``, ``/.git/config``), and no symlink that resolves outside the folder
(or onto a dotfile inside it). Every answer carries ``X-Content-Type-Options: nosniff`` and
the configured Content-Security-Policy (with ``frame-ancestors``). Which folders may be
served at all is decided at config time (``config._check_web``).
"""

from __future__ import annotations

import os

from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

__all__ = ["WebFiles"]


def _hidden(relpath: str) -> bool:
    """Whether a relative path has a segment starting with "." ("." itself is the folder:
    Starlette looks up "./index.html" for "/")."""
    return any(p.startswith(".") and p != "." for p in relpath.replace("\\", "/").split("/"))


class WebFiles(StaticFiles):
    def __init__(self, directory: os.PathLike[str] | str, csp: str) -> None:
        super().__init__(directory=directory, html=True, follow_symlink=False)
        self.root = os.path.realpath(directory)
        self.headers = [(b"x-content-type-options", b"nosniff"), (b"content-security-policy", csp.encode())]

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        # `path` is normalised ('..' folded), so a dot segment left in it is a real one.
        if _hidden(path):
            return "", None
        full, st = super().lookup_path(path)  # follow_symlink=False: realpath stays inside
        if st is None or _hidden(os.path.relpath(full, self.root)):
            return "", None
        return full, st

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = self.headers

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        await super().__call__(scope, receive, with_headers)
