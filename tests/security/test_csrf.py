"""Every URL that could change state refuses a signed-in browser's request without a CSRF token.

The URL list comes from the resolver, so a view added later is walked too, and a csrf_exempt one
fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404
from django.utils.regex_helper import normalize

from monitor.models import Membership, Role, Site

# Values tried for each URL parameter until the URL resolves back to its own pattern.
SAMPLES = ("1", "monitor", "camera", "acknowledge", "x")
UNSAFE = ("post", "put", "patch", "delete")


def patterns(resolver: URLResolver, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in resolver.url_patterns:
        regex = prefix + entry.pattern.regex.pattern.lstrip("^").rstrip("$").replace(r"\Z", "")
        if isinstance(entry, URLResolver):
            yield from patterns(entry, regex)
        else:
            yield regex, entry


def example_path(regex: str, pattern: URLPattern) -> str | None:
    """A path that resolves to this very pattern, its parameters filled in from SAMPLES."""
    for template, params in normalize(regex):
        for sample in SAMPLES:
            path = "/" + template % dict.fromkeys(params, sample)
            try:
                match = resolve(path)
            except Resolver404:
                continue
            if match.func is pattern.callback or getattr(match.func, "cls", None) is getattr(
                pattern.callback, "cls", object()
            ):
                return path
    return None


def every_url() -> list[str]:
    found = {example_path(regex, pattern) for regex, pattern in patterns(get_resolver())}
    return sorted(p for p in found if p is not None)


@pytest.fixture
def browser(db: None) -> Client:
    """A signed-in superuser (the admin's URLs too) who administers a site, with a session cookie."""
    user = User.objects.create_superuser("root", "root@example.com", "pw-for-tests-123")
    Membership.objects.create(user=user, site=Site.objects.create(name="North gate"), role=Role.ADMIN)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def test_the_walk_reaches_every_kind_of_form_and_api_write(db: None) -> None:
    names = {resolve(url).view_name for url in every_url()}
    for expected in (
        "login",
        "logout",
        "dashboard:site-settings",
        "dashboard:incident-action",
        "dashboard:rule-preview",
        "api:camera-list",
        "api:incident-acknowledge",
        "admin:auth_user_change",
    ):
        assert expected in names
    assert len(names) > 60


def refused_for_csrf(client: Client, method: str, url: str, response: Any) -> bool:
    if response.status_code != 403:
        return False
    if b"CSRF" in response.content:
        return True
    # A page that renders its own 403 (Swagger UI): refused for CSRF if the token changes the answer.
    token = client.get("/login/").cookies["csrftoken"].value
    with_token = getattr(client, method)(url, data={}, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    return bool(with_token.status_code != 403)


def test_no_url_accepts_a_write_without_a_csrf_token(browser: Client) -> None:
    accepted: list[str] = []
    for url in every_url():
        for method in UNSAFE:
            response: Any = getattr(browser, method)(url, data={}, content_type="application/json")
            if not refused_for_csrf(browser, method, url, response):
                accepted.append(f"{method.upper()} {url} -> {response.status_code}")
    assert accepted == []


def test_the_same_write_with_its_token_gets_through(browser: Client) -> None:
    """The refusals above are the CSRF check's, not a broken URL's."""
    token = browser.get("/login/").cookies["csrftoken"].value
    response = browser.post("/incidents/999/acknowledge/", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 404  # past the CSRF check, to the view: no such incident
