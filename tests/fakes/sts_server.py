"""A fake STS answering ``AssumeRole`` (2015-04-01) the way STS does.

It speaks the RPC protocol the official SDK sends: parameters in the query string (or an
``application/x-www-form-urlencoded`` body), ``x-acs-action``/``x-acs-version`` headers and
the V3 signature ``Authorization: ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=...,
Signature=hex``, where the signature is HMAC-SHA256(secret, "ACS3-HMAC-SHA256\\n" +
hex(SHA256(canonical request))) and the canonical request is method, path, the sorted
RFC 3986-encoded query, the signed headers (``name:value\\n`` each, sorted), their names
joined by ``;``, and the hex SHA-256 of the body. It verifies all of that with the secret
it knows, refuses unknown keys, wrong security tokens, timestamps more than 15 minutes off
and replayed nonces, validates the AssumeRole parameters, and answers the documented
shapes: ``{"RequestId", "AssumedRoleUser": {...}, "Credentials": {...}}`` or, with an
HTTP 4xx/5xx, ``{"RequestId", "HostId", "Code", "Message"}``. Every request is recorded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import RecordedRequest, record, wait_or_disconnect

__all__ = ["IssuedCredentials", "StsState", "canonical_request", "make_sts_server", "sign_v3"]

ALGORITHM = "ACS3-HMAC-SHA256"
HOST_ID = "sts.aliyuncs.com"
MAX_SKEW = timedelta(minutes=15)
_SESSION_NAME = re.compile(r"^[A-Za-z0-9.@_-]{2,64}$")
_ROLE_ARN = re.compile(r"^acs:ram::(\d+):role/(.+)$")
_AUTH = re.compile(r"^ACS3-HMAC-SHA256 Credential=([^,]+),SignedHeaders=([^,]+),Signature=([0-9a-f]{64})$")


def canonical_query(pairs: list[tuple[str, str]]) -> str:
    enc = sorted((quote(k, safe="~"), quote(v, safe="~")) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in enc)


def canonical_request(
    method: str,
    path: str,
    pairs: list[tuple[str, str]],
    headers: dict[str, str],
    signed: list[str],
    body: bytes,
) -> str:
    lines = "".join(f"{h}:{headers.get(h, '').strip()}\n" for h in signed)
    return "\n".join(
        [
            method,
            path or "/",
            canonical_query(pairs),
            lines,
            ";".join(signed),
            hashlib.sha256(body).hexdigest(),
        ]
    )


def sign_v3(secret: str, canonical: str) -> str:
    to_sign = f"{ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    return hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


@dataclass
class IssuedCredentials:
    access_key_id: str
    access_key_secret: str
    security_token: str
    expiration: str
    role_session_name: str
    policy: str | None
    duration: int


@dataclass
class StsState:
    keys: dict[str, str]  # AccessKeyId -> AccessKeySecret of callers allowed to AssumeRole
    tokens: dict[str, str]  # AccessKeyId -> the SecurityToken that key needs (STS caller creds)
    roles: set[str]  # role ARNs that exist
    denied_roles: set[str] = field(default_factory=set)  # exist, but the caller may not assume them
    requests: list[RecordedRequest] = field(default_factory=list)
    params: list[dict[str, str]] = field(default_factory=list)  # AssumeRole parameters, per request
    issued: list[IssuedCredentials] = field(default_factory=list)
    nonces: set[str] = field(default_factory=set)
    slow_seconds: float = 0.0
    server_error: bool = False  # answer 500 InternalError to every request
    bogus_body: bytes | None = None  # answer HTTP 200 with exactly these bytes


def _error(status: int, code: str, message: str) -> JSONResponse:
    rid = str(uuid.uuid4()).upper()
    return JSONResponse(
        {"RequestId": rid, "HostId": HOST_ID, "Code": code, "Message": message, "Recommend": ""},
        status_code=status,
    )


def _timestamp(value: str) -> datetime | None:
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def make_sts_server(
    keys: dict[str, str], *, roles: set[str], tokens: dict[str, str] | None = None
) -> Starlette:
    """The fake STS app; its state is ``app.state.fake``, a :class:`StsState`."""
    state = StsState(keys=dict(keys), tokens=dict(tokens or {}), roles=set(roles))

    async def handle(request: Request) -> Response:
        recorded = await record(request)
        state.requests.append(recorded)
        if state.slow_seconds:
            await wait_or_disconnect(request, state.slow_seconds)
        if state.bogus_body is not None:
            return Response(state.bogus_body, media_type="application/json")
        if state.server_error:
            return _error(
                500, "InternalError", "The request processing has failed due to some unknown error."
            )
        refused = _check_signature(state, recorded, request.url.query)
        if refused is not None:
            return refused
        pairs = parse_qsl(request.url.query, keep_blank_values=True)
        if recorded.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            pairs += parse_qsl(recorded.body.decode(), keep_blank_values=True)
        params = dict(pairs)
        state.params.append(params)
        return _assume_role(state, params, recorded.headers)

    app = Starlette(routes=[Route("/", handle, methods=["GET", "POST"])])
    app.state.fake = state
    return app


def _check_signature(state: StsState, req: RecordedRequest, raw_query: str) -> Response | None:
    h = req.headers
    auth = h.get("authorization", "")
    m = _AUTH.match(auth)
    if m is None:
        return _error(
            400, "IncompleteSignature", "The request signature does not conform to Aliyun standards."
        )
    akid, signed_list, signature = m.groups()
    signed = signed_list.split(";")
    required = {"host", *(k for k in h if k.startswith("x-acs-"))}
    if signed != sorted(signed) or not required <= set(signed):
        return _error(
            400, "IncompleteSignature", "SignedHeaders must list host and every x-acs-* header, sorted."
        )
    for name in ("x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256"):
        if not h.get(name):
            return _error(
                400, "MissingParameter", f"The input parameter {name} that is mandatory is not supplied."
            )
    when = _timestamp(h["x-acs-date"])
    if when is None:
        return _error(
            400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted."
        )
    if abs(datetime.now(UTC) - when) > MAX_SKEW:
        return _error(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
    secret = state.keys.get(akid)
    if secret is None:
        return _error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    want_token = state.tokens.get(akid)
    if want_token is not None and (
        not hmac.compare_digest(h.get("x-acs-security-token", ""), want_token)
        or h.get("x-acs-accesskey-id") != akid
    ):
        return _error(400, "InvalidSecurityToken.MismatchWithAccessKey", "Specified SecurityToken mismatch.")
    if hashlib.sha256(req.body).hexdigest() != h["x-acs-content-sha256"]:
        return _error(400, "ContentSHA256NotMatch", "The x-acs-content-sha256 does not match the body.")
    pairs = parse_qsl(raw_query, keep_blank_values=True)
    expected = sign_v3(secret, canonical_request(req.method, req.path, pairs, h, signed, req.body))
    if not hmac.compare_digest(expected, signature):
        return _error(400, "SignatureDoesNotMatch", "Specified signature does not match our calculation.")
    nonce = h["x-acs-signature-nonce"]
    if nonce in state.nonces:  # checked after the signature, so a forger cannot burn nonces
        return _error(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
    state.nonces.add(nonce)
    return None


def _assume_role(state: StsState, params: dict[str, str], headers: dict[str, str]) -> Response:
    action = headers.get("x-acs-action") or params.get("Action")
    version = headers.get("x-acs-version") or params.get("Version")
    if action != "AssumeRole":
        return _error(
            404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method."
        )
    if version != "2015-04-01":
        return _error(400, "InvalidVersion", "Specified parameter Version is not valid.")
    role_arn = params.get("RoleArn", "")
    if not role_arn:
        return _error(400, "MissingRoleArn", "RoleArn is mandatory for this action.")
    m = _ROLE_ARN.match(role_arn)
    if m is None:
        return _error(400, "InvalidParameter.RoleArn", "The parameter RoleArn is wrongly formed.")
    if role_arn not in state.roles:
        return _error(404, "EntityNotExist.Role", "The specified Role not exists .")
    name = params.get("RoleSessionName", "")
    if not name:
        return _error(400, "MissingRoleSessionName", "RoleSessionName is mandatory for this action.")
    if not _SESSION_NAME.match(name):
        return _error(
            400, "InvalidParameter.RoleSessionName", "The parameter RoleSessionName is wrongly formed."
        )
    policy = params.get("Policy")
    if policy is not None:
        if len(policy) > 2048:
            return _error(400, "InvalidParameter.PolicyLength", "The parameter Policy is too long.")
        try:
            doc: Any = json.loads(policy)
            ok = (
                isinstance(doc, dict) and doc.get("Version") == "1" and isinstance(doc.get("Statement"), list)
            )
        except ValueError:
            ok = False
        if not ok:
            return _error(
                400, "InvalidParameter.PolicyGrammar", "The parameter Policy has not passed grammar check."
            )
    raw_duration = params.get("DurationSeconds", "3600")
    if not raw_duration.isdigit() or not 900 <= int(raw_duration) <= 3600:
        return _error(
            400, "InvalidParameter.DurationSeconds", "The Min/Max value of DurationSeconds is 15min/1hr."
        )
    if role_arn in state.denied_roles:
        return _error(
            403, "NoPermission", "You are not authorized to do this action. You should be authorized by RAM."
        )
    duration = int(raw_duration)
    expiration = (datetime.now(UTC) + timedelta(seconds=duration)).strftime("%Y-%m-%dT%H:%M:%SZ")
    issued = IssuedCredentials(
        access_key_id="STS.NU" + secrets.token_hex(12),
        access_key_secret=secrets.token_urlsafe(30),
        security_token="CAIS" + secrets.token_urlsafe(180),
        expiration=expiration,
        role_session_name=name,
        policy=policy,
        duration=duration,
    )
    state.issued.append(issued)
    role_id = str(secrets.randbelow(10**18))
    return JSONResponse(
        {
            "RequestId": str(uuid.uuid4()).upper(),
            "AssumedRoleUser": {
                "Arn": f"{role_arn}/{name}",
                "AssumedRoleId": f"{role_id}:{name}",
            },
            "Credentials": {
                "AccessKeyId": issued.access_key_id,
                "AccessKeySecret": issued.access_key_secret,
                "SecurityToken": issued.security_token,
                "Expiration": expiration,
            },
        }
    )
