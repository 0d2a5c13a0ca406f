"""Stream URLs: which are supported, and the file behind a file URL. No PyAV here: web processes
(model validation, the API) import this, and they must stay free of heavy imports."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

NETWORK_SCHEMES = frozenset({"rtsp", "rtsps", "http", "https"})
SUPPORTED_SCHEMES = NETWORK_SCHEMES | {"file"}


class UnsupportedSource(ValueError):
    """The URL can never work (bad scheme, empty); fix the camera's settings."""


def check_source_url(url: str) -> str:
    """Return the URL's scheme ('file' for a plain path) or raise UnsupportedSource."""
    url = url.strip()
    if not url:
        raise UnsupportedSource("the stream URL is empty")
    scheme = urlsplit(url).scheme.lower()
    if scheme == "" or (len(scheme) == 1 and url[1:3] in (":\\", ":/")):  # a plain or Windows path
        return "file"
    if scheme not in SUPPORTED_SCHEMES:
        supported = ", ".join(sorted(SUPPORTED_SCHEMES))
        raise UnsupportedSource(f"unsupported URL scheme {scheme!r}; use one of: {supported}, or a file path")
    return scheme


def local_path(url: str) -> Path | None:
    """The file path behind a file URL or plain path, else None."""
    if check_source_url(url) != "file":
        return None
    # File URLs are percent-encoded (Path.as_uri() writes a space as %20); plain paths are not.
    return Path(unquote(urlsplit(url).path)) if url.lower().startswith("file:") else Path(url)
