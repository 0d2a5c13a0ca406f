"""Login brute-force protection: a name is locked per address, never everyone behind one proxy."""

from __future__ import annotations

import time
import uuid

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client

from monitor.models import AuditLog

PASSWORD = "pw-for-tests-123"


@pytest.fixture(autouse=True)
def fresh_counters():
    cache.clear()
    yield
    cache.clear()


def attempt(username: str, password: str, address: str) -> int:
    response = Client(REMOTE_ADDR=address).post("/login/", {"username": username, "password": password})
    return response.status_code


def test_five_failures_lock_that_name_from_that_address_even_with_the_right_password(operator: User) -> None:
    assert [attempt("operator", "wrong", "10.1.1.1") for _ in range(5)] == [200] * 5
    assert attempt("operator", PASSWORD, "10.1.1.1") == 429
    assert AuditLog.objects.filter(action="login.locked_out").count() == 1


def test_others_behind_the_same_address_and_the_same_user_elsewhere_still_log_in(operator: User, viewer: User) -> None:
    for _ in range(6):
        attempt("operator", "wrong", "10.1.1.1")
    assert attempt("viewer", PASSWORD, "10.1.1.1") == 302
    assert attempt("operator", PASSWORD, "10.2.2.2") == 302


def test_a_success_clears_the_count(operator: User) -> None:
    for _ in range(4):
        attempt("operator", "wrong", "10.1.1.1")
    assert attempt("operator", PASSWORD, "10.1.1.1") == 302
    assert [attempt("operator", "wrong", "10.1.1.1") for _ in range(4)] == [200] * 4


def test_the_lockout_ends_after_its_time(operator: User, settings) -> None:
    settings.ARGUS_LOGIN_LOCKOUT_SECONDS = 1
    name = f"ghost-{uuid.uuid4().hex[:6]}"
    for _ in range(5):
        attempt(name, "wrong", "10.1.1.1")
    assert attempt(name, "wrong", "10.1.1.1") == 429
    time.sleep(1.2)  # the counter's own expiry in Redis, nothing to poll
    assert attempt(name, "wrong", "10.1.1.1") == 200


def test_forwarded_addresses_count_only_behind_a_trusted_proxy(operator: User, settings) -> None:
    def from_proxy(forwarded: str) -> int:
        client = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)
        return client.post("/login/", {"username": "operator", "password": "wrong"}).status_code

    for i in range(6):  # spoofed header, no trusted proxy: all from 10.0.0.1
        status = from_proxy(f"192.0.2.{i}")
    assert status == 429
    settings.ARGUS_TRUSTED_PROXY_HOPS = 1
    assert from_proxy("192.0.2.77") == 200  # now the proxy's client address counts
