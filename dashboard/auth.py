"""Login with brute-force protection.

Failures are counted per (client address, username), so one person guessing a password locks out
that name from that address only: everyone else behind the same proxy or NAT still logs in, and
the same user can still log in from elsewhere. Counters live in the shared cache (Redis), so every
web process sees them.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from monitor.services import audit


def client_address(request: HttpRequest) -> str:
    """The client's address; X-Forwarded-For is believed only behind a proxy we were told about."""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if settings.ARGUS_TRUSTED_PROXY_HOPS and forwarded:
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if len(hops) >= settings.ARGUS_TRUSTED_PROXY_HOPS:
            return hops[-settings.ARGUS_TRUSTED_PROXY_HOPS]
    return str(request.META.get("REMOTE_ADDR", ""))


def _key(request: HttpRequest, username: str) -> str:
    raw = f"{client_address(request)}|{username.strip().lower()}"
    return "argus:login-failures:" + hashlib.sha256(raw.encode()).hexdigest()


def is_locked_out(request: HttpRequest, username: str) -> bool:
    return int(cache.get(_key(request, username), 0)) >= settings.ARGUS_LOGIN_MAX_FAILURES


def record_failure(request: HttpRequest, username: str) -> int:
    key = _key(request, username)
    cache.add(key, 0, timeout=settings.ARGUS_LOGIN_LOCKOUT_SECONDS)
    failures = cache.incr(key)
    cache.touch(key, settings.ARGUS_LOGIN_LOCKOUT_SECONDS)  # locked until this long after the last failure
    if failures == settings.ARGUS_LOGIN_MAX_FAILURES:
        audit(None, None, "login.locked_out", username[:64], address=client_address(request))
    return int(failures)


class LoginView(auth_views.LoginView):
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        username = str(request.POST.get("username", ""))
        if is_locked_out(request, username):
            form = self.get_form()
            minutes = max(1, settings.ARGUS_LOGIN_LOCKOUT_SECONDS // 60)
            form.add_error(None, f"Too many failed attempts. Try again in {minutes} minutes.")
            return self.render_to_response(self.get_context_data(form=form), status=429)
        response = super().post(request, *args, **kwargs)
        if request.user.is_authenticated:
            cache.delete(_key(request, username))
        else:
            record_failure(request, username)
        return response
