"""The ``[files]`` section of minibase.toml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from minibase.config import Config, FilesArea, FilesConfig, S3Location, parse_config, parse_size
from minibase.errors import ConfigError
from minibase.files import LocalFileStore, build_file_store
from minibase.files.store.s3 import S3FileStore

DEV = {"auth": {"dev": {"enabled": True}}}


def parse(files: dict[str, Any] | None, environ: dict[str, str] | None = None) -> Config:
    raw: dict[str, Any] = dict(DEV)
    if files is not None:
        raw["files"] = files
    return parse_config(raw, data_dir="/srv/data", base_dir="/srv", environ=environ or {})


def test_defaults() -> None:
    c = parse(None)
    assert c.files == FilesConfig()
    f = c.files
    assert f.url == "file://files" and f.backend == "local" and f.s3 is None
    assert f.max_size == 10 * 1024 * 1024
    assert f.content_types == ()
    assert f.url_ttl == 900
    assert f.base_url is None and f.areas == {}
    assert c.files_root == Path("/srv/data/files")


def test_only_url_as_before() -> None:
    c = parse({"url": "file://uploads"})
    assert c.files.url == "file://uploads" and c.files_root == Path("/srv/data/uploads")
    assert parse({"url": "file:///var/files"}).files_root == Path("/var/files")
    assert parse({"url": "env:FILES"}, {"FILES": "file://x"}).files_root == Path("/srv/data/x")


def test_everything() -> None:
    c = parse(
        {
            "url": "file://files",
            "max_size": "20MiB",
            "content_types": ["image/*", "Application/PDF"],
            "url_ttl": "1h",
            "base_url": "https://api.example.com/",
            "areas": {
                "public": {"read": "public", "write": "authenticated", "max_size": 1024},
                "avatars": {"prefix": "pub/avatars/", "read": "public", "content_types": ["image/png"]},
            },
        }
    )
    f = c.files
    assert f.max_size == 20 * 1024 * 1024
    assert f.content_types == ("image/*", "application/pdf")
    assert f.url_ttl == 3600
    assert f.base_url == "https://api.example.com"
    assert f.areas["public"] == FilesArea("public", "public/", "public", "authenticated", 1024, None)
    assert f.areas["avatars"] == FilesArea("avatars", "pub/avatars/", "public", "owner", None, ("image/png",))
    assert f.area_for("pub/avatars/a.png") == f.areas["avatars"]
    assert f.area_for("pub/other.png") is None


def test_s3_urls() -> None:
    f = parse(
        {
            "url": "s3://my-bucket/apps/todo?endpoint=http://127.0.0.1:9000/&region=us-west-2&path_style=true",
            "access_key_id": "env:KEY",
            "secret_access_key": "env:SECRET",
        },
        {"KEY": "AKID", "SECRET": "shh"},
    ).files
    assert f.backend == "s3"
    assert f.s3 == S3Location("s3", "my-bucket", "apps/todo/", "http://127.0.0.1:9000", "us-west-2", True)
    assert (f.access_key_id, f.secret_access_key, f.session_token) == ("AKID", "shh", None)
    assert "shh" not in repr(f)
    assert parse({"url": "s3://bucket"}).files.s3 == S3Location("s3", "bucket", "", None, None, False)
    oss = parse({"url": "oss://bucket?endpoint=https://oss-cn-hangzhou.aliyuncs.com"}).files
    assert oss.backend == "s3"
    assert oss.s3 == S3Location(
        "oss", "bucket", "", "https://oss-cn-hangzhou.aliyuncs.com", "oss-cn-hangzhou", False
    )
    internal = parse({"url": "oss://bucket?endpoint=https://oss-cn-beijing-internal.aliyuncs.com"}).files
    assert internal.s3 is not None and internal.s3.region == "oss-cn-beijing"
    assert parse({"url": "s3://bucket"}).files_root is None


def test_sizes() -> None:
    assert parse_size(1000) == 1000
    assert parse_size("10MiB") == 10 * 1024 * 1024
    assert parse_size("10 mib") == 10 * 1024 * 1024
    assert parse_size("512KiB") == 512 * 1024
    assert parse_size("1.5MB") == 1_500_000
    assert parse_size("2G") == 2 * 1024**3
    assert parse_size("77") == 77
    for bad in ("ten", "-1", "1TB", True, None, 1.5):
        with pytest.raises(ValueError):
            parse_size(bad)


@pytest.mark.parametrize(
    ("files", "env", "key"),
    [
        ({"url": "ftp://x"}, {}, "files.url"),
        ({"url": "file://"}, {}, "files.url"),
        ({"url": ""}, {}, "files.url"),
        ({"url": 5}, {}, "files.url"),
        ({"url": "env:NOPE"}, {}, "files.url"),
        ({"url": "s3://B_ad"}, {}, "files.url"),
        ({"url": "s3://bucket?endpoint=ftp://x"}, {}, "files.url"),
        ({"url": "s3://bucket?endpoint=http://h/path"}, {}, "files.url"),
        ({"url": "s3://bucket?region=Bad Region"}, {}, "files.url"),
        ({"url": "s3://bucket?path_style=maybe"}, {}, "files.url"),
        ({"url": "s3://bucket?colour=blue"}, {}, "files.url"),
        ({"url": "s3://bucket?region=a&region=b"}, {}, "files.url"),
        ({"url": "s3://bucket/a/../b"}, {}, "files.url"),
        ({"url": "oss://bucket"}, {}, "files.url"),
        ({"url": "oss://bucket?endpoint=https://example.com"}, {}, "files.url"),
        ({"max_size": "lots"}, {}, "files.max_size"),
        ({"max_size": 0}, {}, "files.max_size"),
        ({"max_size": "6GiB"}, {}, "files.max_size"),
        ({"content_types": []}, {}, "files.content_types"),
        ({"content_types": 5}, {}, "files.content_types"),
        ({"content_types": ["image/*", "images"]}, {}, "files.content_types[1]"),
        ({"content_types": ["*/png"]}, {}, "files.content_types[0]"),
        ({"url_ttl": "30s"}, {}, "files.url_ttl"),
        ({"url_ttl": "8d"}, {}, "files.url_ttl"),
        ({"url_ttl": "soon"}, {}, "files.url_ttl"),
        ({"base_url": "example.com"}, {}, "files.base_url"),
        ({"base_url": "https://example.com/?a=1"}, {}, "files.base_url"),
        ({"colour": "blue"}, {}, "files.colour"),
        ({"access_key_id": "a", "secret_access_key": "b"}, {}, "files.access_key_id"),
        ({"url": "s3://bucket", "access_key_id": "a"}, {}, "files.secret_access_key"),
        ({"url": "s3://bucket", "session_token": "t"}, {}, "files.session_token"),
        ({"areas": 5}, {}, "files.areas"),
        ({"areas": {"pub": 5}}, {}, "files.areas.pub"),
        ({"areas": {"9pub": {}}}, {}, "files.areas.9pub"),
        ({"areas": {"pub": {"colour": "x"}}}, {}, "files.areas.pub.colour"),
        ({"areas": {"pub": {"read": "everyone"}}}, {}, "files.areas.pub.read"),
        ({"areas": {"pub": {"write": "doc.uid == auth.uid"}}}, {}, "files.areas.pub.write"),
        ({"areas": {"pub": {"prefix": "pub"}}}, {}, "files.areas.pub.prefix"),
        ({"areas": {"pub": {"prefix": "/pub/"}}}, {}, "files.areas.pub.prefix"),
        ({"areas": {"pub": {"prefix": "a/../b/"}}}, {}, "files.areas.pub.prefix"),
        ({"areas": {"pub": {"prefix": "users/"}}}, {}, "files.areas.pub.prefix"),
        ({"areas": {"pub": {"prefix": "users/shared/"}}}, {}, "files.areas.pub.prefix"),
        ({"areas": {"a": {"prefix": "p/"}, "b": {"prefix": "p/q/"}}}, {}, "files.areas.b.prefix"),
        ({"areas": {"a": {"prefix": "p/q/"}, "b": {"prefix": "p/"}}}, {}, "files.areas.b.prefix"),
        ({"areas": {"pub": {"max_size": "big"}}}, {}, "files.areas.pub.max_size"),
        ({"areas": {"pub": {"content_types": ["x"]}}}, {}, "files.areas.pub.content_types[0]"),
    ],
)
def test_wrong_values_name_their_key(files: dict[str, Any], env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse(files, env)
    assert e.value.key == key, str(e.value)


def test_build_file_store(tmp_path: Path) -> None:
    local = parse_config({**DEV}, data_dir=tmp_path, environ={})
    store = build_file_store(local, ["s" * 40])
    assert isinstance(store, LocalFileStore) and store.root == tmp_path / "files"
    s3 = parse_config(
        {**DEV, "files": {"url": "s3://bucket?region=eu-west-1"}}, data_dir=tmp_path, environ={}
    )
    store2 = build_file_store(s3, ["s" * 40])
    assert isinstance(store2, S3FileStore) and store2.location.bucket == "bucket"
