"""The CSP middleware: a fresh nonce per response, in the header only when the page used it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.test import RequestFactory

from monitor.csp import ContentSecurityPolicyMiddleware
from tests.security.conftest import production_settings

PAGE = '<script nonce="{{ csp_nonce }}">go()</script><style nonce="{{ csp_nonce }}">p{}</style>'


def render(template: str) -> Any:
    def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse(engines["django"].from_string(template).render(request=request))

    return ContentSecurityPolicyMiddleware(view)(RequestFactory().get("/"))


def directives(response: Any) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in header.split("; ")}


def test_a_page_s_inline_script_and_style_carry_the_nonce_the_header_allows(db: None) -> None:
    response = render(PAGE)
    nonces = set(re.findall(r'nonce="([^"]+)"', response.content.decode()))
    assert len(nonces) == 1
    nonce = nonces.pop()
    assert len(nonce) >= 22  # at least 128 bits
    assert directives(response)["script-src"] == ["'self'", f"'nonce-{nonce}'"]
    assert directives(response)["style-src"] == ["'self'", f"'nonce-{nonce}'"]


def test_every_response_gets_a_new_nonce(db: None) -> None:
    first, second = (directives(render(PAGE))["script-src"][1] for _ in range(2))
    assert first != second


def test_a_page_without_inline_code_allows_none(db: None) -> None:
    response = render("<p>plain</p>")
    assert directives(response)["script-src"] == ["'self'"] and "nonce-" not in response["Content-Security-Policy"]


def test_a_view_that_sets_its_own_policy_keeps_it(db: None) -> None:
    def view(request: HttpRequest) -> HttpResponse:
        response = HttpResponse("embed")
        response["Content-Security-Policy"] = "frame-ancestors 'self'"
        return response

    response = ContentSecurityPolicyMiddleware(view)(RequestFactory().get("/"))
    assert response["Content-Security-Policy"] == "frame-ancestors 'self'"


def test_report_only_mode_reports_the_same_policy_and_enforces_nothing(tmp_path: Path) -> None:
    enforced = production_settings(tmp_path)
    trial = production_settings(tmp_path, ARGUS_CSP_REPORT_ONLY="1")
    assert trial["SECURE_CSP"] == {} and trial["SECURE_CSP_REPORT_ONLY"] == enforced["SECURE_CSP"]
