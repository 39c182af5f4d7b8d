"""Thumbnails (``[files.thumbs]``): declared sizes only, fit inside the box, EXIF orientation
applied, metadata stripped, cached per version of the file and invalidated when it changes,
the original's read rule; bombs and non-images refused. Local disk and S3 (rendered and
stored beside the file), and OSS's signed ``x-oss-process`` URL."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

from minibase.config import Config
from minibase.errors import InvalidArgument, NotFound, PayloadTooLarge
from minibase.files import build_file_store
from minibase.files.thumbs import Thumbnailer, ThumbSpec
from tests.support.files import files_config
from tests.support.files_harness import FilesEnv

ALICE = "u_alice000000000000000"
BOB = "u_bob00000000000000000"


def jpeg(width: int, height: int, *, orientation: int | None = None, color: str = "red") -> bytes:
    """A JPEG with EXIF (orientation, a GPS position and a camera model) to be stripped."""
    im = Image.new("RGB", (width, height), color)
    exif = Image.Exif()
    exif[0x0110] = "SecretCam 3000"  # Model
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 0.0)}  # GPSInfo
    if orientation is not None:
        exif[0x0112] = orientation
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif, quality=70)
    return buf.getvalue()


def png(width: int, height: int, mode: str = "RGBA") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (width, height), (0, 128, 255, 100) if mode == "RGBA" else "blue").save(buf, "PNG")
    return buf.getvalue()


def fetch_image(env: FilesEnv, url: str) -> tuple[Image.Image, str, bytes]:
    r = env.http.get(url)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    return Image.open(io.BytesIO(r.content)), r.headers["content-type"], r.content


def test_sizes_orientation_and_stripped_metadata(files_backend: FilesEnv) -> None:
    env = files_backend
    # 400x300 stored, shown rotated a quarter turn (orientation 6): 300x400 upright.
    assert env.upload(ALICE, "public/p.jpg", jpeg(400, 300, orientation=6), "image/jpeg").status_code == 200
    want = {"64x64": (48, 64), "100x": (100, 133), "x50": (37, 50)}
    for size, dims in want.items():
        link = env.call(None, "downloadUrl", path="public/p.jpg", thumb=size)
        assert link["expiresAt"] is None  # a public file's thumbnail has a stable URL too
        im, content_type, raw = fetch_image(env, link["url"])
        assert (im.size, content_type, im.format) == (dims, "image/jpeg", "JPEG"), size
        assert not im.getexif() and b"SecretCam" not in raw and "icc_profile" not in im.info
    # The same URL every time.
    a = env.call(ALICE, "downloadUrl", path="public/p.jpg", thumb="x50")["url"]
    assert a == env.call(None, "downloadUrl", path="public/p.jpg", thumb="x50")["url"]
    # Never enlarged; PNG with alpha stays PNG with alpha.
    assert env.upload(ALICE, "public/small.png", png(40, 30), "image/png").status_code == 200
    im, content_type, _ = fetch_image(
        env, env.call(None, "downloadUrl", path="public/small.png", thumb="100x")["url"]
    )
    assert (im.size, content_type, im.mode) == ((40, 30), "image/png", "RGBA")


def test_only_declared_sizes_and_only_images(files_backend: FilesEnv) -> None:
    env = files_backend
    assert env.upload(ALICE, "a.jpg", jpeg(80, 60), "image/jpeg").status_code == 200
    assert env.upload(ALICE, "a.txt", b"hello", "text/plain").status_code == 200
    for bad in ("13x13", "200x200", "64X64", 64, ""):
        e = env.error(ALICE, "downloadUrl", path="a.jpg", thumb=bad)
        assert isinstance(e, InvalidArgument) and "64x64, 100x, x50" in e.message, bad
        assert isinstance(env.error(ALICE, "downloadUrls", paths=["a.jpg"], thumb=bad), InvalidArgument)
    e = env.error(ALICE, "downloadUrl", path="a.txt", thumb="64x64")
    assert isinstance(e, InvalidArgument) and "only of images" in e.message
    out = env.call(ALICE, "downloadUrls", paths=["a.jpg", "a.txt", "none.jpg"], thumb="64x64")
    assert [o.get("error", {}).get("code") for o in out] == [None, "InvalidArgument", "NotFound"]
    im, _, _ = fetch_image(env, out[0]["url"])
    assert im.size == (64, 48)
    if env.backend == "local":
        # A stable URL cannot ask for an undeclared size either.
        assert env.upload(ALICE, "public/x.png", png(10, 10), "image/png").status_code == 200
        r = env.http.get(env.url + "/files/public/x.png?thumb=13x13")
        assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidArgument"


def test_thumbnails_are_cached_and_invalidated(files_backend: FilesEnv) -> None:
    env = files_backend
    assert env.upload(ALICE, "public/c.jpg", jpeg(200, 100), "image/jpeg").status_code == 200
    url = env.call(None, "downloadUrl", path="public/c.jpg", thumb="100x")["url"]
    first, _, raw1 = fetch_image(env, url)
    assert first.size == (100, 50)
    if env.backend == "local":
        cache = Path(env.config.files_root or "") / "public" / ".~mb-thumb" / "c.jpg"
        [cached] = list(cache.iterdir())
        mtime = cached.stat().st_mtime_ns
        assert fetch_image(env, url)[2] == raw1 and cached.stat().st_mtime_ns == mtime  # not rendered again
    else:
        assert env.call(None, "downloadUrl", path="public/c.jpg", thumb="100x")["url"] == url
    # Replaced by another image: the thumbnail follows, the old render is gone.
    assert env.upload(ALICE, "public/c.jpg", jpeg(100, 200, color="blue"), "image/jpeg").status_code == 200
    url2 = env.call(None, "downloadUrl", path="public/c.jpg", thumb="100x")["url"]
    second, _, _ = fetch_image(env, url2)
    assert second.size == (100, 200) and second.getpixel((50, 100))[2] > 200  # blue now
    if env.backend == "local":
        assert url2 == url and len(list(cache.iterdir())) == 1
    else:
        assert url2 != url and env.http.get(url).status_code in (403, 404)  # the old render was deleted
    # Thumbnails never show up in listings, and go with the file.
    assert [f["path"] for f in env.call(ALICE, "list", prefix="public/")["data"]] == ["public/c.jpg"]
    env.call(ALICE, "remove", path="public/c.jpg")
    assert env.http.get(url2).status_code in (403, 404)
    if env.backend == "local":
        assert not cache.exists() and not cache.parent.exists()


def test_the_originals_read_rule_holds(files_backend: FilesEnv) -> None:
    env = files_backend
    assert env.upload(BOB, "inbox/b.jpg", jpeg(80, 80), "image/jpeg").status_code == 200
    assert env.upload(BOB, "archive-not.jpg", jpeg(80, 80), "image/jpeg").status_code == 200
    assert isinstance(env.error(ALICE, "downloadUrl", path="inbox/b.jpg", thumb="64x64"), NotFound)
    assert (
        env.call(ALICE, "downloadUrls", paths=["inbox/b.jpg"], thumb="64x64")[0]["error"]["code"]
        == "NotFound"
    )
    e = env.error(ALICE, "downloadUrl", path=f"users/{BOB}/archive-not.jpg", thumb="64x64")
    assert e.code == "PermissionDenied"
    assert env.error(None, "downloadUrl", path="team/x.jpg", thumb="64x64").code == "Unauthenticated"
    # The owner gets it, under a signed, expiring URL.
    link = env.call(BOB, "downloadUrl", path="inbox/b.jpg", thumb="64x64")
    assert link["expiresAt"] is not None
    assert fetch_image(env, link["url"])[0].size == (64, 64)
    if env.backend == "local":
        # The signature covers the size: it cannot be swapped for another.
        swapped = link["url"].replace("Thumb=64x64", "Thumb=100x")
        assert env.http.get(swapped).status_code == 403
        assert env.http.get(link["url"].replace("&Thumb=64x64", "")).status_code == 403


def test_bombs_and_non_images_are_refused_cleanly(files_backend: FilesEnv) -> None:
    env = files_backend
    bomb = png(2000, 1000, mode="L")  # 2M pixels in a few KiB; max_pixels is 1M here
    assert len(bomb) < 64 * 1024
    assert env.upload(ALICE, "bomb.png", bomb, "image/png").status_code == 200
    assert env.upload(ALICE, "fake.png", b"not an image at all" * 10, "image/png").status_code == 200
    truncated = jpeg(300, 300)[:400]
    assert env.upload(ALICE, "cut.jpg", truncated, "image/jpeg").status_code == 200
    for path, code, status in (
        ("bomb.png", "PayloadTooLarge", 413),
        ("fake.png", "InvalidArgument", 400),
        ("cut.jpg", "InvalidArgument", 400),
    ):
        if env.backend == "local":  # rendered when fetched: the GET answers the refusal
            url = env.call(ALICE, "downloadUrl", path=path, thumb="64x64")["url"]
            r = env.http.get(url)
            assert (r.status_code, r.json()["error"]["code"]) == (status, code), path
        else:  # rendered when the URL is made: the op answers it
            assert env.error(ALICE, "downloadUrl", path=path, thumb="64x64").code == code, path
            [item] = env.call(ALICE, "downloadUrls", paths=[path], thumb="64x64")
            assert item["error"]["code"] == code


def test_render_refuses_a_header_bomb_before_decoding() -> None:
    """A PNG header declaring 30000x30000 pixels: refused from the header alone."""
    thumbs = Thumbnailer(["64x64"], max_pixels=40_000_000)
    big = png(30000, 30000, mode="1")  # ~100 KiB compressed, 900M pixels
    start = time.perf_counter()
    with pytest.raises(PayloadTooLarge):
        thumbs.render(big, ThumbSpec.parse("64x64"))
    assert time.perf_counter() - start < 1.0


def test_formats_follow_the_config() -> None:
    source = jpeg(300, 200)
    for fmt, want in (("webp", "WEBP"), ("png", "PNG"), ("jpeg", "JPEG")):
        made = Thumbnailer(["64x64"], format=fmt).render(source, ThumbSpec.parse("64x64"))
        im = Image.open(io.BytesIO(made.data))
        assert (im.format, im.size) == (want, (64, 43))
    # auto: RGBA PNG to JPEG is not possible without losing alpha, so it stays PNG;
    # forced JPEG flattens it on white.
    made = Thumbnailer(["64x64"], format="jpeg").render(png(10, 10), ThumbSpec.parse("64x64"))
    assert Image.open(io.BytesIO(made.data)).mode == "RGB"


def test_oss_thumbnails_are_a_signed_x_oss_process_url(
    make_config: Callable[..., Config], s3_endpoint: tuple[str, object]
) -> None:
    endpoint, _ = s3_endpoint
    from tests.support.files import make_bucket

    bucket = make_bucket(endpoint)
    url = f"oss://{bucket}?endpoint={endpoint}&region=oss-cn-hangzhou&path_style=true"
    config = files_config(make_config, url)
    store = build_file_store(config, ["s" * 32])
    try:
        signed = asyncio.run(
            store.sign_download(
                "users/u/a.jpg", expires=int(time.time()) + 600, public=False, base_url=None, thumb="64x64"
            )
        )
        query = parse_qs(urlsplit(signed).query)
        assert query["x-oss-process"] == ["image/auto-orient,1/resize,m_lfit,limit_1,w_64,h_64/quality,q_82"]
        # OSS's own V4 query signature, not AWS's (tests/files/test_oss.py takes it to a fake
        # OSS that checks it; tests/files/test_oss_sign.py holds it to the official SDK).
        assert query["x-oss-signature-version"] == ["OSS4-HMAC-SHA256"] and "X-Amz-Signature" not in query
        public = asyncio.run(store.public_url("public/a.jpg", base_url=None, thumb="100x"))
        assert public.endswith(
            "/public/a.jpg?x-oss-process=image%2Fauto-orient%2C1%2Fresize%2Cm_lfit%2Climit_1%2Cw_100%2Fquality%2Cq_82"
        )
    finally:
        asyncio.run(store.close())


def test_renders_run_at_most_two_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst of thumbnail requests decodes at most MAX_RENDERS images at a time."""
    import threading

    from minibase.files import thumbs as thumbs_module

    running = [0, 0]  # now, most
    lock = threading.Lock()
    real = Thumbnailer._render

    def slow(self: Thumbnailer, source: object, spec: ThumbSpec) -> object:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        time.sleep(0.05)
        try:
            return real(self, source, spec)  # type: ignore[arg-type]
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(Thumbnailer, "_render", slow)
    t = Thumbnailer(["64x64"])
    source = jpeg(100, 100)
    workers = [threading.Thread(target=t.render, args=(source, ThumbSpec.parse("64x64"))) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert running[1] == thumbs_module.MAX_RENDERS == 2
