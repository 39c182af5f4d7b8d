"""The ``dev`` provider: ``dev:<name>`` logs in as the stable test user ``<name>``.

Local development only; the config must enable it and ``serve`` warns when it does.
"""

from __future__ import annotations

from ...errors import Unauthenticated
from ...util.names import DEV_USER_RE
from .base import Identity


class DevProvider:
    name = "dev"

    async def exchange(self, code: str) -> Identity:
        prefix, _, name = code.partition(":")
        if prefix != "dev" or not DEV_USER_RE.fullmatch(name):
            raise Unauthenticated("a dev authCode looks like 'dev:<name>' (1-64 of A-Z a-z 0-9 _ . @ -)")
        return Identity(provider="dev", app_id="dev", subject=name)

    async def aclose(self) -> None:
        return None


def from_config(config: object) -> DevProvider:
    """The provider of ``[auth.dev] enabled = true`` (it has no other settings)."""
    return DevProvider()
