"""Byte-range responses (RFC 9110 §14), so a browser's <video> can seek in a clip without
downloading it whole. One range per request, which is all that media elements ask for."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Protocol

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from dashboard.streaming import for_server

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
CHUNK = 64 * 1024


class RangeNotSatisfiable(Exception):
    pass


class Seekable(Protocol):
    """An open binary file (a FieldFile too)."""

    def seek(self, offset: int, whence: int = ..., /) -> int: ...

    def read(self, size: int = ..., /) -> bytes: ...

    def close(self) -> None: ...


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte, inclusive, of a single `bytes=` range; None to send the whole file.

    A header we do not understand (several ranges, other units, bad syntax) is ignored, as the RFC
    allows; a range that starts past the end is not satisfiable.
    """
    match = _RANGE.fullmatch(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":  # "bytes=-N": the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - length), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start > end:
        if last and int(last) < start:
            return None  # "bytes=9-3" is invalid syntax: ignore it
        raise RangeNotSatisfiable
    return start, end


def _chunks(handle: Seekable, first: int, last: int) -> Iterator[bytes]:
    try:
        handle.seek(first)
        left = last - first + 1
        while left > 0 and (data := handle.read(min(CHUNK, left))):
            left -= len(data)
            yield data
    finally:
        handle.close()


def ranged_file_response(request: HttpRequest, handle: Seekable, size: int, content_type: str) -> HttpResponseBase:
    """200 with the whole file, 206 with the asked range, or 416; always says ranges are welcome."""
    try:
        span = parse_range(request.headers.get("Range", ""), size)
    except RangeNotSatisfiable:
        handle.close()
        refused = HttpResponse(status=416)
        refused["Content-Range"] = f"bytes */{size}"
        refused["Accept-Ranges"] = "bytes"
        return refused
    first, last = span if span is not None else (0, size - 1)
    response = StreamingHttpResponse(for_server(request, _chunks(handle, first, last)), status=206 if span else 200)
    response["Content-Type"] = content_type
    response["Content-Length"] = str(max(0, last - first + 1))
    response["Accept-Ranges"] = "bytes"
    if span is not None:
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
    return response
