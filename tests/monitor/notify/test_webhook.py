"""Webhooks against a real receiver on loopback: signatures, retries, timeouts, 410, Retry-After, redirects."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from email.utils import format_datetime

import pytest
from standardwebhooks.webhooks import Webhook

from monitor.models import AlertRule, AuditLog, Camera, Delivery
from monitor.notify import relay
from monitor.notify.webhook import retry_after_seconds
from tests.monitor.notify.conftest import T0, Answer, WebhookReceiver, make_incident, outbox, webhook_channel


def deliver_at(delivery: Delivery, now=None) -> Delivery:
    relay.run_once(now=now or delivery.next_attempt_at)
    delivery.refresh_from_db()
    return delivery


@pytest.fixture
def delivery(camera: Camera, rule: AlertRule, receiver: WebhookReceiver) -> Delivery:
    return outbox(make_incident(camera, rule), webhook_channel(camera, receiver.url, secrets=2))


def test_a_webhook_carries_the_documented_payload_signed_with_every_secret(
    delivery: Delivery, receiver: WebhookReceiver
) -> None:
    assert deliver_at(delivery).status == Delivery.Status.DELIVERED
    (request,) = receiver.received
    assert request.headers["webhook-id"] == f"msg_{delivery.uuid.hex}"
    # Rotation: each secret signs; a receiver holding either one verifies with the reference library.
    for secret in delivery.channel.secrets:
        Webhook(secret).verify(request.body, request.headers)
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    payload = json.loads(request.body)
    assert payload["type"] == "incident.opened"
    data = payload["data"]
    assert data["id"] == delivery.incident_id and data["severity"] == "medium" and data["test"] is False
    assert data["camera"] == {"id": delivery.incident.camera_id, "name": "Gate cam"}
    assert data["site"]["timezone"] == "Europe/Paris"
    assert data["rule"]["name"] == "Person at the gate"
    assert data["explanation"]["conditions"][0]["name"] == "duration_s"
    assert data["links"]["incident"] == f"http://127.0.0.1:8000/incidents/{delivery.incident_id}/"


def test_a_signature_made_with_another_secret_does_not_verify(delivery: Delivery, receiver: WebhookReceiver) -> None:
    deliver_at(delivery)
    from standardwebhooks.webhooks import WebhookVerificationError

    from monitor.notify.signing import generate_secret

    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(receiver.received[0].body, receiver.received[0].headers)


def test_it_retries_a_webhook_after_500s_then_delivers_it_with_the_same_id(
    delivery: Delivery, receiver: WebhookReceiver
) -> None:
    receiver.script = [Answer(500), Answer(502)]
    at = delivery.next_attempt_at
    first = deliver_at(delivery)
    assert (first.status, first.attempts, first.last_error) == (Delivery.Status.FAILED, 1, "HTTP 500: ok")
    assert first.next_attempt_at > at and first.last_latency_ms is not None
    assert deliver_at(delivery).status == Delivery.Status.FAILED
    done = deliver_at(delivery)
    assert (done.status, done.attempts, done.last_error) == (Delivery.Status.DELIVERED, 3, "")
    assert {r.headers["webhook-id"] for r in receiver.received} == {delivery.message_id}
    assert len(receiver.received) == 3


def test_a_receiver_that_hangs_times_out_and_is_retried(
    delivery: Delivery, receiver: WebhookReceiver, settings
) -> None:
    settings.ARGUS_WEBHOOK_READ_TIMEOUT_SECONDS = 0.5
    receiver.script = [Answer(200, delay_s=3)]
    started = time.monotonic()
    result = deliver_at(delivery)
    assert time.monotonic() - started < 2.5
    assert result.status == Delivery.Status.FAILED and "timed out" in result.last_error
    assert deliver_at(delivery).status == Delivery.Status.DELIVERED


def test_a_410_disables_the_channel_and_dead_letters_its_deliveries(
    delivery: Delivery, receiver: WebhookReceiver, camera: Camera, rule: AlertRule
) -> None:
    later = outbox(make_incident(camera, rule, n=1), delivery.channel)
    receiver.default = Answer(410)
    relay.run_once(now=later.next_attempt_at)
    delivery.refresh_from_db(), later.refresh_from_db(), delivery.channel.refresh_from_db()
    assert delivery.channel.enabled is False
    assert {delivery.status, later.status} == {Delivery.Status.DEAD}
    assert len(receiver.received) == 1  # the second row was not sent to a retired endpoint
    assert delivery.last_error == "HTTP 410: ok (the receiver retired this endpoint; channel disabled)"
    assert later.last_error == "the channel is disabled"
    audit = AuditLog.objects.get(action="channel.disabled")
    assert audit.target_id == str(delivery.channel_id) and "410" in audit.details["reason"]


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_in_seconds_sets_the_next_attempt(
    delivery: Delivery, receiver: WebhookReceiver, status: int
) -> None:
    receiver.script = [Answer(status, {"Retry-After": "120"})]
    at = delivery.next_attempt_at
    result = deliver_at(delivery)
    assert result.status == Delivery.Status.FAILED
    assert result.next_attempt_at == at + timedelta(seconds=120)


def test_retry_after_as_an_http_date_is_honoured() -> None:
    now = T0
    assert retry_after_seconds(format_datetime(now + timedelta(minutes=10), usegmt=True), now) == 600
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now) == 0  # in the past: now
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds("99999999", now) == 24 * 3600  # capped


def test_a_redirect_is_not_followed_and_counts_as_a_failure(delivery: Delivery, receiver: WebhookReceiver) -> None:
    with WebhookReceiver() as elsewhere:
        receiver.script = [Answer(307, {"Location": elsewhere.url})]
        result = deliver_at(delivery)
        assert elsewhere.connections == 0
    assert result.status == Delivery.Status.FAILED
    assert result.last_error == f"HTTP 307 redirect to {elsewhere.url} not followed"


@pytest.mark.parametrize("status", [400, 401, 404, 413])
def test_other_4xx_answers_are_permanent(delivery: Delivery, receiver: WebhookReceiver, status: int) -> None:
    receiver.script = [Answer(status)]
    result = deliver_at(delivery)
    assert (result.status, result.attempts) == (Delivery.Status.DEAD, 1)
    assert result.last_error.startswith(f"HTTP {status}")


def test_a_failing_webhook_backs_off_exponentially_for_a_day_then_is_dead_lettered(
    delivery: Delivery, receiver: WebhookReceiver
) -> None:
    receiver.default = Answer(500)
    start = now = delivery.next_attempt_at
    gaps = []
    while delivery.status != Delivery.Status.DEAD:
        delivery = deliver_at(delivery, now)
        gaps.append((delivery.next_attempt_at - now).total_seconds())
        now = delivery.next_attempt_at
    assert 15 <= delivery.attempts <= 30, delivery.attempts
    assert delivery.last_error.startswith(f"gave up after {delivery.attempts} attempts: HTTP 500")
    assert 15 <= gaps[0] <= 30 and 30 <= gaps[1] <= 60  # 30 s base, doubling, jittered in [d/2, d]
    assert max(gaps[:-1]) <= 7200  # capped at 2 h
    # Judged by the last attempt: a dead row keeps the claim's lease time as next_attempt_at.
    assert delivery.last_attempt_at is not None
    assert timedelta(hours=20) < delivery.last_attempt_at - start <= timedelta(hours=24)
    assert len(receiver.received) == delivery.attempts
