"""``oss://`` over loopback against a fake OSS endpoint that checks OSS's own V4 signatures
(tests/fakes/oss_server.py): ``uploadForm`` → PostObject → ``downloadUrl`` with a
thumbnail (``x-oss-process``, rendered by OSS: the fake echoes what it was asked), and
what OSS refuses: a changed process, key, size or type, a forged policy, expiry, STS
without its token."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from minibase.config import Config
from minibase.files import build_file_store
from tests.fakes.oss_server import (
    ACCESS_KEY,
    PROCESS_HEADER,
    REGION,
    SECRET_KEY,
    STS_KEY,
    STS_SECRET,
    STS_TOKEN,
    OssGateway,
    oss_server,
)
from tests.fakes.s3server import SigV4Gateway
from tests.support.config import SECRET
from tests.support.files import FILES, files_config, make_bucket
from tests.support.files_harness import FilesEnv

ALICE = "u_alice000000000000000"
PNG = b"\x89PNG\r\n\x1a\n fake image bytes" * 40
THUMB_64 = "image/auto-orient,1/resize,m_lfit,limit_1,w_64,h_64/quality,q_82"


@pytest.fixture(scope="module")
def oss_gateway(s3_endpoint: tuple[str, SigV4Gateway]) -> Iterator[tuple[str, str, OssGateway]]:
    """The fake OSS endpoint in front of the session's moto: (S3 endpoint, OSS endpoint, fake)."""
    s3_url, s3 = s3_endpoint
    with oss_server(s3.upstream) as (url, gateway):
        yield s3_url, url, gateway


def _env(
    oss_gateway: tuple[str, str, OssGateway], make_config: Callable[..., Config], **credentials: str
) -> FilesEnv:
    s3_url, url, gateway = oss_gateway
    gateway.offset = 0.0
    public = [a["prefix"] for a in FILES["areas"].values() if a["read"] == "public"]
    bucket = make_bucket(s3_url, public)  # same moto: the bucket exists behind the fake too
    given = credentials or {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY}
    config = files_config(
        make_config, f"oss://{bucket}?endpoint={url}&region={REGION}&path_style=true", **given
    )

    def later(seconds: float) -> None:
        gateway.offset += seconds

    return FilesEnv("oss", url, config, build_file_store(config, [SECRET]), later)


@pytest.fixture
def oss(oss_gateway: tuple[str, str, OssGateway], make_config: Callable[..., Config]) -> Iterator[FilesEnv]:
    env = _env(oss_gateway, make_config)
    try:
        yield env
    finally:
        env.close()
        oss_gateway[2].offset = 0.0


def post(env: FilesEnv, form: dict[str, Any], data: bytes, **changed: str) -> httpx.Response:
    fields = {**form["formData"], **changed}
    return env.http.post(
        form["url"], data=fields, files={form["name"]: ("a.png", data, "application/octet-stream")}
    )


def _code(r: httpx.Response) -> str:
    return r.text.split("<Code>", 1)[1].split("</Code>", 1)[0] if "<Code>" in r.text else r.text


def test_form_upload_then_thumbnail_url_through_oss(
    oss: FilesEnv, oss_gateway: tuple[str, str, OssGateway]
) -> None:
    gateway = oss_gateway[2]
    form = oss.call(ALICE, "uploadForm", path="pics/a.png", contentType="image/png", size=len(PNG))
    assert form["name"] == "file" and form["formData"]["x-oss-signature-version"] == "OSS4-HMAC-SHA256"
    assert not any(k.lower().startswith("x-amz") for k in form["formData"])  # OSS's own form
    before = gateway.checked
    r = post(oss, form, PNG)
    assert r.status_code == 204, r.text
    assert gateway.checked == before + 1  # the fake verified it
    stat = oss.call(ALICE, "stat", path="pics/a.png")
    assert (stat["size"], stat["contentType"]) == (len(PNG), "image/png")
    assert stat.get("uploader", ALICE) == ALICE

    link = oss.call(ALICE, "downloadUrl", path="pics/a.png", thumb="64x64")
    query = dict(parse_qsl(urlsplit(link["url"]).query))
    assert query["x-oss-process"] == THUMB_64 and "x-oss-signature" in query
    got = oss.http.get(link["url"])
    assert got.status_code == 200, got.text
    # The server rendered nothing: OSS got the process (the fake answers the original).
    assert got.headers[PROCESS_HEADER] == THUMB_64 and got.content == PNG
    assert gateway.checked == before + 2
    plain = oss.http.get(oss.call(ALICE, "downloadUrl", path="pics/a.png")["url"])
    assert plain.status_code == 200 and plain.content == PNG and PROCESS_HEADER not in plain.headers

    # A batch with a thumbnail: each URL signed with its process.
    [one] = oss.call(ALICE, "downloadUrls", paths=["pics/a.png"], thumb="100x")
    got = oss.http.get(one["url"])
    assert (
        got.status_code == 200 and got.headers[PROCESS_HEADER].split("/")[2] == "resize,m_lfit,limit_1,w_100"
    )


