"""The file part of a ``multipart/form-data`` body, streamed (for the local form uploads).

Parsing is python-multipart's streaming parser (the one Starlette uses); this module only
picks the one part named like the form's file field and hands its bytes on as they come,
so a large upload never sits in memory. Other fields (what ``wx.uploadFile``'s
``formData`` adds) are read and dropped, at most :data:`MAX_FIELD_BYTES` of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from ..errors import InvalidArgument, PayloadTooLarge

__all__ = ["MAX_FIELD_BYTES", "boundary_of", "file_part"]

MAX_FIELD_BYTES = 64 * 1024  # all the non-file fields of one form together
_MAX_PARTS = 64


def boundary_of(content_type: str) -> bytes:
    """The boundary of a ``multipart/form-data`` Content-Type; InvalidArgument otherwise."""
    from python_multipart.multipart import parse_options_header

    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidArgument("a form upload is a multipart/form-data POST with a boundary")
    if len(boundary) > 70:  # RFC 2046's limit
        raise InvalidArgument("the multipart boundary is longer than 70 characters")
    return boundary


async def file_part(body: AsyncIterator[bytes], boundary: bytes, field: str) -> AsyncIterator[bytes]:
    """The bytes of the part named ``field`` (exactly one must come), as they arrive; the
    rest of the body is read through to its closing boundary (a body cut short, or without
    that part, is InvalidArgument at the end)."""
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser, parse_options_header

    want = field.encode()
    out: list[bytes] = []
    state: dict[str, Any] = {"in_file": False, "seen": False, "ended": False, "fields": 0, "parts": 0}
    header: list[bytes] = [b"", b""]
    disposition: list[bytes] = [b""]

    def on_part_begin() -> None:
        state["parts"] += 1
        if state["parts"] > _MAX_PARTS:
            raise InvalidArgument(f"a form upload has at most {_MAX_PARTS} parts")
        disposition[0] = b""

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header[0] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header[1] += data[start:end]

    def on_header_end() -> None:
        if header[0].strip().lower() == b"content-disposition":
            disposition[0] = header[1]
        header[0] = header[1] = b""

    def on_headers_finished() -> None:
        _, params = parse_options_header(disposition[0])
        if params.get(b"name") == want:
            if state["seen"]:
                raise InvalidArgument(f"a form upload carries one {field!r} part")
            state["in_file"] = state["seen"] = True

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["in_file"]:
            out.append(bytes(data[start:end]))
            return
        state["fields"] += end - start
        if state["fields"] > MAX_FIELD_BYTES:
            raise PayloadTooLarge(f"the form's other fields are larger than {MAX_FIELD_BYTES} bytes")

    def on_part_end() -> None:
        state["in_file"] = False

    def on_end() -> None:
        state["ended"] = True

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_end": on_end,
        },
    )
    async for chunk in body:
        try:
            parser.write(chunk)
        except MultipartParseError as e:
            raise InvalidArgument(f"the multipart body is malformed: {str(e)[:100]}") from None
        if out:
            data = b"".join(out) if len(out) > 1 else out[0]
            out.clear()
            yield data
    if not state["ended"]:
        raise InvalidArgument("the multipart body ended before its closing boundary")
    if not state["seen"]:
        raise InvalidArgument(f"the form has no {field!r} part")
