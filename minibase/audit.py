"""Security events as one JSON object per log line, on the ``minibase.audit`` logger.

Each line has ``event`` (e.g. ``login.success``), ``requestId`` and, when known, ``uid``
and a ``reason``. Never a secret: no sessionId, credential, authCode or platform token.
Route the logger wherever audit trails go (a file, SLS on Function Compute)."""

from __future__ import annotations

import logging
from typing import Any

import orjson

log = logging.getLogger("minibase.audit")


def audit(event: str, request_id: str, **fields: Any) -> None:
    if log.isEnabledFor(logging.INFO):
        record = {
            "event": event,
            "requestId": request_id,
            **{k: v for k, v in fields.items() if v is not None},
        }
        log.info(orjson.dumps(record).decode())
