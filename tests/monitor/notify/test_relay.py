"""The outbox relay's claims: leases, lost claims, SKIP LOCKED; the beat task; "send test"; the delivery log."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse

from monitor import services, tasks
from monitor.models import AlertRule, AuditLog, Camera, Delivery
from monitor.notify import relay, safehttp
from tests.monitor.notify.conftest import Answer, WebhookReceiver, make_incident, outbox, webhook_channel


@pytest.fixture
def delivery(camera: Camera, rule: AlertRule, receiver: WebhookReceiver) -> Delivery:
    return outbox(make_incident(camera, rule), webhook_channel(camera, receiver.url))


def test_a_claimed_row_is_invisible_until_its_lease_lapses_then_sent_again(
    delivery: Delivery, receiver: WebhookReceiver, settings
) -> None:
    now = delivery.next_attempt_at
    crashed = relay.claim_next(now)  # a relay claims the row and dies before sending
    assert crashed is not None and relay.claim_next(now) is None
    lapsed = now + timedelta(seconds=settings.ARGUS_NOTIFY_LEASE_SECONDS + 1)
    retaken = relay.claim_next(lapsed)
    assert retaken is not None and retaken.delivery_id == delivery.pk and retaken.token != crashed.token
    assert relay.deliver(retaken, lapsed) == Delivery.Status.DELIVERED
    assert relay.deliver(crashed, lapsed) == "lost"  # the dead relay's claim no longer counts
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.claim_token) == (Delivery.Status.DELIVERED, 2, "")
    assert len(receiver.received) == 1


def test_a_relay_whose_lease_lapsed_mid_send_does_not_overwrite_the_new_owner(
    delivery: Delivery, receiver: WebhookReceiver, settings
) -> None:
    now = delivery.next_attempt_at
    lapsed = now + timedelta(seconds=settings.ARGUS_NOTIFY_LEASE_SECONDS + 1)
    slow = relay.claim_next(now)
    taken_over: list[relay.Claim | None] = []
    real_post = safehttp.post

    def post_while_another_relay_takes_over(*args, **kwargs):  # the send outlives the lease
        taken_over.append(relay.claim_next(lapsed))
        return real_post(*args, **kwargs)

    receiver.script = [Answer(500)]
    with mock.patch.object(safehttp, "post", side_effect=post_while_another_relay_takes_over):
        assert slow and relay.deliver(slow, now) == "lost"  # its 500 is not recorded over the new claim
    (fast,) = taken_over
    assert fast and relay.deliver(fast, lapsed) == Delivery.Status.DELIVERED
    assert [r.headers["webhook-id"] for r in receiver.received] == [delivery.message_id] * 2


def test_delivered_and_dead_rows_are_never_claimed(delivery: Delivery) -> None:
    for status in (Delivery.Status.DELIVERED, Delivery.Status.DEAD):
        Delivery.objects.filter(pk=delivery.pk).update(status=status)
        assert relay.claim_next(delivery.next_attempt_at + timedelta(days=2)) is None


@pytest.mark.django_db(transaction=True)
def test_concurrent_relays_skip_rows_another_relay_has_locked(camera: Camera, rule: AlertRule) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks need Postgres; SQLite serializes claims with IMMEDIATE transactions instead")
    channel = webhook_channel(camera, "http://127.0.0.1:9/never")
    first, second = (outbox(make_incident(camera, rule, n=n), channel) for n in range(2))
    locked, release = threading.Event(), threading.Event()

    def other_relay_mid_claim() -> None:
        with transaction.atomic():
            Delivery.objects.select_for_update().get(pk=first.pk)
            locked.set()
            release.wait(10)
        connection.close()

    thread = threading.Thread(target=other_relay_mid_claim)
    thread.start()
    try:
        assert locked.wait(10)
        claim = relay.claim_next(second.next_attempt_at)  # would block on the lock without SKIP LOCKED
        assert claim is not None and claim.delivery_id == second.pk
    finally:
        release.set()
        thread.join()


def test_the_beat_task_drains_the_outbox(delivery: Delivery, receiver: WebhookReceiver) -> None:
    assert tasks.relay_notifications() == {"delivered": 1, "retrying": 0, "dead": 0}
    assert len(receiver.received) == 1


def test_send_test_posts_a_synthetic_incident_and_logs_the_result(
    camera: Camera, receiver: WebhookReceiver, owner: User
) -> None:
    channel = webhook_channel(camera, receiver.url)
    result = services.send_test_notification(channel.pk, owner)
    assert result.ok and result.error == ""
    (request,) = receiver.received
    payload = json.loads(request.body)
    assert payload["data"]["test"] is True and payload["data"]["site"]["name"] == camera.site.name
    assert request.headers["webhook-id"] == result.message_id
    entry = AuditLog.objects.get(action="channel.test")
    assert entry.actor == owner and entry.details["ok"] is True and entry.details["latency_ms"] >= 0
    assert not Delivery.objects.exists()


def test_the_admin_send_test_action_reports_a_failure(
    camera: Camera, receiver: WebhookReceiver, admin_client: Client
) -> None:
    receiver.default = Answer(500)
    channel = webhook_channel(camera, receiver.url)
    changelist = reverse("admin:monitor_notificationchannel_changelist")
    response = admin_client.post(changelist, {"action": "send_test", "_selected_action": [channel.pk]}, follow=True)
    assert "failed: HTTP 500" in response.content.decode()
    assert AuditLog.objects.get(action="channel.test").details["error"] == "HTTP 500: ok"


def test_the_delivery_log_lists_attempts_status_error_and_latency(
    delivery: Delivery, receiver: WebhookReceiver, admin_client: Client, viewer: User
) -> None:
    receiver.script = [Answer(503)]
    relay.run_once(now=delivery.next_attempt_at)
    page = admin_client.get(reverse("admin:monitor_delivery_changelist")).content.decode()
    assert "HTTP 503: ok" in page and "Failed, will retry" in page
    client = Client()
    client.force_login(viewer)
    incident_page = client.get(reverse("dashboard:incident", args=[delivery.incident_id])).content.decode()
    assert 'id="deliveries"' in incident_page and "Ops hook (Webhook)" in incident_page
    assert "HTTP 503: ok" in incident_page and " ms</td>" in incident_page
