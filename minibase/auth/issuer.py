"""Where login and refresh get invoke credentials: the local minter or STS (docs/architecture.md#concepts).

``auth.credentials = "local"`` mints them statelessly (:class:`CredentialMinter`);
``"sts"`` asks STS ``AssumeRole`` (:mod:`minibase.auth.sts`, imported only then).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from ..config import Config
from .credentials import CredentialMinter, Credentials

__all__ = ["CredentialIssuer", "LocalIssuer", "build_issuer"]


class CredentialIssuer(Protocol):
    async def issue(self, session_ref: str, uid: str, now: float) -> Credentials:
        """Credentials for the session ``session_ref`` (its row id) of user ``uid``."""
        ...


class LocalIssuer:
    """Credentials minted by this server, verified by :mod:`minibase.auth.gateway`."""

    def __init__(self, minter: CredentialMinter) -> None:
        self.minter = minter

    async def issue(self, session_ref: str, uid: str, now: float) -> Credentials:
        return self.minter.mint(session_ref, uid, now)


def build_issuer(config: Config, minter: CredentialMinter, functions: Iterable[str]) -> CredentialIssuer:
    """The issuer ``auth.credentials`` selects; ``functions`` are the names clients invoke."""
    sts = config.auth.sts
    if config.auth.credentials != "sts" or sts is None:
        return LocalIssuer(minter)
    from .sts import StsIssuer

    return StsIssuer(sts, config.app.service, functions)
