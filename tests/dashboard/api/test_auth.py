"""Who is calling: a token for integrations, the dashboard's session (with CSRF) for browsers."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.dashboard.api.conftest import Everything


def test_an_integration_reads_and_acts_with_a_token(operator: User, ours: Everything) -> None:
    token = Token.objects.create(user=operator)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert [i["id"] for i in client.get("/api/v1/incidents/").json()["results"]] == [ours.incident.pk]
    # Token calls carry no cookie, so there is nothing for CSRF to protect: no CSRF token needed.
    response = client.post(f"/api/v1/incidents/{ours.incident.pk}/acknowledge/", {}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "acknowledged"


def test_the_management_command_issues_a_token(operator: User) -> None:
    call_command("drf_create_token", "operator")
    assert Token.objects.filter(user=operator).exists()


def test_a_wrong_token_is_401(ours: Everything) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get("/api/v1/incidents/").status_code == 401


def test_an_anonymous_call_is_401_and_says_how_to_authenticate(ours: Everything) -> None:
    response = APIClient().get("/api/v1/incidents/")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    assert "North" not in response.content.decode()


def test_a_session_needs_the_csrf_token_to_change_anything(operator: User, ours: Everything) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(operator)
    assert browser.get("/api/v1/incidents/").status_code == 200  # reads need no CSRF token
    url = f"/api/v1/incidents/{ours.incident.pk}/acknowledge/"
    refused = browser.post(url, {}, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    ours.incident.refresh_from_db()
    assert ours.incident.status == "open"
    browser.get("/login/")  # the dashboard's pages set the CSRF cookie
    csrf = browser.cookies["csrftoken"].value
    accepted = browser.post(url, {}, content_type="application/json", HTTP_X_CSRFTOKEN=csrf)
    assert accepted.status_code == 200
