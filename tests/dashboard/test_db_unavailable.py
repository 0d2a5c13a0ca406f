"""While the database cannot be reached, pages and the API answer 503 with Retry-After (HTML for
browsers, JSON for the API), never a traceback; other errors stay a plain 500; the first request
after the database is back is served normally."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any
from unittest import mock

import psycopg
import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.db import connections
from django.db.utils import InterfaceError, OperationalError
from django.test import Client

from dashboard import errors
from monitor.models import Site

DOWN = OperationalError("connection to server at 127.0.0.1, port 5432 failed: Connection refused")


@pytest.fixture
def signed_in(owner: User) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(owner)
    return client


@pytest.fixture(autouse=True)
def fresh_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(errors, "_last_warning", -math.inf)


@pytest.fixture
def database_down() -> Iterator[None]:
    """Every request fails where it first needs the database: loading the session."""
    with mock.patch.object(SessionStore, "load", side_effect=DOWN):
        yield


def assert_unavailable(response: Any) -> None:
    assert response.status_code == 503
    assert response["Retry-After"] == "15"
    assert response["Cache-Control"] == "no-store"
    assert b"Traceback" not in response.content and b"5432" not in response.content


def test_a_page_answers_503_with_retry_after_and_a_small_html_page(
    signed_in: Client, site: Site, database_down: None
) -> None:
    response = signed_in.get(f"/sites/{site.pk}/")
    assert_unavailable(response)
    assert response["Content-Type"].startswith("text/html")
    assert b"<h1>Temporarily unavailable</h1>" in response.content
    # No inline code, so the nonce CSP needs no nonce for it.
    assert b"<script" not in response.content and b"<style" not in response.content
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("path", "headers"),
    [("/api/v1/sites/", {}), ("/sites/{site}/state.json", {"Accept": "application/json"})],
    ids=["api path", "accepts json"],
)
def test_the_api_and_json_clients_get_a_json_detail(
    signed_in: Client, site: Site, database_down: None, path: str, headers: dict[str, str]
) -> None:
    response = signed_in.get(path.format(site=site.pk), headers=headers)
    assert_unavailable(response)
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": errors.UNAVAILABLE}


@pytest.mark.parametrize(
    "error",
    [
        InterfaceError("connection already closed"),
        psycopg.OperationalError("server closed the connection unexpectedly"),
        psycopg.OperationalError("consuming input failed"),  # wrapped below, as Django wraps it
    ],
    ids=["django interface error", "psycopg's own", "psycopg wrapped by django"],
)
def test_psycopg_s_connection_errors_count_as_the_database_being_down(
    signed_in: Client, site: Site, error: Exception
) -> None:
    raised: Exception = error
    if "consuming" in str(error):
        raised = OperationalError(str(error))
        raised.__cause__ = error
    with mock.patch("dashboard.views.require_site", side_effect=raised):
        response = signed_in.get(f"/sites/{site.pk}/")
    assert_unavailable(response)


def test_any_other_error_is_a_plain_500_without_traceback(signed_in: Client, site: Site) -> None:
    with mock.patch("dashboard.views.require_site", side_effect=RuntimeError("secret internals")):
        page = signed_in.get(f"/sites/{site.pk}/")
        api = signed_in.get(f"/sites/{site.pk}/state.json", headers={"Accept": "application/json"})
    assert page.status_code == 500 and not page.has_header("Retry-After")
    assert b"Traceback" not in page.content and b"secret internals" not in page.content
    assert api.status_code == 500 and api.json() == {"detail": errors.SERVER_ERROR}


def test_the_outage_is_logged_once_at_warning_not_per_request(
    signed_in: Client, site: Site, database_down: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="dashboard.errors"):
        for _ in range(3):
            assert signed_in.get(f"/sites/{site.pk}/").status_code == 503
    warnings = [r for r in caplog.records if r.name == "dashboard.errors"]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert "database unavailable" in warnings[0].getMessage()


def test_persistent_connections_are_health_checked_before_reuse(settings: Any) -> None:
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True


@pytest.mark.django_db(transaction=True)
def test_a_real_connection_failure_is_a_503_and_the_next_request_after_it_reconnects(
    signed_in: Client, site: Site
) -> None:
    database = connections["default"]
    refused = database.Database.OperationalError("connection refused")  # sqlite3's or psycopg's
    database.close()
    with mock.patch.object(type(database), "get_new_connection", side_effect=refused):
        down = signed_in.get(f"/sites/{site.pk}/")
    assert_unavailable(down)
    assert signed_in.get(f"/sites/{site.pk}/").status_code == 200, "the database is back: so is the page"
