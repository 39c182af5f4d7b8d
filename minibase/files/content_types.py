"""Content types a browser could run: never admitted by a wildcard, always served as an
attachment (S3/OSS: a signed ``response-content-disposition``; local: the header)."""

from __future__ import annotations

__all__ = ["browser_active"]

# Types a browser renders as a document that can run script (SVG included): a wildcard
# pattern never admits them, and they are always served as attachments.
_ACTIVE = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/xsl",
        "text/javascript",
        "application/javascript",
        "application/x-javascript",
        "application/ecmascript",
        "text/ecmascript",
    }
)


def _essence(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def browser_active(content_type: str) -> bool:
    """Whether a browser could run ``content_type`` (html, svg, any xml, js)."""
    essence = _essence(content_type)
    return essence in _ACTIVE or essence.endswith("+xml")
