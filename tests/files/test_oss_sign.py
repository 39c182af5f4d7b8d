"""OSS's V4 signing (minibase/files/store/oss_sign.py) against OSS's official Python SDK
(``oss2``) as the reference: for the same credentials, clock, bucket, endpoint, key and
query, our signed URL is the SDK's ``Bucket.sign_url`` byte for byte, and our PostObject
signature is the SDK's V4 signing key applied to our policy.

The Python SDK has no PostObject helper (its own PostObject example builds the form by
hand), so the POST check uses its V4 signing-key derivation (``ProviderAuthV4``'s private
``__get_signing_key``, the one its signed URLs use) with the HMAC-SHA256 of the base64
policy that OSS documents for POST V4, and, as a second reference, the official Node.js
SDK's public ``signPostObjectPolicyV4`` (``ali-oss``, installed with FC's Node SDK in
tests/fc_sdks) on the same policy and date."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import oss2  # the test extra installs it (scripts/setup)
import oss2.auth
import oss2.http
import pytest

from minibase.config.urls import S3Location
from minibase.files.store import oss_sign
from minibase.files.store.s3 import S3FileStore
from minibase.files.thumbs import Thumbnailer

NOW = 1_765_000_123  # 2025-12-06T05:48:43Z
AK, SK, TOKEN = "LTAI5tExampleKeyId", "ExampleSecret/With+Chars=", "CAIS+token/with=chars"
PROCESS = "image/auto-orient,1/resize,m_lfit,limit_1,w_200,h_200/quality,q_82"
ENDPOINTS = [("https://oss-cn-hangzhou.aliyuncs.com", False), ("http://127.0.0.1:9000", True)]
KEYS = ["users/u_1/pics/a.png", "team/a b+c/中文 ~x.jpg"]


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's clock (V4 reads ``datetime.utcnow()`` in oss2.auth) set to ``NOW``."""

    class Frozen(dt.datetime):
        @classmethod
        def utcnow(cls) -> Any:
            return dt.datetime(1970, 1, 1) + dt.timedelta(seconds=NOW)

    monkeypatch.setattr(oss2.auth, "datetime", Frozen)


def sdk_bucket(endpoint: str, token: str | None) -> Any:
    auth = oss2.StsAuth(AK, SK, token, auth_version=oss2.AUTH_VERSION_4) if token else oss2.AuthV4(AK, SK)
    return oss2.Bucket(auth, endpoint, "my-bucket", region="cn-hangzhou")


@pytest.mark.parametrize(("endpoint", "path_style"), ENDPOINTS)
@pytest.mark.parametrize("token", [None, TOKEN])
@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize(
    "params",
    [
        [],
        [("x-oss-process", PROCESS)],
        [("x-oss-process", PROCESS), ("response-content-disposition", "attachment")],
    ],
)
@pytest.mark.usefixtures("frozen")
def test_signed_url_is_the_sdks(
    endpoint: str, path_style: bool, token: str | None, key: str, params: list[tuple[str, str]]
) -> None:
    want = sdk_bucket(endpoint, token).sign_url("GET", key, 900, params=dict(params), slash_safe=True)
    got = oss_sign.sign_url(
        oss_sign.OssCredentials(AK, SK, token),
        method="GET",
        endpoint=endpoint,
        bucket="my-bucket",
        key=key,
        region="cn-hangzhou",
        path_style=path_style,
        expires=900,
        now=NOW,
        params=params,
    )
    assert got == want
    # and a change of clock, key or process changes it
    assert got != oss_sign.sign_url(
        oss_sign.OssCredentials(AK, SK, token),
        method="GET",
        endpoint=endpoint,
        bucket="my-bucket",
        key=key,
        region="cn-hangzhou",
        path_style=path_style,
        expires=900,
        now=NOW + 1,
        params=params,
    )


def _store(token: str | None = None) -> S3FileStore:
    location = S3Location(
        "oss", "my-bucket", "app/", "https://oss-cn-hangzhou.aliyuncs.com", "oss-cn-hangzhou", False
    )
    thumbs = Thumbnailer(["200x200", "750x"])
    return S3FileStore(location, access_key_id=AK, secret_access_key=SK, session_token=token, thumbs=thumbs)


@pytest.mark.parametrize("token", [None, TOKEN])
@pytest.mark.usefixtures("frozen")
def test_the_stores_thumbnail_url_is_the_sdks(monkeypatch: pytest.MonkeyPatch, token: str | None) -> None:
    """Through S3FileStore.sign_download on oss://: the configured size's process, signed."""
    import minibase.files.store.s3 as s3

    monkeypatch.setattr(s3.time, "time", lambda: float(NOW))
    store = _store(token)
    got = asyncio.run(
        store.sign_download("pics/a.png", expires=NOW + 900, public=False, base_url=None, thumb="200x200")
    )
    bucket = sdk_bucket("https://oss-cn-hangzhou.aliyuncs.com", token)
    assert got == bucket.sign_url(
        "GET", "app/pics/a.png", 900, params={"x-oss-process": PROCESS}, slash_safe=True
    )
    attachment = asyncio.run(
        store.sign_download("pics/a.svg", expires=NOW + 60, public=False, base_url=None, attachment=True)
    )
    want = bucket.sign_url(
        "GET", "app/pics/a.svg", 60, params={"response-content-disposition": "attachment"}, slash_safe=True
    )
    assert attachment == want


