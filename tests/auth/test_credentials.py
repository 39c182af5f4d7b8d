from __future__ import annotations

import pytest

from minibase.auth.credentials import CredentialMinter
from minibase.errors import GatewayError

A, B = "a" * 32, "b" * 32
NOW = 1_800_000_000.0


def fc_code(fn) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(GatewayError) as e:
        fn()
    return e.value.fc_code


def test_round_trip() -> None:
    m = CredentialMinter([A], 900)
    c = m.mint("s_1", "u_1", NOW)
    assert c.access_key_id.startswith("STS.") and c.expiration == NOW + 900
    claims, secret = m.verify(c.access_key_id, c.security_token, NOW + 899)
    assert (claims.session_ref, claims.uid, secret) == ("s_1", "u_1", c.access_key_secret)
    assert c.to_wire()["Expiration"].endswith("Z")


def test_expired() -> None:
    m = CredentialMinter([A], 900)
    c = m.mint("s_1", "u_1", NOW)
    assert (
        fc_code(lambda: m.verify(c.access_key_id, c.security_token, NOW + 900))
        == "InvalidSecurityToken.Expired"
    )


def test_other_server_key_refused() -> None:
    c = CredentialMinter([A], 900).mint("s_1", "u_1", NOW)
    other = CredentialMinter([B], 900)
    assert fc_code(lambda: other.verify(c.access_key_id, c.security_token, NOW)) == "InvalidSecurityToken"


def test_rotation_keeps_old_credentials_valid() -> None:
    old = CredentialMinter([A], 900).mint("s_1", "u_1", NOW)
    rotated = CredentialMinter([B, A], 900)
    _, secret = rotated.verify(old.access_key_id, old.security_token, NOW)
    assert secret == old.access_key_secret
    new = rotated.mint("s_1", "u_1", NOW)
    with pytest.raises(GatewayError):
        CredentialMinter([A], 900).verify(new.access_key_id, new.security_token, NOW)


def test_token_bound_to_its_key_id() -> None:
    m = CredentialMinter([A], 900)
    c1, c2 = m.mint("s_1", "u_1", NOW), m.mint("s_2", "u_2", NOW)
    assert fc_code(lambda: m.verify(c1.access_key_id, c2.security_token, NOW)).startswith(
        "InvalidAccessKeyId"
    )


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "mb1.", "mb1.a.b", "mb1.!!!.???", "mb1." + "A" * 10000, "mb2.eHg.eHg"],
)
def test_malformed_tokens(token: str) -> None:
    m = CredentialMinter([A], 900)
    assert fc_code(lambda: m.verify("STS.x", token, NOW)).startswith("InvalidSecurityToken")


def test_edited_payload_refused() -> None:
    import base64

    m = CredentialMinter([A], 900)
    c = m.mint("s_1", "u_1", NOW)
    p64, mac = c.security_token[4:].split(".")
    payload = base64.urlsafe_b64decode(p64 + "=" * (-len(p64) % 4)).replace(b"u_1", b"u_2")
    forged = "mb1." + base64.urlsafe_b64encode(payload).rstrip(b"=").decode() + "." + mac
    assert fc_code(lambda: m.verify(c.access_key_id, forged, NOW)) == "InvalidSecurityToken"


def test_needs_a_secret() -> None:
    with pytest.raises(ValueError):
        CredentialMinter([], 900)


def test_cached_tokens_still_check_expiry_and_key_id() -> None:
    m = CredentialMinter([A], 900)
    c = m.mint("s_1", "u_1", NOW)
    m.verify(c.access_key_id, c.security_token, NOW)  # now cached
    assert (
        fc_code(lambda: m.verify(c.access_key_id, c.security_token, NOW + 901))
        == "InvalidSecurityToken.Expired"
    )
    assert fc_code(lambda: m.verify("STS.other", c.security_token, NOW)).startswith("InvalidAccessKeyId")
    # A forged token is never cached as valid.
    # Flip one MAC character to one that decodes to different bytes (any other value of the
    # same 6-bit group differs in a used bit once encodings are strict).
    last = c.security_token[-1]
    forged = c.security_token[:-1] + ("A" if last != "A" else "Q")
    for _ in range(2):
        assert fc_code(lambda: m.verify(c.access_key_id, forged, NOW)).startswith("InvalidSecurityToken")
