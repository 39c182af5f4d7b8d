"""A Python client for minibase (DESIGN §4a), on httpx.

It logs in through the ``session`` function, keeps the sessionId and invoke credentials,
refreshes the credentials shortly before they expire (and once on an expiry error), and
calls functions through FC's Invoke API with FC 2.0 request signatures, exactly as the
seed's mini-program client did.

    from minibase.client import Client
    mb = Client("http://127.0.0.1:8000", service="todo-list-svc")
    mb.login(auth_code="dev:alice")
    mb.invoke("db", {"op": "put", "obj": {"id": "buy milk", "completed": False}})
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import orjson

from .auth import fc_signature

__all__ = ["Client", "ClientError", "Credentials"]

FC_API = "/2016-08-15"
REFRESH_MARGIN = 60.0  # seconds before Expiration at which credentials are renewed


class ClientError(Exception):
    """An error answer: ``code``, ``message``, ``status`` and ``request_id``."""

    def __init__(self, code: str, message: str, status: int, request_id: str | None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.request_id = request_id


@dataclass
class Credentials:
    access_key_id: str
    access_key_secret: str
    security_token: str
    expiration: float

    @classmethod
    def from_wire(cls, sts: dict[str, str]) -> Credentials:
        exp = datetime.fromisoformat(sts["Expiration"].replace("Z", "+00:00")).timestamp()
        return cls(sts["AccessKeyId"], sts["AccessKeySecret"], sts["SecurityToken"], exp)


def signed_headers(
    creds: Credentials,
    method: str,
    path: str,
    body: bytes,
    *,
    date: str | None = None,
    content_type: str = "application/json",
    query: dict[str, Any] | None = None,
) -> dict[str, str]:
    """The headers a FC SDK sends for one request signed with ``creds``."""
    headers = {
        "content-type": content_type,
        "date": date or fc_signature.format_date(),
        "x-fc-security-token": creds.security_token,
    }
    headers["authorization"] = fc_signature.authorization(
        creds.access_key_id, creds.access_key_secret, method, path, headers, query
    )
    return headers


def _raise_for(resp: httpx.Response) -> Any:
    try:
        body = orjson.loads(resp.content) if resp.content else {}
    except orjson.JSONDecodeError:
        raise ClientError(
            "Internal", f"non-JSON answer (HTTP {resp.status_code})", resp.status_code, None
        ) from None
    rid = resp.headers.get("x-fc-request-id")
    if isinstance(body, dict) and "error" in body:
        err = body["error"]
        raise ClientError(err.get("code", "Internal"), err.get("message", ""), resp.status_code, rid)
    if isinstance(body, dict) and "ErrorCode" in body:  # FC gateway refusal
        raise ClientError(body["ErrorCode"], body.get("ErrorMessage", ""), resp.status_code, rid)
    if resp.status_code >= 400:
        raise ClientError("Internal", f"HTTP {resp.status_code}", resp.status_code, rid)
    return body


class Client:
    def __init__(
        self,
        endpoint: str,
        service: str,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.service = service
        if transport is None:
            # Without TCP_NODELAY a keep-alive request whose headers and body leave in two
            # writes waits ~40 ms for the server's delayed ACK (Nagle).
            transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        self.http = httpx.Client(base_url=self.endpoint, timeout=timeout, transport=transport)
        self.session_id: str | None = None
        self.credentials: Credentials | None = None
        self.uid: str | None = None

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ session

    def _session_call(self, event: dict[str, Any]) -> dict[str, Any]:
        resp = self.http.post(
            f"{FC_API}/proxy/{self.service}/session/",
            content=orjson.dumps(event),
            headers={"content-type": "application/json"},
        )
        return _raise_for(resp)  # type: ignore[no-any-return]

    def login(self, auth_code: str, provider: str | None = None) -> dict[str, Any]:
        event: dict[str, Any] = {"authCode": auth_code}
        if provider:
            event["provider"] = provider
        body = self._session_call(event)
        self.session_id = body["sessionId"]
        self.credentials = Credentials.from_wire(body["sts"])
        self.uid = body["user"]["uid"]
        return body

    def refresh(self) -> dict[str, Any]:
        body = self._session_call({"op": "refresh", "sessionId": self._sid()})
        self.credentials = Credentials.from_wire(body["sts"])
        return body

    def logout(self) -> None:
        self._session_call({"op": "logout", "sessionId": self._sid()})
        self.session_id = self.credentials = None

    def _sid(self) -> str:
        if not self.session_id:
            raise ClientError("Unauthenticated", "log in first", 401, None)
        return self.session_id

    # ---------------------------------------------------------------- functions

    def invoke(self, function: str, event: dict[str, Any] | None = None) -> Any:
        """Call ``function`` through the FC Invoke API; returns the whole answer body."""
        event = {"sid": self._sid(), **(event or {})}
        if self.credentials is None or self.credentials.expiration - time.time() < REFRESH_MARGIN:
            self.refresh()
        try:
            return self._invoke_once(function, event)
        except ClientError as e:
            if not e.code.startswith("InvalidSecurityToken"):
                raise
            self.refresh()
            return self._invoke_once(function, event)

    def _invoke_once(self, function: str, event: dict[str, Any]) -> Any:
        assert self.credentials is not None
        path = f"{FC_API}/services/{self.service}/functions/{function}/invocations"
        body = orjson.dumps(event)
        resp = self.http.post(
            path, content=body, headers=signed_headers(self.credentials, "POST", path, body)
        )
        return _raise_for(resp)

    def db(self, op: str, **event: Any) -> Any:
        """``db`` function shortcut returning ``data`` (use :meth:`invoke` for ``next``)."""
        return self.invoke("db", {"op": op, **event}).get("data")
