"""Front-end libraries that ship inside installed Python packages, served as our own static files.

Plotly's Python package bundles plotly.min.js; this finder offers it as `vendor/plotly.min.js`, so
WhiteNoise serves it and `collectstatic` copies it, with no CDN and nothing fetched at run time, and
the JS always matches the pinned package.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, overload

from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import CheckMessage, Error
from django.core.files.storage import FileSystemStorage

PREFIX = "vendor"
PLOTLY_JS = "plotly.min.js"


def plotly_dir() -> Path:
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data"


class PlotlyStorage(FileSystemStorage):
    prefix = PREFIX  # read by collectstatic and WhiteNoise: the file's URL is static/vendor/plotly.min.js


class VendorFinder(BaseFinder):
    """Finds vendor/plotly.min.js and nothing else of the package (its data sets stay out of static)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.storage = PlotlyStorage(location=str(plotly_dir()))

    def check(self, **kwargs: Any) -> list[CheckMessage]:
        if not (plotly_dir() / PLOTLY_JS).is_file():
            return [Error(f"{PLOTLY_JS} is missing from the plotly package", id="dashboard.E001")]
        return []

    @overload
    def find(self, path: str, find_all: Literal[False] = False) -> str | None: ...
    @overload
    def find(self, path: str, find_all: Literal[True]) -> list[str]: ...
    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> str | list[str] | None:
        found = self.storage.path(PLOTLY_JS) if path == f"{PREFIX}/{PLOTLY_JS}" else None
        if find_all:
            return [found] if found else []
        return found

    def list(self, ignore_patterns: Any) -> Iterator[tuple[str, FileSystemStorage]]:
        yield PLOTLY_JS, self.storage
