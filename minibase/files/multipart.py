"""The file part of a ``multipart/form-data`` body, streamed (for the local form uploads).

Parsing is python-multipart's streaming parser (the one Starlette uses); this module only
picks the one part named like the form's file field and hands its bytes on as they come,
so a large upload never sits in memory. Other fields (what ``wx.uploadFile``'s
``formData`` adds) are read and dropped, at most :data:`MAX_FIELD_BYTES` of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from ..errors import InvalidArgument, PayloadTooLarge

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

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
    from python_multipart.multipart import MultipartParser

    picker = _FilePicker(field)
    parser = MultipartParser(boundary, picker.callbacks())
    async for chunk in body:
        try:
            parser.write(chunk)
        except MultipartParseError as e:
            raise InvalidArgument(f"the multipart body is malformed: {str(e)[:100]}") from None
        if picker.out:
            data = b"".join(picker.out) if len(picker.out) > 1 else picker.out[0]
            picker.out.clear()
            yield data
    if not picker.ended:
        raise InvalidArgument("the multipart body ended before its closing boundary")
    if not picker.seen:
        raise InvalidArgument(f"the form has no {field!r} part")


class _FilePicker:
    """The parser's callbacks: keep the bytes of the part named ``field`` (in ``out`` until
    taken), count and drop the others, refuse a form of too many parts or field bytes."""

    def __init__(self, field: str) -> None:
        self.field = field
        self.want = field.encode()
        self.out: list[bytes] = []
        self.in_file = self.seen = self.ended = False
        self.fields = self.parts = 0
        self.header_name = self.header_value = self.disposition = b""

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > _MAX_PARTS:
            raise InvalidArgument(f"a form upload has at most {_MAX_PARTS} parts")
        self.disposition = b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        if self.header_name.strip().lower() == b"content-disposition":
            self.disposition = self.header_value
        self.header_name = self.header_value = b""

    def on_headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, params = parse_options_header(self.disposition)
        if params.get(b"name") == self.want:
            if self.seen:
                raise InvalidArgument(f"a form upload carries one {self.field!r} part")
            self.in_file = self.seen = True

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            self.out.append(bytes(data[start:end]))
            return
        self.fields += end - start
        if self.fields > MAX_FIELD_BYTES:
            raise PayloadTooLarge(f"the form's other fields are larger than {MAX_FIELD_BYTES} bytes")

    def on_part_end(self) -> None:
        self.in_file = False

    def on_end(self) -> None:
        self.ended = True
