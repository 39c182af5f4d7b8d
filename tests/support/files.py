"""Helpers for the tests (moved out of tests/files/conftest.py: conftest files hold fixtures only)."""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from starlette.types import ASGIApp

from minibase.config import Config
from minibase.files import LocalFileStore
from minibase.files.thumbs import Thumbnailer
from tests.fakes.s3server import ACCESS_KEY, REGION, SECRET_KEY, allow_public_read
from tests.support.config import SECRET, base_raw
from tests.support.files_harness import FilesEnv, files_asgi_app
from tests.support.live import run_uvicorn

BACKENDS = ["local", "s3"]


# What the suite's config allows: small limits so oversize is cheap to test.
FILES: dict[str, Any] = {
    "max_size": "64KiB",
    "thumbs": {"sizes": ["64x64", "100x", "x50"], "max_pixels": 1_000_000},
    "content_types": ["image/*", "text/*", "application/json", "application/octet-stream"],
    "areas": {
        "public": {
            "prefix": "public/",
            "read": "public",
            "write": "owner",
            "max_size": "16KiB",
            "content_types": ["image/*", "text/plain"],
        },
        "team": {"prefix": "team/", "read": "authenticated", "write": "authenticated"},
        "inbox": {"prefix": "inbox/", "read": "owner", "write": "owner"},
        "archive": {"prefix": "archive/", "read": "none", "write": "none"},
        # Types a browser could run, named explicitly (a wildcard never admits them).
        "drawings": {
            "prefix": "drawings/",
            "read": "public",
            "write": "authenticated",
            "content_types": ["image/svg+xml", "text/html", "image/*"],
        },
    },
}


def files_config(make_config: Callable[..., Config], url: str, **extra: Any) -> Config:
    environ = {"TEST_S3_ACCESS_KEY": ACCESS_KEY, "TEST_S3_SECRET_KEY": SECRET_KEY}
    section = {**FILES, "url": url, **extra}
    if not url.startswith("file://"):
        section.setdefault("access_key_id", "env:TEST_S3_ACCESS_KEY")
        section.setdefault("secret_access_key", "env:TEST_S3_SECRET_KEY")
    return make_config(base_raw(files=section), environ=environ)


@contextlib.contextmanager
def _admin(endpoint: str) -> Iterator[Any]:
    """A boto3 client for setting buckets up (its requests are header-signed: passed through)."""
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=BotoConfig(s3={"addressing_style": "path"}),
    )
    try:
        yield client
    finally:
        client.close()


def make_bucket(endpoint: str, public: Iterable[str] = ()) -> str:
    """A fresh bucket; anyone may read under the ``public`` prefixes (a bucket policy)."""
    bucket = "mb-" + secrets.token_hex(6)
    with _admin(endpoint) as client:
        client.create_bucket(Bucket=bucket)
        allow_public_read(client, bucket, public)
    return bucket


@contextlib.contextmanager
def local_env(
    config: Config, app: Callable[[LocalFileStore], ASGIApp] = files_asgi_app
) -> Iterator[FilesEnv]:
    """A local store for ``config`` with its routes served on loopback; its clock can skew."""
    assert config.files_root is not None
    skew = [0.0]
    store = LocalFileStore(
        config.files_root,
        [SECRET],
        clock=lambda: time.time() + skew[0],
        public_prefixes=config.files.public_prefixes,
        public_max_age=int(config.files.public_max_age),
        thumbs=Thumbnailer.from_config(config.files),
    )

    def pass_time(seconds: float) -> None:
        skew[0] += seconds

    with run_uvicorn(app(store)) as url:
        env = FilesEnv("local", url, config, store, pass_time)
        try:
            yield env
        finally:
            env.close()
