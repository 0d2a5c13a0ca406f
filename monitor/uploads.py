"""Video files uploaded for analysis: size-limited and type-checked before anything is stored.

Web processes must not import PyAV, so the check reads container signatures; the worker decodes
the file later and marks the camera FAILED, with the reason, if it is not a usable video after all.
"""

from __future__ import annotations

from pathlib import PurePath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.utils.text import get_valid_filename

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts"})


HEAD_BYTES = 400  # enough for three MPEG-TS packets' sync bytes


def _mpeg_ts(head: bytes) -> bool:
    """The sync byte at the start of three packets in a row: 188-byte TS packets, or the 192-byte ones
    of M2TS (.mts: a 4-byte timestamp first). One sync byte alone is what 1 in 256 random files has."""
    return any(
        len(head) > first + 2 * size and all(head[first + n * size] == 0x47 for n in range(3))
        for first, size in ((0, 188), (4, 192))
    )


def _looks_like_video(head: bytes) -> bool:
    return (
        head[4:8] == b"ftyp"  # MP4 / MOV / M4V
        or head[4:8] in (b"moov", b"mdat", b"wide", b"free")  # older QuickTime files
        or head[:4] == b"\x1a\x45\xdf\xa3"  # Matroska / WebM
        or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")
        or _mpeg_ts(head)
    )


def check_video_upload(upload: UploadedFile) -> None:
    limit_mb = settings.ARGUS_MAX_UPLOAD_MB
    if upload.size is not None and upload.size > limit_mb * 1024 * 1024:
        raise ValidationError(f"the file is {upload.size / 2**20:.0f} MB; the limit is {limit_mb} MB")
    suffix = PurePath(upload.name or "").suffix.lower()
    if suffix not in VIDEO_EXTENSIONS:
        raise ValidationError(f"{suffix or 'no extension'} is not a video type; use one of {sorted(VIDEO_EXTENSIONS)}")
    upload.seek(0)
    head = upload.read(HEAD_BYTES)
    upload.seek(0)
    if len(head) < 12 or not _looks_like_video(head):
        raise ValidationError("this file is not a video container Argus can read (MP4, MOV, MKV, WebM, AVI, TS)")


def store_video_upload(upload: UploadedFile, site_id: int) -> str:
    """Save the upload under MEDIA_ROOT/uploads/site-N/ and return its path for Camera.stream_url."""
    name = default_storage.save(f"uploads/site-{site_id}/{get_valid_filename(upload.name or 'video')}", upload)
    return default_storage.path(name)
