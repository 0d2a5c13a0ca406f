"""Login lockout locks a name, never everyone who shares an address (a proxy, an office NAT)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client

PASSWORD = "pw-for-tests-123"
PROXY = "10.0.0.1"


@pytest.fixture(autouse=True)
def fresh_counters():
    cache.clear()
    yield
    cache.clear()


def log_in(username: str, password: str, forwarded_for: str) -> int:
    client = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded_for)
    return client.post("/login/", {"username": username, "password": password}).status_code


@pytest.mark.parametrize("proxy_hops", [0, 1], ids=["proxy-not-declared", "trusted-proxy"])
def test_one_user_locked_out_leaves_the_other_behind_the_same_address_free(
    operator: User, viewer: User, settings: Any, proxy_hops: int
) -> None:
    settings.ARGUS_TRUSTED_PROXY_HOPS = proxy_hops
    office = "198.51.100.7"  # both people sit behind the same NAT, and the same proxy
    assert [log_in("operator", "guess", office) for _ in range(5)] == [200] * 5
    assert log_in("operator", PASSWORD, office) == 429  # locked, even with the right password
    assert log_in("viewer", PASSWORD, office) == 302  # the colleague still logs in
