"""minibase: a Python backend for mini-programs.

The curated public API. Names are imported lazily so that ``import minibase`` stays cheap
(serverless cold start counts): the HTTP stack loads only when ``create_app`` is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import Config, load_config
from .errors import (
    ConfigError,
    Conflict,
    ContentRejected,
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    MethodNotAllowed,
    MinibaseError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ProviderError,
    RateLimited,
    Unauthenticated,
    Unavailable,
    ValidationFailed,
)

if TYPE_CHECKING:
    from .app import create_app
    from .core import Minibase
    from .functions import Context, function

__version__ = "0.1.0"

__all__ = [
    "Config",
    "ConfigError",
    "Conflict",
    "ContentRejected",
    "Context",
    "DeadlineExceeded",
    "Internal",
    "InvalidArgument",
    "MethodNotAllowed",
    "Minibase",
    "MinibaseError",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "ProviderError",
    "RateLimited",
    "Unauthenticated",
    "Unavailable",
    "ValidationFailed",
    "create_app",
    "function",
    "load_config",
]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "Minibase":
        from .core import Minibase

        return Minibase
    if name in ("function", "Context"):
        from . import functions

        return getattr(functions, name)
    raise AttributeError(f"module 'minibase' has no attribute {name!r}")
