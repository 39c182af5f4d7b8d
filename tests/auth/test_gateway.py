from __future__ import annotations

import base64
import hashlib

import pytest

from minibase.auth import fc_signature
from minibase.auth.credentials import CredentialMinter
from minibase.auth.gateway import verify_request
from minibase.errors import GatewayError

NOW = 1_800_000_000.0
PATH = "/2016-08-15/services/s/functions/db/invocations"
M = CredentialMinter(["k" * 32], 900)
C = M.mint("s_1", "u_1", NOW)


def signed(headers: dict[str, str], path: str = PATH) -> dict[str, str]:
    h = {"x-fc-security-token": C.security_token, **headers}
    h["authorization"] = fc_signature.authorization(C.access_key_id, C.access_key_secret, "POST", path, h)
    return h


def code(headers: dict[str, str], body: bytes = b"{}") -> str:
    with pytest.raises(GatewayError) as e:
        verify_request(M, "POST", PATH, headers, None, body, NOW)
    return e.value.fc_code


def test_ok() -> None:
    h = signed({"date": fc_signature.format_date(NOW), "content-type": "application/json"})
    assert verify_request(M, "POST", PATH, h, None, b"{}", NOW).session_ref == "s_1"


def test_x_fc_date_stands_in_for_date() -> None:
    # Browsers cannot set Date; x-fc-date is signed as an x-fc-* header instead.
    h = signed({"x-fc-date": fc_signature.format_date(NOW)})
    assert verify_request(M, "POST", PATH, h, None, b"", NOW).uid == "u_1"
    assert code({**h, "x-fc-date": fc_signature.format_date(NOW + 1)}) == "SignatureNotMatch"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, "MissingRequiredHeader"),
        ({"authorization": "Basic abc"}, "InvalidArgument"),
        ({"authorization": "FC a:b"}, "MissingRequiredHeader"),
        ({"authorization": "FC a:b", "date": "someday"}, "InvalidArgument"),
        ({"authorization": "FC a:b", "date": fc_signature.format_date(NOW - 901)}, "RequestTimeTooSkewed"),
        ({"authorization": "FC a:b", "date": fc_signature.format_date(NOW + 901)}, "RequestTimeTooSkewed"),
        ({"authorization": "FC a:b", "date": fc_signature.format_date(NOW)}, "InvalidSecurityToken"),
    ],
)
def test_refusals(headers: dict[str, str], expected: str) -> None:
    assert code(headers) == expected


BODY = b'{"op":"list"}'
DIGEST = hashlib.md5(BODY, usedforsecurity=False).digest()


@pytest.mark.parametrize(
    "md5",
    [
        pytest.param(base64.b64encode(DIGEST).decode(), id="rfc1864-base64-of-raw-digest"),
        pytest.param(base64.b64encode(DIGEST.hex().encode()).decode(), id="node-sdk-base64-of-hex"),
        pytest.param(DIGEST.hex(), id="go-sdk-hex"),
        pytest.param(DIGEST.hex().upper(), id="go-sdk-hex-upper-case"),
    ],
)
def test_content_md5_forms_fc_accepts(md5: str) -> None:
    # The header is part of the signed string: each request is signed with the form it sends.
    h = signed({"date": fc_signature.format_date(NOW), "content-md5": md5})
    assert verify_request(M, "POST", PATH, h, None, BODY, NOW).session_ref == "s_1"
    # The same header for another body is refused, whatever its form.
    assert code(h, body=b'{"op":"remove"}') == "InvalidArgument"


@pytest.mark.parametrize(
    "md5",
    [
        pytest.param(
            base64.b64encode(hashlib.md5(b"other", usedforsecurity=False).digest()).decode(), id="other-body"
        ),
        pytest.param(base64.b64encode(DIGEST.hex().upper().encode()).decode(), id="base64-of-upper-hex"),
        pytest.param(base64.b64encode(DIGEST).decode().lower(), id="base64-lower-cased"),
        pytest.param(DIGEST.hex()[:-1], id="hex-truncated"),
        pytest.param(base64.b64encode(DIGEST).decode().rstrip("="), id="base64-unpadded"),
        pytest.param("", id="empty"),
        pytest.param("\u00e9t\u00e9", id="not-ascii"),
    ],
)
def test_content_md5_matching_no_form_is_refused(md5: str) -> None:
    h = signed({"date": fc_signature.format_date(NOW), "content-md5": md5})
    with pytest.raises(GatewayError) as e:
        verify_request(M, "POST", PATH, h, None, BODY, NOW)
    assert (e.value.fc_code, e.value.fc_status) == ("InvalidArgument", 400)
    assert e.value.message == "Content-MD5 does not match the body"
