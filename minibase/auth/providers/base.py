"""What every login provider is: a code in, a platform identity out."""

from __future__ import annotations

from typing import Protocol

from ...store.records import Identity

__all__ = ["Identity", "Provider"]  # Identity lives with the other stored records


class Provider(Protocol):
    """Exchanges a host-app ``authCode`` for an :class:`Identity`.

    Raises ``Unauthenticated`` when the platform says the code is invalid or used,
    ``ProviderError`` when the platform fails, is unreachable, too slow, or answers
    something that cannot be trusted (e.g. a bad response signature).
    """

    name: str

    async def exchange(self, code: str) -> Identity: ...

    async def aclose(self) -> None: ...
