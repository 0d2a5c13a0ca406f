"""JSON request bodies, read strictly: what Python's json module accepts but nothing downstream can
use is a 400 here, not a 500 later. That is NaN and Infinity, numbers beyond a float's range (1e999
reads as infinity, which then breaks an id lookup or the JSON of the answer), and nesting deeper
than Python's recursion limit (a 10,000-deep array raises RecursionError, not ValueError)."""

from __future__ import annotations

import codecs
import json
import math
from collections.abc import Mapping
from typing import IO, Any, NoReturn

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:20]} is out of range")
    return value


def loads(data: str | bytes) -> Any:
    """json.loads that raises ValueError for all of the above."""
    try:
        return json.loads(data, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise ValueError("nested too deeply") from None


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser (the API's only one, see REST_FRAMEWORK in settings), reading with `loads`."""

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return loads(codecs.getreader(encoding)(stream).read())
        except ValueError as exc:  # UnicodeDecodeError included
            raise ParseError(f"JSON parse error - {exc}") from exc
