"""An incident export as a zip streamed to the browser: the JSON record, then the media files.

The archive is written to a sink that is emptied after every chunk, so a large clip goes from the
disk to the socket 64 KiB at a time and is never held in memory, let alone twice. Video is stored
as is (an mp4 does not compress further); the JSON is deflated.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator

from django.core.serializers.json import DjangoJSONEncoder

from monitor.exports import IncidentExport

CHUNK = 64 * 1024


class _Sink(io.RawIOBase):
    """A write-only, unseekable file: zipfile then writes sizes after each member (data descriptors)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._chunks.append(bytes(data))
        return len(data)

    def drain(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def _member(name: str, size: int, *, compress: bool) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    info.file_size = size  # lets zipfile choose zip64 for a file over 2 GiB up front
    return info


def zip_chunks(export: IncidentExport) -> Iterator[bytes]:
    """The archive, chunk by chunk; each media file is opened only when its turn comes."""
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w") as archive:
        record = json.dumps(export.record, indent=2, cls=DjangoJSONEncoder).encode()
        archive.writestr(_member(f"{export.stem}.json", len(record), compress=True), record)
        yield sink.drain()
        for name, field in export.files.items():
            with field.open("rb") as source:
                info = _member(name, field.size, compress=False)
                with archive.open(info, mode="w") as target:
                    while data := source.read(CHUNK):
                        target.write(data)
                        yield sink.drain()
            yield sink.drain()
    yield sink.drain()  # the central directory
