"""Error handlers. 500: 503 with Retry-After while the database cannot be reached, a plain 500
otherwise. 400 (a body over DATA_UPLOAD_MAX_MEMORY_SIZE, a bad Host): JSON for the API.

Django calls it inside the except block of the failed request (any middleware or view), so the
exception is sys.exc_info(). It reads nothing from the database, the session or the user (those
are what failed), renders no template, and its page needs no inline code, so it is valid under
the nonce CSP. Django's own connection handling (CONN_HEALTH_CHECKS, and closing a connection
that raised) reconnects on the first request after the database is back.
"""

from __future__ import annotations

import logging
import sys
import time
from html import escape

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db.utils import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

log = logging.getLogger(__name__)

RETRY_AFTER_S = 15
WARN_EVERY_S = 60.0  # one warning a minute per process while the outage lasts, not one per request
UNAVAILABLE = "The database is unavailable right now; try again in a few seconds."
SERVER_ERROR = "Internal server error."

_last_warning = -WARN_EVERY_S


def _database_errors() -> tuple[type[BaseException], ...]:
    errors: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)
    try:  # psycopg's own, for one raised outside Django's error wrapper
        import psycopg
    except ImportError:
        return errors
    return (*errors, psycopg.OperationalError, psycopg.InterfaceError)


DATABASE_ERRORS = _database_errors()


def database_unavailable(exc: BaseException | None) -> bool:
    """The exception, or one it came from, says the database cannot be reached or used right now."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, DATABASE_ERRORS):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def wants_json(request: HttpRequest) -> bool:
    """The API, a client that prefers JSON, or one that sent JSON (the dashboard's .json endpoints)."""
    if request.path_info.startswith("/api/") or request.content_type == "application/json":
        return True
    return request.get_preferred_type(["text/html", "application/json"]) == "application/json"


def _warn_once(exc: BaseException) -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= WARN_EVERY_S:
        _last_warning = now
        log.warning("database unavailable (%s: %s); answering 503 until it is back", type(exc).__name__, exc)


def _page(title: str, message: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)} · Argus</title></head>"
        f"<body><h1>{escape(title)}</h1><p>{escape(message)}</p></body></html>"
    )


def service_unavailable(request: HttpRequest) -> HttpResponse:
    if wants_json(request):
        response: HttpResponse = JsonResponse({"detail": UNAVAILABLE}, status=503)
    else:
        response = HttpResponse(_page("Temporarily unavailable", UNAVAILABLE), status=503)
    response["Retry-After"] = str(RETRY_AFTER_S)
    response["Cache-Control"] = "no-store"
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500 (monitor/urls.py)."""
    exc = sys.exc_info()[1]
    if exc is not None and database_unavailable(exc):
        _warn_once(exc)
        return service_unavailable(request)
    if wants_json(request):
        return JsonResponse({"detail": SERVER_ERROR}, status=500)
    return defaults.server_error(request)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler400: Django's SuspiciousOperation answers, as JSON where the client reads JSON."""
    if not wants_json(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        limit_kib = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1024
        return JsonResponse({"detail": f"the request body is larger than {limit_kib} KiB"}, status=400)
    return JsonResponse({"detail": "Bad request."}, status=400)
