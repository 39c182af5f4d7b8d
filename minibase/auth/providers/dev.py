"""The ``dev`` provider: ``dev:<name>`` logs in as the stable test user ``<name>``.

Local development only; the config must enable it and ``serve`` warns when it does.
"""

from __future__ import annotations

import re

from ...errors import Unauthenticated
from .base import Identity

_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


class DevProvider:
    name = "dev"

    async def exchange(self, code: str) -> Identity:
        prefix, _, name = code.partition(":")
        if prefix != "dev" or not _NAME.match(name):
            raise Unauthenticated("a dev authCode looks like 'dev:<name>' (1-64 of A-Z a-z 0-9 _ . @ -)")
        return Identity(provider="dev", app_id="dev", subject=name)

    async def aclose(self) -> None:
        return None


def from_config(config: object) -> DevProvider:
    """The provider of ``[auth.dev] enabled = true`` (it has no other settings)."""
    return DevProvider()
