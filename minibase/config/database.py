"""``[database]``: where documents, users and sessions live."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..util.record import field, record
from .fields import Custom, Text, derived, read_fields, spec
from .reader import Reader
from .urls import TableStoreLocation, check_database_url, parse_tablestore_url

__all__ = ["DatabaseConfig"]


def _url(r: Reader, v: Any, key: str) -> str:
    return check_database_url(Text()(r, v, key), key)


@record
class DatabaseConfig:
    """The ``[database]`` section: where documents, users and sessions live."""

    url: str = field(
        default="sqlite:///minibase.db", metadata=spec(Custom(_url, "postgresql://placeholder/db"))
    )
    # TableStore credentials, from ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET/SECURITY_TOKEN (set
    # by the Function Compute runtime) when url is tablestore://; else None.
    access_key_id: str | None = field(
        default=None, repr=False, metadata=derived("ALIBABA_CLOUD_ACCESS_KEY_ID")
    )
    access_key_secret: str | None = field(
        default=None, repr=False, metadata=derived("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    )
    security_token: str | None = field(
        default=None, repr=False, metadata=derived("ALIBABA_CLOUD_SECURITY_TOKEN")
    )

    @property
    def tablestore(self) -> TableStoreLocation | None:
        """The parsed ``tablestore://`` url; None for other databases."""
        return parse_tablestore_url(self.url) if self.url.startswith("tablestore://") else None

    @classmethod
    def from_table(cls, r: Reader, t: dict[str, Any]) -> DatabaseConfig:
        values = read_fields(cls, r, t, "database")
        if not values.get("url", "").startswith("tablestore://"):
            return cls(**values)
        key_id, secret = r.env("ALIBABA_CLOUD_ACCESS_KEY_ID"), r.env("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        if key_id is None or secret is None:
            raise ConfigError(
                "database.url",
                "TableStore needs ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET"
                " in the environment (Function Compute sets them from the service's role)",
            )
        token = r.env("ALIBABA_CLOUD_SECURITY_TOKEN")
        return cls(access_key_id=key_id, access_key_secret=secret, security_token=token, **values)
