"""Path validation and area resolution (backend-independent)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from minibase.config import Config
from minibase.errors import InvalidArgument, PermissionDenied, Unauthenticated
from minibase.files.api import content_type_allowed
from minibase.files.paths import check_prefix, resolve, resolve_prefix
from tests.support.config import base_raw

UID = "u_alice000000000000000"


@pytest.fixture
def config(make_config: Callable[..., Config]) -> Config:
    return make_config(
        base_raw(files={"areas": {"public": {"read": "public"}, "media": {"prefix": "shared/media/"}}})
    )


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/abs.txt",
        "a/",
        "a//b",
        "../x",
        "a/../b",
        "./a",
        "a/.",
        "a\\b",
        "a\x00b",
        "a\nb",
        "a\tb",
        "a\x7fb",
        "a\x85b",
        "a\u2028b",
        "x" * 513,
        "é" * 257,
        ".~mb-meta/x",
        "a/.~mb-tmp-1",
        "public/",
        "shared/media/",
        f"users/{UID}",
        f"users/{UID}/",
        "a\ud800",
        None,
        7,
        ["a"],
    ],
)
def test_bad_paths(config: Config, path: object) -> None:
    with pytest.raises(InvalidArgument):
        resolve(config.files, path, UID)


def test_resolution(config: Config) -> None:
    files = config.files
    loc = resolve(files, "photos/cat.jpg", UID)
    assert loc.key == f"users/{UID}/photos/cat.jpg" and loc.area is None
    assert loc.client_path(loc.key) == "photos/cat.jpg"
    assert resolve(files, f"users/{UID}/photos/cat.jpg", UID).key == loc.key
    assert resolve(files, "x" * 512, UID).key.endswith("x" * 512)
    assert resolve(files, ".hidden/.x", UID).key.endswith(".hidden/.x")
    pub = resolve(files, "public/a.png", None)
    assert pub.key == "public/a.png" and pub.area is not None and pub.area.name == "public"
    assert pub.client_path(pub.key) == "public/a.png"
    media = resolve(files, "shared/media/v.mp4", UID)
    assert media.area is not None and media.area.name == "media"
    # Not an area prefix: the caller's own.
    assert resolve(files, "publicity.txt", UID).area is None
    assert resolve(files, "shared/other.txt", UID).key == f"users/{UID}/shared/other.txt"
    with pytest.raises(PermissionDenied):
        resolve(files, "users/u_bob00000000000000000/x", UID)
    with pytest.raises(PermissionDenied):
        resolve(files, f"users/{UID}x/x", UID)
    with pytest.raises(Unauthenticated):
        resolve(files, "x", None)


def test_prefixes(config: Config) -> None:
    files = config.files
    assert check_prefix(None) == "" and check_prefix("") == ""
    assert resolve_prefix(files, None, UID).key == f"users/{UID}/"
    assert resolve_prefix(files, "ph", UID).key == f"users/{UID}/ph"
    assert resolve_prefix(files, "photos/", UID).key == f"users/{UID}/photos/"
    # users/<own uid> without the slash must not reach users/<uid>x/...
    assert resolve_prefix(files, f"users/{UID}", UID).key == f"users/{UID}/"
    assert resolve_prefix(files, "public/", None).key == "public/"
    for bad in ("/", "a//", "../", "a/../", 5, "a\x00"):
        with pytest.raises(InvalidArgument):
            resolve_prefix(files, bad, UID)
    for other in ("users/", "users/u_b", f"users/{UID}x/"):
        with pytest.raises(PermissionDenied):
            resolve_prefix(files, other, UID)


def test_content_type_patterns() -> None:
    assert content_type_allowed("anything/at-all", ())
    pats = ("image/*", "text/plain")
    assert content_type_allowed("image/png", pats)
    assert content_type_allowed("IMAGE/PNG", pats)
    assert content_type_allowed("text/plain; charset=utf-8", pats)
    assert not content_type_allowed("text/html", pats)
    assert not content_type_allowed("imagex/png", pats)
    assert content_type_allowed("video/mp4", ("*/*",))
    # A wildcard never admits what a browser could run; naming it does.
    for active in ("image/svg+xml", "text/html", "application/xhtml+xml", "text/xml", "application/rss+xml"):
        major = active.split("/")[0]
        assert not content_type_allowed(active, (f"{major}/*",)), active
        assert not content_type_allowed(active, ("*/*",)), active
        assert content_type_allowed(active.upper() + "; charset=utf-8", (active,)), active
        assert content_type_allowed(active, ()), active  # no list configured: any type
