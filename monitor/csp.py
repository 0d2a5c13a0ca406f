"""Content-Security-Policy with per-request nonces.

Django 6.0 has this built in (django.middleware.csp), but needs Python 3.12 and Argus runs on 3.11
(the CPU build of torch it pins is a 3.11 wheel). This module mirrors 6.0's interface: the policy is
the SECURE_CSP / SECURE_CSP_REPORT_ONLY dict, templates write `nonce="{{ csp_nonce }}"`, and
CSP.NONCE in a directive becomes that request's nonce. Moving to Django's own is then a change of
the MIDDLEWARE and context processor lines.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

Policy = Mapping[str, Sequence[str] | str | bool]


class CSP:
    """Source expressions, spelled as Django 6.0's django.utils.csp.CSP spells them."""

    SELF = "'self'"
    NONE = "'none'"
    NONCE = "<CSP_NONCE_SENTINEL>"  # replaced by 'nonce-…' when the page used its nonce
    HEADER_ENFORCE = "Content-Security-Policy"
    HEADER_REPORT_ONLY = "Content-Security-Policy-Report-Only"


class LazyNonce:
    """Made on first use, so a response whose page used no nonce sends none."""

    def __init__(self) -> None:
        self._value: str | None = None

    def __str__(self) -> str:
        if self._value is None:
            self._value = secrets.token_urlsafe(18)
        return self._value

    @property
    def used(self) -> bool:
        return self._value is not None


def build_policy(policy: Policy, nonce: LazyNonce) -> str:
    directives = []
    for name, value in policy.items():
        if value is True:  # a directive without sources, e.g. upgrade-insecure-requests
            directives.append(name)
            continue
        if not value:
            continue
        sources = [value] if isinstance(value, str) else list(value)
        sources = [f"'nonce-{nonce}'" if s == CSP.NONCE else s for s in sources if s != CSP.NONCE or nonce.used]
        directives.append(" ".join([name, *sources]))
    return "; ".join(directives)


def _nonce_of(request: HttpRequest) -> LazyNonce:
    nonce = getattr(request, "csp_nonce", None)
    if not isinstance(nonce, LazyNonce):
        nonce = LazyNonce()
        request.csp_nonce = nonce  # type: ignore[attr-defined]
    return nonce


class ContentSecurityPolicyMiddleware:
    """Adds the policy headers; a view that set its own header keeps it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        nonce = _nonce_of(request)
        response = self.get_response(request)
        for header, policy in (
            (CSP.HEADER_ENFORCE, getattr(settings, "SECURE_CSP", {})),
            (CSP.HEADER_REPORT_ONLY, getattr(settings, "SECURE_CSP_REPORT_ONLY", {})),
        ):
            if policy and header not in response:
                response[header] = build_policy(policy, nonce)
        return response


def context_processor(request: HttpRequest) -> dict[str, Any]:
    """`csp_nonce` for templates: `<script nonce="{{ csp_nonce }}">`."""
    return {"csp_nonce": _nonce_of(request)}