def _with_query(url: str, **changed: str) -> str:
    parts = urlsplit(url)
    query = {**dict(parse_qsl(parts.query)), **changed}
    return parts._replace(query=urlencode(query)).geturl()


def test_oss_refuses_a_changed_or_expired_url(oss: FilesEnv) -> None:
    form = oss.call(ALICE, "uploadForm", path="pics/b.png", contentType="image/png", size=len(PNG))
    assert post(oss, form, PNG).status_code == 204
    url = oss.call(ALICE, "downloadUrl", path="pics/b.png", thumb="64x64")["url"]
    assert oss.http.get(url).status_code == 200
    # Another size (the server never renders any, but OSS would): the signature covers it.
    bigger = _with_query(url, **{"x-oss-process": THUMB_64.replace("w_64,h_64", "w_4000,h_4000")})
    r = oss.http.get(bigger)
    assert r.status_code == 403 and _code(r) == "SignatureDoesNotMatch"
    r = oss.http.get(_with_query(url, **{"x-oss-expires": "604800"}))
    assert r.status_code == 403 and _code(r) == "SignatureDoesNotMatch"
    # Without the query it is an anonymous read of a private file.
    assert oss.http.get(url.split("?", 1)[0]).status_code == 403
    oss.pass_time(oss.config.files.url_ttl + 1)
    r = oss.http.get(url)
    assert r.status_code == 403 and "expired" in r.text


def test_the_post_policy_pins_key_size_and_type(oss: FilesEnv) -> None:
    form = oss.call(ALICE, "uploadForm", path="pics/c.png", contentType="image/png", size=len(PNG))
    other_key = form["formData"]["key"].replace("c.png", "d.png")
    cases = {
        "key": (post(oss, form, PNG, key=other_key), "AccessDenied"),
        "size": (post(oss, form, PNG + b"!"), "EntityTooLarge"),
        "smaller": (post(oss, form, PNG[:-1]), "EntityTooSmall"),
        "type": (post(oss, form, PNG, **{"Content-Type": "text/html"}), "AccessDenied"),
        "uploader": (post(oss, form, PNG, **{"x-oss-meta-uploader": "u_mallory"}), "AccessDenied"),
    }
    policy = json.loads(base64.b64decode(form["formData"]["policy"]))
    policy["conditions"] = [
        c for c in policy["conditions"] if not (isinstance(c, list) and c[0] == "content-length-range")
    ]
    forged = base64.b64encode(json.dumps(policy).encode()).decode()
    cases["forged policy"] = (post(oss, form, PNG + PNG, policy=forged), "SignatureDoesNotMatch")
    for what, (r, code) in cases.items():
        assert (r.status_code, _code(r)) == (403, code), what
    assert oss.call(ALICE, "stat", path="pics/c.png") is None
    assert oss.call(ALICE, "stat", path="pics/d.png") is None
    # The policy says exactly that.
    conds = policy["conditions"]
    assert ["eq", "$key", form["formData"]["key"]] in conds and ["eq", "$Content-Type", "image/png"] in conds
    # Expired.
    oss.pass_time(oss.config.files.url_ttl + 1)
    r = post(oss, form, PNG)
    assert r.status_code == 403 and "expired" in r.text
    oss.pass_time(-(oss.config.files.url_ttl + 1))
    assert post(oss, form, PNG).status_code == 204
    assert oss.call(ALICE, "stat", path="pics/c.png")["size"] == len(PNG)


def test_sts_credentials_carry_their_token(
    oss_gateway: tuple[str, str, OssGateway], make_config: Callable[..., Config]
) -> None:
    env = _env(
        oss_gateway,
        make_config,
        access_key_id=STS_KEY,
        secret_access_key=STS_SECRET,
        session_token=STS_TOKEN,
    )
    try:
        form = env.call(ALICE, "uploadForm", path="pics/s.png", contentType="image/png", size=len(PNG))
        assert form["formData"]["x-oss-security-token"] == STS_TOKEN
        without = {k: v for k, v in form["formData"].items() if k != "x-oss-security-token"}
        r = env.http.post(form["url"], data=without, files={"file": ("a.png", PNG, "image/png")})
        assert (r.status_code, _code(r)) == (403, "InvalidAccessKeyId")
        assert post(env, form, PNG).status_code == 204
        url = env.call(ALICE, "downloadUrl", path="pics/s.png", thumb="64x64")["url"]
        assert dict(parse_qsl(urlsplit(url).query))["x-oss-security-token"] == STS_TOKEN
        got = env.http.get(url)
        assert got.status_code == 200 and got.headers[PROCESS_HEADER] == THUMB_64
    finally:
        env.close()
