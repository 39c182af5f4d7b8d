"""Optional JSON Schema per collection, checked on every write (fastjsonschema).

fastjsonschema compiles a schema into Python code once, so a check costs about what a
hand-written one would; it is compiled on first use, not at import (cold start).
The schema sees the document as the client writes it: ``id`` plus the user fields, not
the system fields the server adds (``uid``, ``_version``, ``_created``, ``_updated``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ValidationFailed

__all__ = ["Schema", "check_schema"]


def check_schema(schema: object) -> None:
    """Raise ValueError if ``schema`` is not a usable JSON Schema (used at config load)."""
    if not isinstance(schema, dict):
        raise ValueError("a schema must be a JSON object")
    import fastjsonschema

    try:
        fastjsonschema.compile(schema)
    except fastjsonschema.JsonSchemaDefinitionException as e:
        raise ValueError(f"invalid JSON Schema: {e}") from None


class Schema:
    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = dict(schema)
        self._validate: Callable[[Any], Any] | None = None

    def validate(self, doc_id: str, fields: Mapping[str, Any]) -> None:
        import fastjsonschema

        if self._validate is None:
            self._validate = fastjsonschema.compile(self.schema)
        try:
            self._validate({"id": doc_id, **fields})
        except fastjsonschema.JsonSchemaValueException as e:
            path = "/" + "/".join(str(p) for p in (e.path or [])[1:])
            message = str(e.message).replace("data.", "", 1).replace("data ", "document ", 1)
            raise ValidationFailed(message, path=path) from None
