from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from minibase.config import Config
from minibase.console.settings import REDACTED, redacted
from tests.support.config import SECRET, base_raw


def test_every_secret_is_redacted_and_the_rest_shown(make_config: Callable[..., Config]) -> None:
    config = make_config(
        base_raw(
            database={"url": "postgresql://app:pg-password-123@db.internal:5432/app"},
            auth={"wechat": {"app_id": "wx123", "secret": "wechat-secret-456"}},
            files={
                "url": "s3://bucket?region=x",
                "access_key_id": "AKID",
                "secret_access_key": "s3-secret-789",
            },
        )
    )
    shown: dict[str, Any] = redacted(config)
    text = orjson.dumps(shown).decode()
    for secret in (SECRET, "pg-password-123", "wechat-secret-456", "s3-secret-789"):
        assert secret not in text
    assert shown["app"]["secrets"] == REDACTED
    assert shown["files"]["secret_access_key"] == REDACTED
    assert shown["auth"]["wechat"]["secret"] == REDACTED
    assert shown["auth"]["wechat"]["app_id"] == "wx123"
    assert shown["database"]["url"] == "postgresql://app:••••@db.internal:5432/app"
    assert shown["app"]["default_collection"] == "todo_list"
