"""The API against its own OpenAPI schema: schemathesis sends generated valid and invalid requests
to every operation, as a site admin with an API token, and no answer may be a server error.
Malformed JSON to every operation that takes a body is a 400."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token

from tests.dashboard.api.conftest import Everything, make_everything

# Examples per operation and generation mode. The default run sends the same requests every time
# (CI stays deterministic); ARGUS_FUZZ_EXAMPLES=200 hunts longer, with fresh random requests.
HUNT = os.environ.get("ARGUS_FUZZ_EXAMPLES")
EXAMPLES = int(HUNT or "20")
TIME_BUDGET_S = 90.0


@pytest.fixture
def north(site: Any) -> Everything:
    return make_everything(site, "North", "rtsp://cam:pw@10.0.0.5/stream", "whsec_" + "A" * 43)


@pytest.fixture
def token(owner: User, settings: Any) -> str:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return Token.objects.create(user=owner).key


@pytest.fixture
def schema(transactional_db: None) -> Iterator[Any]:
    """Schemathesis calls the WSGI app in this thread. Each request commits on its own (a transactional
    test): on Postgres a failed statement would otherwise abort the test-wide transaction and turn
    every later request into a 500. As Django's
    test client does, keep the start and end of each request from closing that connection."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/v1/schema/", get_wsgi_application())
    finally:
        for signal in (request_started, request_finished):
            signal.connect(close_old_connections)


def operations(schema: Any) -> Iterator[Any]:
    for result in schema.get_all_operations():
        yield result.ok()


def real_ids(everything: Everything) -> dict[str, int]:
    """Path ids that exist, by the path's first segment, so writes reach the serializers too."""
    e = everything
    return {
        "sites": e.site.pk,
        "cameras": e.camera.pk,
        "zones": e.zone.pk,
        "rules": e.rule.pk,
        "channels": e.channel.pk,
        "incidents": e.incident.pk,
        "events": e.event.pk,
        "deliveries": e.delivery.pk,
    }


def fuzz(operation: Any, headers: dict[str, str], ids: dict[str, int]) -> None:
    modes = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
    resource = operation.path.removeprefix("/api/v1/").split("/")[0]

    @given(case=st.one_of(*(operation.as_strategy(mode) for mode in modes)), use_real_id=st.booleans())
    @hypothesis_settings(
        max_examples=EXAMPLES * len(modes),
        deadline=None,
        database=None,
        derandomize=not HUNT,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any, use_real_id: bool) -> None:
        if use_real_id and case.path_parameters and "id" in case.path_parameters and resource in ids:
            case.path_parameters["id"] = ids[resource]
        response = case.call(headers=headers)
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} {case.query} body={case.body!r} -> "
            f"{response.status_code}: {response.text[:300]}"
        )

    run()


def test_no_generated_request_gets_a_server_error(schema: Any, north: Everything, token: str) -> None:
    headers = {"Authorization": f"Token {token}"}
    started, failures, done = time.monotonic(), [], []
    for operation in operations(schema):
        try:
            fuzz(operation, headers, real_ids(north))
        except AssertionError as exc:
            failures.append(str(exc).splitlines()[0])
        done.append(operation.label)
    elapsed = time.monotonic() - started
    print(f"fuzzed {len(done)} operations in {elapsed:.1f} s")
    assert failures == []
    assert len(done) >= 40  # every operation of the schema, not a lucky few
    assert elapsed < TIME_BUDGET_S or HUNT


def test_malformed_json_to_every_operation_with_a_body_is_a_400(schema: Any, north: Everything, token: str) -> None:
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    ids = real_ids(north)
    answers = {}
    for operation in operations(schema):
        if operation.method.upper() not in ("POST", "PUT", "PATCH"):
            continue
        resource = operation.path.removeprefix("/api/v1/").split("/")[0]
        path = operation.path.replace("{id}", str(ids[resource]))
        response = client.generic(operation.method.upper(), path, b'{"name": "unterminated', "application/json")
        answers[f"{operation.method.upper()} {path}"] = response.status_code
    assert len(answers) >= 15
    assert {k: v for k, v in answers.items() if v != 400} == {}


def test_malformed_json_to_the_rule_preview_is_a_400(owner: User, north: Everything) -> None:
    client = Client()
    client.force_login(owner)
    url = f"/cameras/{north.camera.pk}/zones/preview.json"
    for body in (b'{"zone": ', b"[1, 2]", b'"text"', b"\xff\xfe"):
        assert client.post(url, body, content_type="application/json").status_code == 400, body


def test_what_the_fuzzer_found_ids_beyond_64_bits_are_a_400(owner: User, north: Everything, token: str) -> None:
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    too_big = 2**63
    for endpoint in ("rules", "cameras", "zones", "channels", "incidents", "events", "deliveries"):
        assert client.get(f"/api/v1/{endpoint}/", {"site": too_big}).status_code == 400, endpoint
    assign = client.post(f"/api/v1/incidents/{north.incident.pk}/assign/", {"assignee": too_big}, "application/json")
    assert assign.status_code == 400 and "assignee" in assign.json()


def test_what_the_fuzzer_found_on_postgres_time_offsets_beyond_15_hours_are_read_in_utc(
    owner: User, north: Everything, token: str
) -> None:
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    for endpoint in ("incidents", "events"):
        ok = client.get(f"/api/v1/{endpoint}/", {"started_after": "2000-01-01T00:00:00+16:00"})
        assert ok.status_code == 200, endpoint
        edge = client.get(f"/api/v1/{endpoint}/", {"started_before": "9999-12-31T23:59:59-15:00"})
        assert edge.status_code == 400, endpoint
