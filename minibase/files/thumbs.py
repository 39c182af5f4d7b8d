"""Thumbnails: the declared sizes (``[files.thumbs] sizes``) and rendering them with Pillow
(the ``images`` extra, imported on first use: cold start never pays for it).

A size is ``WxH`` (fit inside the box), ``Wx`` (that width) or ``xH`` (that height); the
aspect ratio is kept and an image is never enlarged. EXIF orientation is applied, then
every piece of metadata (EXIF, GPS, ICC profile, comments) is left out of the output.

Only JPEG, PNG, WebP and GIF (its first frame) are decoded; anything else is
:class:`InvalidArgument`. The pixel count is checked from the header before anything is
decoded, so a decompression bomb (a small file declaring a huge image) is
:class:`PayloadTooLarge` without costing memory.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any

from ..config import FilesConfig
from ..errors import Internal, InvalidArgument, PayloadTooLarge

__all__ = ["MAX_RENDERS", "MAX_SOURCE_BYTES", "Thumb", "ThumbSpec", "Thumbnailer"]

# Originals read into memory to render (S3/OSS without image processing): at most this.
MAX_SOURCE_BYTES = 50 * 1024 * 1024
_DECODERS = ("JPEG", "PNG", "WEBP", "GIF")
_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
_UNBOUNDED = 100_000
MAX_RENDERS = 2  # thumbnails decoded at once, in the whole process
_RENDERS = threading.BoundedSemaphore(MAX_RENDERS)


@dataclass(frozen=True, slots=True)
class ThumbSpec:
    """One declared size: ``name`` as written ("200x200"), and its box (None: unbounded)."""

    name: str
    width: int | None
    height: int | None

    @classmethod
    def parse(cls, name: str) -> ThumbSpec:
        w, _, h = name.partition("x")
        return cls(name, int(w) if w else None, int(h) if h else None)


@dataclass(frozen=True, slots=True)
class Thumb:
    """A rendered thumbnail."""

    data: bytes
    format: str  # "jpeg", "png" or "webp"

    @property
    def content_type(self) -> str:
        return _TYPES[self.format]


class Thumbnailer:
    """The configured sizes and how to render them."""

    def __init__(
        self,
        sizes: Sequence[str],
        *,
        format: str = "auto",
        quality: int = 82,
        max_pixels: int = 40_000_000,
    ) -> None:
        self.specs = {s: ThumbSpec.parse(s) for s in sizes}
        self.format = format
        self.quality = quality
        self.max_pixels = max_pixels

    @classmethod
    def from_config(cls, files: FilesConfig) -> Thumbnailer | None:
        if not files.thumb_sizes:
            return None
        return cls(
            files.thumb_sizes,
            format=files.thumb_format,
            quality=files.thumb_quality,
            max_pixels=files.thumb_max_pixels,
        )

    def spec(self, name: object) -> ThumbSpec:
        """The declared size ``name``; :class:`InvalidArgument` for any other (so no one can
        make the server render sizes it was not configured for)."""
        spec = self.specs.get(name) if isinstance(name, str) else None
        if spec is None:
            declared = ", ".join(self.specs) or "none: set [files.thumbs] sizes"
            raise InvalidArgument(f"thumb must be one of the configured sizes ({declared})")
        return spec

    def output_format(self, source_format: str | None) -> str:
        """The format a thumbnail of a ``source_format`` image is written in."""
        if self.format != "auto":
            return self.format
        return {"JPEG": "jpeg", "WEBP": "webp"}.get(source_format or "", "png")

    def render(self, source: IO[bytes] | bytes, spec: ThumbSpec) -> Thumb:
        """A thumbnail of the image in ``source`` fitting ``spec`` (blocking: run it on a
        thread). At most :data:`MAX_RENDERS` run at once in the process: a decoded image
        takes width x height x 4 bytes, so a burst of thumbnail requests must not multiply that."""
        with _RENDERS:
            return self._render(source, spec)

    def _render(self, source: IO[bytes] | bytes, spec: ThumbSpec) -> Thumb:
        try:
            from PIL import Image, ImageOps, UnidentifiedImageError
        except ImportError:
            raise Internal("thumbnails need Pillow: pip install 'minibase[images]'") from None
        fp = io.BytesIO(source) if isinstance(source, bytes) else source
        try:
            im: Any = Image.open(fp, formats=_DECODERS)
        except Image.DecompressionBombError:
            raise PayloadTooLarge("the image has too many pixels to make a thumbnail of") from None
        except UnidentifiedImageError:
            raise InvalidArgument(
                "not an image minibase can make thumbnails of (JPEG, PNG, WebP, GIF)"
            ) from None
        except (OSError, SyntaxError, ValueError) as e:  # a header cut short or corrupt
            raise InvalidArgument(f"the image could not be read: {str(e)[:100]}") from None
        with im:
            width, height = im.size
            if width * height > self.max_pixels:
                raise PayloadTooLarge(
                    f"the image has {width}x{height} pixels; thumbnails are made of at most {self.max_pixels}"
                )
            source_format = im.format
            box = (spec.width or _UNBOUNDED, spec.height or _UNBOUNDED)
            out_format = self.output_format(source_format)
            try:
                if source_format == "JPEG":
                    # Decode at a reduced scale (still at least the box, either way round).
                    side = max(v for v in (spec.width, spec.height) if v)
                    im.draft("RGB", (side, side))
                im = ImageOps.exif_transpose(im)
                im.thumbnail(box, Image.Resampling.LANCZOS, reducing_gap=3.0)
            except (OSError, SyntaxError, ValueError) as e:  # truncated or corrupt image data
                raise InvalidArgument(f"the image could not be decoded: {str(e)[:100]}") from None
            except Image.DecompressionBombError:  # pragma: no cover - checked from the header above
                raise PayloadTooLarge("the image has too many pixels to make a thumbnail of") from None
            im = _output_mode(im, out_format)
            im.info = {}  # no EXIF, ICC profile, comments or text chunks in the output
            buf = io.BytesIO()
            params: dict[str, Any] = {}
            if out_format in ("jpeg", "webp"):
                params["quality"] = self.quality
            if out_format == "jpeg":
                params["optimize"] = True
            im.save(buf, format=out_format.upper(), **params)
            return Thumb(buf.getvalue(), out_format)


def _output_mode(im: Any, out_format: str) -> Any:
    """``im`` in a mode ``out_format`` can store (JPEG: no alpha, on white)."""
    from PIL import Image

    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    if out_format == "jpeg":
        if has_alpha:
            rgba = im.convert("RGBA")
            flat = Image.new("RGB", rgba.size, (255, 255, 255))
            flat.paste(rgba, mask=rgba.getchannel("A"))
            return flat
        return im if im.mode in ("RGB", "L") else im.convert("RGB")
    if im.mode in ("RGB", "RGBA", "L", "LA"):
        return im
    return im.convert("RGBA" if has_alpha else "RGB")
