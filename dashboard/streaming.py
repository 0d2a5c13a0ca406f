"""Response bodies that stream under either server.

Under ASGI (Daphne, as Argus serves), Django reads a synchronous iterator to its end before it sends
a byte (StreamingHttpResponse.__aiter__ calls list() on it), so a clip or an export would sit whole
in memory; under WSGI it is the other way round. `for_server` hands each server the kind it streams.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest


def _next(chunks: Iterator[bytes]) -> bytes | None:
    return next(chunks, None)


async def _each(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    step = sync_to_async(_next, thread_sensitive=False)  # file reads only: no database in the loop
    try:
        while (chunk := await step(chunks)) is not None:
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # a generator's `finally` closes its files when the client goes away


def for_server(request: HttpRequest, chunks: Iterator[bytes]) -> Iterator[bytes] | AsyncIterator[bytes]:
    """The chunks as an async iterator under ASGI, as they are under WSGI."""
    return _each(chunks) if isinstance(request, ASGIRequest) else chunks
