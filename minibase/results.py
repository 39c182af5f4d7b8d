"""What a function may return besides a plain JSON value."""

from __future__ import annotations

from typing import Any

from .util.record import record


@record(compiled=True)
class Page:
    """A page of results: rendered as ``{"data": [...], "next": cursor-or-null}``."""

    data: list[Any]
    next: str | None


@record(compiled=True)
class Spread:
    """An object whose keys go at the top level of the response *and* under ``data``.

    The session function answers this way (docs/http-api.md#envelopes): its fields at the
    top level (as the template's client reads them), while generic clients unwrap ``data``.
    """

    value: dict[str, Any]


@record(compiled=True)
class Raw:
    """An answer sent as it is (a webhook's: ``success`` for Alipay, 204 for WeChat Pay)."""

    status: int
    body: bytes
    content_type: str = "application/json"
