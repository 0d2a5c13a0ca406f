"""Security headers and cookie flags on real responses, with the settings production computes."""

from __future__ import annotations

from http.cookies import Morsel
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.security.conftest import HOST

PASSWORD = "pw-for-tests-123"


def https_client() -> Client:
    return Client(HTTP_HOST=HOST)


def csp_directives(header: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in header.split(";") if d.strip()}


@pytest.mark.parametrize("path", ["/login/", "/api/v1/schema/", "/static/dashboard/style.css", "/no-such-page/"])
def test_every_response_carries_the_browser_protections(production: Any, db: None, path: str) -> None:
    response = https_client().get(path, secure=True)
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    csp = csp_directives(response["Content-Security-Policy"])
    assert csp["frame-ancestors"] == ["'none'"] and csp["object-src"] == ["'none'"]


@pytest.mark.parametrize("path", ["/login/", "/api/v1/schema/", "/no-such-page/"])
def test_pages_also_say_no_framing_to_browsers_without_csp(production: Any, db: None, path: str) -> None:
    assert https_client().get(path, secure=True)["X-Frame-Options"] == "DENY"


def test_the_policy_allows_only_our_own_scripts_and_no_eval_or_inline_code(production: Any, db: None) -> None:
    header = https_client().get("/login/", secure=True)["Content-Security-Policy"]
    csp = csp_directives(header)
    assert csp["default-src"] == ["'self'"] and csp["script-src"] == ["'self'"]  # the login page uses no nonce
    assert csp["connect-src"] == ["'self'"]  # fetch and the site's own ws:/wss:
    assert "unsafe-inline" not in header and "unsafe-eval" not in header and "*" not in header


def test_plain_http_is_redirected_to_https(production: Any, db: None) -> None:
    response = https_client().get("/login/?next=/")
    assert response.status_code == 301 and response["Location"] == f"https://{HOST}/login/?next=/"


def test_behind_a_tls_proxy_its_forwarded_proto_counts_and_nothing_else(production: Any, db: None) -> None:
    production.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")  # ARGUS_TLS_PROXY=1
    assert https_client().get("/login/", HTTP_X_FORWARDED_PROTO="https").status_code == 200
    assert https_client().get("/login/", HTTP_X_FORWARDED_PROTO="http").status_code == 301


def flags(cookie: Morsel[str]) -> dict[str, Any]:
    return {"secure": bool(cookie["secure"]), "httponly": bool(cookie["httponly"]), "samesite": cookie["samesite"]}


def test_the_session_and_csrf_cookies_are_https_only_hidden_from_scripts_and_same_site(
    production: Any, operator: User
) -> None:
    client = Client(HTTP_HOST=HOST, enforce_csrf_checks=True)
    page = client.get("/login/", secure=True)
    assert flags(page.cookies["csrftoken"]) == {"secure": True, "httponly": True, "samesite": "Lax"}
    token = page.context["csrf_token"]
    login = client.post(
        "/login/",
        {"username": "operator", "password": PASSWORD, "csrfmiddlewaretoken": str(token)},
        secure=True,
        HTTP_REFERER=f"https://{HOST}/login/",
    )
    assert login.status_code == 302, login.content[:500]
    assert flags(login.cookies["sessionid"]) == {"secure": True, "httponly": True, "samesite": "Lax"}


def test_the_admin_is_framed_by_no_one_either(production: Any, admin_user: User) -> None:
    client = https_client()
    client.force_login(admin_user)
    response = client.get("/admin/", secure=True)
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
