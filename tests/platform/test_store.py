"""The platform store on every backend it runs on (SQLite, PostgreSQL): identities as login
stored them, account linking, the shared token's compare-and-set, phone numbers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from minibase.auth.providers.base import Identity
from minibase.core import _open_store
from minibase.store.platform import CachedToken, PlatformStore, platform_store_for
from tests.support.platform import make_config


def run(tmp_path: Path, url: str, body: Callable[[Any, PlatformStore], Awaitable[None]]) -> None:
    async def main() -> None:
        store = _open_store(make_config(tmp_path, database={"url": url}))
        await store.open()
        try:
            platform = platform_store_for(store)
            assert platform is not None
            await body(store, platform)
        finally:
            await store.close()

    asyncio.run(main())


def test_identities_linking_tokens_phones(tmp_path: Path, database_url: str) -> None:
    async def body(store: Any, p: PlatformStore) -> None:
        uid, _ = await store.upsert_identity(Identity("wechat", "wxA", "o-1", "union-1"), "u_a", 1.0)
        assert await p.identity(uid, "wechat", "wxA") == _stored("o-1", "union-1")
        assert await p.identity(uid, "wechat", "wxB") is None
        assert await p.uid_by_unionid("wechat", "union-1") == uid
        assert await p.uid_by_unionid("douyin", "union-1") is None  # per platform
        assert await p.link_identity("wechat", "wxB", "o-2", "union-1", uid, 2.0) == uid
        assert await p.identity(uid, "wechat", "wxB") == _stored("o-2", "union-1")
        # An identity that exists keeps its user.
        assert await p.link_identity("wechat", "wxB", "o-2", "union-1", "u_other", 3.0) == uid
        # Tokens: compare-and-set, so one refresh wins.
        assert await p.token("wechat:wxA") is None
        t1 = CachedToken("t1", 100.0)
        assert await p.put_token("wechat:wxA", t1, None) == t1
        t2 = CachedToken("t2", 200.0)
        assert await p.put_token("wechat:wxA", t2, "t1") == t2
        late = CachedToken("t3", 300.0)
        assert await p.put_token("wechat:wxA", late, "t1") == t2  # replaced already: keep t2
        assert await p.token("wechat:wxA") == t2
        # Phones.
        assert await p.phone(uid) is None
        await p.set_phone(uid, "13800000000", 4.0)
        await p.set_phone(uid, "13900000000", 5.0)
        assert await p.phone(uid) == "13900000000"

    run(tmp_path, database_url, body)


def _stored(subject: str, unionid: str | None) -> Any:
    from minibase.store.platform import StoredIdentity

    return StoredIdentity(subject, unionid)