def _sdk_signing_key(moment: str) -> bytes:
    auth = oss2.AuthV4(AK, SK)
    req = oss2.http.Request(
        "POST", "https://my-bucket.oss-cn-hangzhou.aliyuncs.com", region="cn-hangzhou", product="oss"
    )
    credentials = auth.credentials_provider.get_credentials()
    key: bytes = auth._ProviderAuthV4__get_signing_key(req, credentials, moment)
    return key


@pytest.mark.parametrize("token", [None, TOKEN])
@pytest.mark.usefixtures("frozen")
def test_post_object_signature_is_the_sdks_signing_of_the_policy(
    monkeypatch: pytest.MonkeyPatch, token: str | None
) -> None:
    import minibase.files.store.s3 as s3

    monkeypatch.setattr(s3.time, "time", lambda: float(NOW))
    form = asyncio.run(
        _store(token).sign_upload_form(
            "pics/a.png",
            content_type="image/png",
            min_size=10,
            max_size=10,
            uploader="u_alice",
            expires=NOW + 900,
            base_url=None,
        )
    )
    assert form.url == "https://my-bucket.oss-cn-hangzhou.aliyuncs.com" and form.name == "file"
    fields = dict(form.form_data)
    moment = fields["x-oss-date"]
    assert moment == "20251206T054843Z"
    want = hmac.new(_sdk_signing_key(moment), fields["policy"].encode(), hashlib.sha256).hexdigest()
    assert fields["x-oss-signature"] == want
    # The credential scope is the one the SDK puts in its signed URLs at that time.
    url = sdk_bucket("https://oss-cn-hangzhou.aliyuncs.com", token).sign_url("GET", "k", 60)
    assert fields["x-oss-credential"] == dict(parse_qsl(urlsplit(url).query))["x-oss-credential"]
    assert fields.get("x-oss-security-token") == token
    policy = json.loads(base64.b64decode(fields["policy"]))
    assert policy["expiration"] == "2025-12-06T06:03:43.000Z"
    signed_fields = [
        {"x-oss-signature-version": "OSS4-HMAC-SHA256"},
        {"x-oss-credential": fields["x-oss-credential"]},
    ]
    assert policy["conditions"][:2] == [{"bucket": "my-bucket"}, ["eq", "$key", "app/pics/a.png"]]
    for cond in [
        ["content-length-range", 10, 10],
        ["eq", "$Content-Type", "image/png"],
        ["eq", "$x-oss-meta-uploader", "u_alice"],
        *signed_fields,
        {"x-oss-date": moment},
    ]:
        assert cond in policy["conditions"]
    assert ({"x-oss-security-token": token} in policy["conditions"]) == (token is not None)
    assert (fields["key"], fields["Content-Type"], fields["x-oss-meta-uploader"]) == (
        "app/pics/a.png",
        "image/png",
        "u_alice",
    )


def test_expiry_is_bounded() -> None:
    creds = oss_sign.OssCredentials(AK, SK)
    common: dict[str, Any] = {
        "endpoint": "https://oss-cn-hangzhou.aliyuncs.com",
        "bucket": "b",
        "key": "k",
        "region": "cn-hangzhou",
        "path_style": False,
        "now": NOW,
    }
    for bad in (0, 7 * 86400 + 1):
        with pytest.raises(ValueError, match="expires"):
            oss_sign.sign_url(creds, method="GET", expires=bad, **common)
        with pytest.raises(ValueError, match="expires"):
            oss_sign.post_form(creds, expires=bad, conditions=[], fields={}, **common)
    assert oss_sign.oss_region("oss-cn-hangzhou") == "cn-hangzhou" == oss_sign.oss_region("cn-hangzhou")


def test_post_object_signature_is_the_node_sdks(monkeypatch: pytest.MonkeyPatch) -> None:
    """ali-oss's public PostObject V4 signer on our policies (it re-serializes the policy
    with JSON.stringify, which is our compact JSON for ASCII keys)."""
    import minibase.files.store.s3 as s3

    node = shutil.which("node")
    if node is None:
        pytest.fail("node (>= 18) is needed: apt-get install -y nodejs npm")
    cases, ours = [], []
    for token, when in [(None, NOW), (TOKEN, NOW + 86400 * 40)]:
        monkeypatch.setattr(s3.time, "time", lambda when=when: float(when))
        form = asyncio.run(
            _store(token).sign_upload_form(
                "pics/a b.png",
                content_type="image/png",
                min_size=0,
                max_size=65536,
                uploader="u_alice",
                expires=when + 900,
                base_url=None,
            )
        )
        fields = dict(form.form_data)
        policy = base64.b64decode(fields["policy"]).decode()
        cases.append(
            {
                "region": "oss-cn-hangzhou",
                "accessKeyId": AK,
                "secret": SK,
                "policy": policy,
                "dateMs": when * 1000,
            }
        )
        ours.append(fields["x-oss-signature"])
    script = Path(__file__).with_name("oss_post_v4.cjs")
    run = subprocess.run(
        [node, str(script)], input=json.dumps(cases), capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == ours
