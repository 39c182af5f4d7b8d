"""Invoke credentials from STS ``AssumeRole`` (``auth.credentials = "sts"``, docs/deploy-fc.md#invoke-credentials-from-sts).

Each login and refresh asks STS for credentials of ``[auth.sts] role_arn`` narrowed by an
inline policy that allows only ``fc:InvokeFunction`` on this app's functions, for
``duration`` seconds, under a ``RoleSessionName`` naming the minibase session (so STS's and
ActionTrail's records point back at it). The call is signed with minibase's own credentials
(what the FC runtime provides) by the official SDK, imported on first use only.

Only Function Compute can verify a request signed with these credentials (the secret is
STS's), so on minibase's own HTTP paths such requests are refused with a clear message;
callers identify themselves with ``Authorization: Bearer <sessionId>`` or the event's
``sid``, and the session check (revoked, expired, user disabled) applies on every call.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import re
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from ..config import StsConfig
from ..errors import ConfigError, ProviderError
from .credentials import Credentials

__all__ = ["MAX_POLICY", "StsIssuer", "build_policy", "role_session_name"]

log = logging.getLogger("minibase.auth.sts")

MAX_POLICY = 2048  # characters STS accepts in Policy
_NAME_BAD = re.compile(r"[^A-Za-z0-9.@_-]")


def role_session_name(session_ref: str) -> str:
    """``mb-<session row id>``: 3-64 of ``[A-Za-z0-9.@_-]``, as STS requires."""
    return ("mb-" + _NAME_BAD.sub("-", session_ref))[:64]


def build_policy(sts: StsConfig, service: str, functions: Iterable[str]) -> str:
    """The inline policy: ``fc:InvokeFunction`` on this app's functions only, compact JSON.

    FC 2.0 names a function ``services/{service}/functions/{name}`` (``{service}.{qualifier}``
    for a version or alias); FC 3.0 has no services: ``functions/{name}``, so the names are
    ``[auth.sts] functions`` or else every function the app serves. ConfigError if the
    result is longer than STS accepts.
    """
    arn = f"acs:fc:{sts.region}:{sts.account_id}:"
    if sts.fc_version == "2.0":
        resources = [f"{arn}services/{service}/functions/*", f"{arn}services/{service}.*/functions/*"]
    else:
        names = sts.functions if sts.functions is not None else sorted(set(functions))
        resources = [f"{arn}functions/{n}" for n in names]
    doc = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": ["fc:InvokeFunction"], "Resource": resources}],
    }
    policy = json.dumps(doc, separators=(",", ":"))
    if len(policy) > MAX_POLICY:
        raise ConfigError(
            "auth.sts.functions",
            f"the inline policy would be {len(policy)} characters, over STS's {MAX_POLICY}: "
            "list fewer names or use a pattern such as 'todo-*'",
        )
    return policy


class StsIssuer:
    def __init__(self, sts: StsConfig, service: str, functions: Iterable[str]) -> None:
        if importlib.util.find_spec("alibabacloud_sts20150401") is None:  # cheap; the import is not
            raise ConfigError("auth.credentials", "\"sts\" needs the STS SDK: pip install 'minibase[sts]'")
        self.sts = sts
        self.policy = build_policy(sts, service, functions)
        self._client: Any = None  # the SDK client, built on first use (import cost ~0.3 s)
        self._signer = (sts.access_key_id, sts.access_key_secret, sts.security_token)

    def use_credentials(self, key_id: str, secret: str, token: str | None) -> None:
        """Sign AssumeRole with these from now on (the FC runtime's fresh role credentials)."""
        if (key_id, secret, token) != self._signer:
            self._signer = (key_id, secret, token)
            self._client = None  # rebuilt with them on the next call

    async def issue(self, session_ref: str, uid: str, now: float) -> Credentials:
        from alibabacloud_sts20150401 import models
        from darabonba.runtime import RuntimeOptions

        client = self._client or self._make_client()
        request = models.AssumeRoleRequest(
            role_arn=self.sts.role_arn,
            role_session_name=role_session_name(session_ref),
            policy=self.policy,
            duration_seconds=int(self.sts.duration),
        )
        ms = int(self.sts.timeout * 1000)
        runtime = RuntimeOptions(autoretry=False, read_timeout=ms, connect_timeout=ms)
        try:
            # The SDK's own timeouts bound each socket operation; this bounds the whole call.
            response = await asyncio.wait_for(
                client.assume_role_with_options_async(request, runtime), self.sts.timeout
            )
        except (TimeoutError, asyncio.TimeoutError):  # distinct classes before Python 3.11
            log.warning("STS AssumeRole at %s timed out after %g s", self.sts.endpoint, self.sts.timeout)
            raise ProviderError(f"STS did not answer within {self.sts.timeout:g} s") from None
        except Exception as e:
            raise self._error(e) from None
        return _credentials(getattr(response, "body", None))

    def _make_client(self) -> Any:
        from alibabacloud_sts20150401.client import Client
        from alibabacloud_tea_openapi import models as open_api_models

        scheme, _, host = self.sts.endpoint.partition("://")
        config = open_api_models.Config(
            access_key_id=self._signer[0],
            access_key_secret=self._signer[1],
            security_token=self._signer[2],
            endpoint=host,
            protocol=scheme,
            region_id=None if self.sts.region == "*" else self.sts.region,
            user_agent="minibase",
        )
        self._client = Client(config)
        return self._client

    def _error(self, e: Exception) -> ProviderError:
        """An SDK failure as a ProviderError whose message says what happened, no secrets."""
        from darabonba.exceptions import ResponseException, RetryError

        if isinstance(e, ResponseException):  # STS answered with its error JSON
            code = str(e.code or "unknown")
            status = e.status_code or 0
            log.warning("STS AssumeRole refused: HTTP %s %s: %s", status, code, e.message)
            if status >= 500:
                return ProviderError(f"STS failed ({code}); try again")
            return ProviderError(f"STS refused AssumeRole ({code}); check [auth.sts] and the function's role")
        inner = getattr(e, "inner_exception", None)
        if isinstance(inner, RetryError):  # the SDK's wrapper of connection-level failures
            log.warning("STS at %s is unreachable: %s", self.sts.endpoint, inner)
            return ProviderError(f"STS is unreachable at {self.sts.endpoint}")
        log.warning("STS AssumeRole failed: %r", inner if inner is not None else e)
        return ProviderError("STS answered something that is not an AssumeRole response")


def _credentials(body: Any) -> Credentials:
    c = getattr(body, "credentials", None)
    values: list[str] = []
    for name in ("access_key_id", "access_key_secret", "security_token", "expiration"):
        v = getattr(c, name, None)
        if not isinstance(v, str) or not v:
            raise ProviderError("STS answered without credentials")
        values.append(v)
    akid, secret, token, expiration = values
    try:
        expires = datetime.strptime(expiration, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        raise ProviderError("STS answered an Expiration that is not an RFC 3339 time") from None
    return Credentials(akid, secret, token, expires)
