"""Rate limits over real HTTP: login per address and per platform user, calls per user and
per address, 429 + RateLimited + Retry-After, refill with time, and one limit shared by two
instances on one database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from minibase.app import create_app
from minibase.config import Config, Rate, RateLimitsConfig, parse_config
from minibase.core import Minibase
from minibase.errors import ConfigError
from tests.support.config import RATE_LIMIT_KEYS, Clock, base_raw
from tests.support.live import run_uvicorn

OFF = {k: "off" for k in RATE_LIMIT_KEYS}
PUBLIC = {"board": {"read": "public", "write": "owner"}}


class Server:
    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.http = httpx.Client(timeout=10)

    def login(self, name: str, at: int = 0) -> httpx.Response:
        return self.http.post(f"{self.urls[at]}/session", json={"authCode": f"dev:{name}"})

    def sid(self, name: str) -> str:
        r = self.login(name)
        assert r.status_code == 200, r.text
        return str(r.json()["sessionId"])

    def db(self, event: dict[str, Any], sid: str | None = None, at: int = 0) -> httpx.Response:
        headers = {"authorization": f"Bearer {sid}"} if sid else {}
        return self.http.post(f"{self.urls[at]}/invoke/db", json=event, headers=headers)


@pytest.fixture
def serve(make_config: Callable[..., Config], clock: Clock) -> Iterator[Callable[..., Server]]:
    with ExitStack() as stack:

        def start(instances: int = 1, **limits: str) -> Server:
            config = make_config(base_raw(rate_limits={**OFF, **limits}, collections=PUBLIC))
            urls = []
            for _ in range(instances):  # several cores on one SQLite file: several instances
                core = Minibase.from_config(config, clock=clock)
                urls.append(stack.enter_context(run_uvicorn(create_app(config, core=core))))
            server = Server(urls)
            stack.callback(server.http.close)
            return server

        yield start


def assert_limited(r: httpx.Response, retry_after: int) -> None:
    assert r.status_code == 429, r.text
    body = r.json()
    assert body["error"]["code"] == "RateLimited"
    assert body["error"]["retryAfter"] == retry_after
    assert r.headers["retry-after"] == str(retry_after)
    assert "retry in" in body["error"]["message"]


def test_login_per_address(serve: Callable[..., Server], clock: Clock) -> None:
    s = serve(login_per_ip="3/min")
    assert [s.login(f"user{i}").status_code for i in range(3)] == [200, 200, 200]
    assert_limited(s.login("user3"), 20)  # 3/min: a token every 20 s
    # Refresh and logout are session calls too: the address is still out of tokens.
    assert_limited(s.http.post(f"{s.urls[0]}/session", json={"op": "refresh", "sessionId": "x"}), 20)
    clock.advance(20)
    assert s.login("user3").status_code == 200
    assert s.login("user4").status_code == 429


def test_login_per_platform_user(serve: Callable[..., Server], clock: Clock) -> None:
    s = serve(login_per_subject="2/min")
    assert [s.login("alice").status_code for _ in range(2)] == [200, 200]
    assert_limited(s.login("alice"), 30)
    assert s.login("bob").status_code == 200  # another user has a bucket of their own
    clock.advance(30)
    assert s.login("alice").status_code == 200


def test_refresh_per_session(serve: Callable[..., Server]) -> None:
    s = serve(login_per_subject="2/hour")
    sid = s.sid("carol")
    refresh = {"op": "refresh", "sessionId": sid}
    assert [s.http.post(f"{s.urls[0]}/session", json=refresh).status_code for _ in range(2)] == [200, 200]
    assert_limited(s.http.post(f"{s.urls[0]}/session", json=refresh), 1800)


def test_calls_per_user(serve: Callable[..., Server], clock: Clock) -> None:
    s = serve(calls_per_user="20/min")
    alice, bob = s.sid("alice"), s.sid("bob")
    statuses = [s.db({"op": "get", "id": "a"}, alice).status_code for _ in range(20)]
    assert statuses == [200] * 20
    r = s.db({"op": "put", "obj": {"id": "a"}}, alice)
    assert_limited(r, 3)
    assert s.db({"op": "get", "id": "a"}, bob).status_code == 200  # bob is not alice
    clock.advance(3)
    assert s.db({"op": "get", "id": "a"}, alice).json()["data"] is None  # the refused put wrote nothing
    assert s.db({"op": "put", "obj": {"id": "a"}}, alice).status_code == 429
    clock.advance(3)
    assert s.db({"op": "put", "obj": {"id": "a"}}, alice).status_code == 200


def test_busy_user_leases_tokens_but_never_exceeds_the_limit(serve: Callable[..., Server]) -> None:
    # 100 tokens: a busy instance takes 10 at a time from the database, and still the
    # 101st call in the window is refused.
    s = serve(calls_per_user="100/hour")
    sid = s.sid("dave")
    statuses = [s.db({"op": "get", "id": "x"}, sid).status_code for _ in range(105)]
    assert statuses == [200] * 100 + [429] * 5


def test_anonymous_calls_per_address(serve: Callable[..., Server]) -> None:
    s = serve(calls_per_ip="2/min", calls_per_user="1000/s")
    query = {"op": "query", "collection": "board"}
    assert [s.db(query).status_code for _ in range(2)] == [200, 200]
    assert_limited(s.db(query), 30)
    sid = s.sid("erin")  # a session is counted per user, not per address
    assert s.db(query, sid).status_code == 200


def test_two_instances_share_one_limit(serve: Callable[..., Server]) -> None:
    s = serve(instances=2, calls_per_user="6/hour", login_per_subject="3/hour")
    sid = s.sid("frank")
    assert [s.db({"op": "get", "id": "x"}, sid, at=i % 2).status_code for i in range(6)] == [200] * 6
    assert s.db({"op": "get", "id": "x"}, sid, at=0).status_code == 429
    assert s.db({"op": "get", "id": "x"}, sid, at=1).status_code == 429
    assert [s.login("frank", at=i).status_code for i in (0, 1, 0)] == [200, 200, 429]


def test_limits_off_by_config(serve: Callable[..., Server]) -> None:
    s = serve()
    sid = s.sid("gina")
    assert all(s.db({"op": "get", "id": "x"}, sid).status_code == 200 for _ in range(150))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("100/s", Rate(100, 1.0)),
        ("20/min", Rate(20, 60.0)),
        ("5 / 10s", Rate(5, 10.0)),
        ("1000/day", Rate(1000, 86400.0)),
        ("3/hours", Rate(3, 3600.0)),
        ("off", None),
        (False, None),
    ],
)
def test_config_rates(value: Any, expected: Rate | None) -> None:
    config = parse_config(base_raw(rate_limits={"calls_per_user": value}))
    assert config.rate_limits.calls_per_user == expected


def test_config_defaults_are_on() -> None:
    raw = base_raw()
    del raw["rate_limits"]
    limits = parse_config(raw).rate_limits
    assert limits == RateLimitsConfig()
    assert all(getattr(limits, k) is not None for k in RATE_LIMIT_KEYS)


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"calls_per_user": "fast"}, "rate_limits.calls_per_user"),
        ({"calls_per_user": "0/s"}, "rate_limits.calls_per_user"),
        ({"calls_per_user": "10/0s"}, "rate_limits.calls_per_user"),
        ({"login_per_ip": 100}, "rate_limits.login_per_ip"),
        ({"login_per_ip": True}, "rate_limits.login_per_ip"),
        ({"per_planet": "1/s"}, "rate_limits.per_planet"),
    ],
)
def test_config_errors_name_the_key(section: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(base_raw(rate_limits=section))
    assert e.value.key == key


def test_concurrent_calls_spend_exactly_the_burst(serve: Callable[..., Server]) -> None:
    # Concurrent requests of one busy user: leases taken from the database are never
    # dropped or over-taken, so exactly the burst succeeds in the window, across instances.
    from concurrent.futures import ThreadPoolExecutor

    s = serve(instances=2, calls_per_user="100/hour")
    sid = s.sid("hank")
    clients = [httpx.Client(timeout=10) for _ in range(8)]
    try:

        def call(i: int) -> int:
            r = clients[i % 8].post(
                f"{s.urls[i % 2]}/invoke/db",
                json={"op": "get", "id": "x"},
                headers={"authorization": f"Bearer {sid}"},
            )
            return r.status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(call, range(100)))
        ok = statuses.count(200)
        # Each instance may still hold a few leased tokens it did not get to spend.
        assert 100 - 2 * 10 <= ok <= 100 and statuses.count(429) == 100 - ok
        more = [s.db({"op": "get", "id": "x"}, sid, at=i % 2).status_code for i in range(30)]
        assert more.count(200) == 100 - ok  # the rest of the leases, then refused
    finally:
        for c in clients:
            c.close()
