"""Events and incidents from rule hits; the incident lifecycle; pushes only after commit."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.contrib.auth.models import User

from detection.rules import RuleHit
from monitor import services
from monitor.models import AlertRule, AuditLog, Camera, Delivery, Event, Incident, NotificationChannel

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def hit(rule: AlertRule, track: int = 1, start_s: float = 0, seen_s: float = 2, closed: bool = False) -> RuleHit:
    return RuleHit(
        rule_id=rule.pk,
        track_id=track,
        label="person",
        started_at=T0 + timedelta(seconds=start_s),
        last_seen_at=T0 + timedelta(seconds=seen_s),
        score=0.9,
        dwell_s=seen_s - start_s,
        boxes=((0.0, 0.1, 0.2, 0.3, 0.6),),
        closed=closed,
    )


@pytest.fixture
def pushes():
    with mock.patch("monitor.live.publish_now") as publish:
        yield publish


def test_a_hit_opens_an_incident_with_its_event_and_outbox_rows(
    camera: Camera, rule: AlertRule, pushes: mock.Mock, django_capture_on_commit_callbacks
) -> None:
    channel = NotificationChannel.objects.create(site=camera.site, name="Ops", kind="email", target="ops@example.com")
    rule.channels.add(channel)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        opened = services.record_rule_hits(camera.pk, [hit(rule)], poster=b"\xff\xd8jpeg")
        assert not pushes.called  # nothing is pushed before the transaction commits
    for callback in callbacks:
        callback()
    incident = Incident.objects.get(pk=opened[0])
    assert incident.status == Incident.Status.OPEN
    assert incident.track_ids == [1]
    assert incident.poster.name.endswith(".jpg")
    assert incident.explanation["conditions"][2] == {"name": "duration_s", "value": 2.0, "required": ">= 1.0"}
    assert Event.objects.get().incident == incident
    assert Delivery.objects.get().channel == channel
    assert AuditLog.objects.filter(action="incident.opened").count() == 1
    sent = pushes.call_args.args
    assert sent[0] == f"site-{camera.site_id}"
    assert sent[1]["type"] == "incident.opened" and sent[1]["incident_id"] == incident.pk


def test_repeating_the_same_hits_writes_no_duplicates(camera: Camera, rule: AlertRule, pushes: mock.Mock) -> None:
    services.record_rule_hits(camera.pk, [hit(rule, seen_s=2)])
    services.record_rule_hits(camera.pk, [hit(rule, seen_s=2)])
    services.record_rule_hits(camera.pk, [hit(rule, seen_s=6, closed=True)])
    assert Incident.objects.count() == 1
    event = Event.objects.get()
    assert event.segment_end == T0 + timedelta(seconds=6)


def test_an_event_records_the_action_its_hit_was_about(camera: Camera, rule: AlertRule, pushes: mock.Mock) -> None:
    services.record_rule_hits(camera.pk, [dataclasses.replace(hit(rule), action="fighting")])
    assert Event.objects.get().action == "fighting"


def test_hits_within_the_cooldown_grow_one_incident(camera: Camera, rule: AlertRule, pushes: mock.Mock) -> None:
    services.record_rule_hits(camera.pk, [hit(rule, track=1, start_s=0, seen_s=3)])
    services.record_rule_hits(camera.pk, [hit(rule, track=2, start_s=20, seen_s=25)])
    incident = Incident.objects.get()
    assert incident.track_ids == [1, 2]
    assert incident.last_seen_at == T0 + timedelta(seconds=25)
    assert incident.events.count() == 2


def test_a_hit_after_the_cooldown_opens_a_new_incident(camera: Camera, rule: AlertRule, pushes: mock.Mock) -> None:
    services.record_rule_hits(camera.pk, [hit(rule, track=1, start_s=0, seen_s=3)])
    services.record_rule_hits(camera.pk, [hit(rule, track=2, start_s=100, seen_s=102)])
    assert Incident.objects.count() == 2


def test_a_resolved_incident_is_not_grown(camera: Camera, rule: AlertRule, operator: User, pushes: mock.Mock) -> None:
    [first] = services.record_rule_hits(camera.pk, [hit(rule, track=1)])
    services.resolve_incident(first, operator)
    [second] = services.record_rule_hits(camera.pk, [hit(rule, track=2, start_s=5, seen_s=8)])
    assert second != first


def test_hits_of_a_disabled_rule_are_dropped(camera: Camera, rule: AlertRule, pushes: mock.Mock) -> None:
    AlertRule.objects.filter(pk=rule.pk).update(enabled=False)
    assert services.record_rule_hits(camera.pk, [hit(rule)]) == []
    assert not Event.objects.exists()


def test_the_lifecycle_goes_open_acknowledged_resolved_and_is_audited(
    camera: Camera, rule: AlertRule, operator: User, pushes: mock.Mock
) -> None:
    [incident_id] = services.record_rule_hits(camera.pk, [hit(rule)])
    services.acknowledge_incident(incident_id, operator, "on my way")
    incident = services.resolve_incident(incident_id, operator, "gate closed")
    assert incident.status == Incident.Status.RESOLVED
    assert incident.acknowledged_at is not None and incident.resolved_at is not None
    assert [line.split(" UTC] ")[1] for line in incident.notes.splitlines()] == [
        "operator: on my way",
        "operator: gate closed",
    ]
    actions = list(AuditLog.objects.filter(actor=operator).values_list("action", flat=True).order_by("at"))
    assert actions == ["incident.acknowledge", "incident.resolve"]


def test_a_closed_incident_cannot_be_acknowledged(
    camera: Camera, rule: AlertRule, operator: User, pushes: mock.Mock
) -> None:
    [incident_id] = services.record_rule_hits(camera.pk, [hit(rule)])
    services.resolve_incident(incident_id, operator, false_alarm=True)
    with pytest.raises(services.ServiceError, match="cannot acknowledge"):
        services.acknowledge_incident(incident_id, operator)
    assert Incident.objects.get().status == Incident.Status.FALSE_ALARM


def test_a_failed_camera_goes_offline_with_its_reason_and_backs_off(camera: Camera, pushes: mock.Mock) -> None:
    assert services.acquire_camera_lease(camera.pk, "w1")
    delay = services.camera_failed(camera.pk, "w1", "cannot open rtsp://x: Connection refused")
    camera.refresh_from_db()
    assert camera.health_state == "offline"
    assert "Connection refused" in camera.health_reason
    assert camera.lease_owner == "" and camera.next_attempt_at is not None
    assert 1.0 <= delay <= 2.0
    assert services.cameras_due_for_dispatch() == []  # not before its retry time


def test_backoff_grows_and_is_capped() -> None:
    delays = [services.retry_delay_s(n, cap_s=60) for n in range(1, 12)]
    assert delays[0] <= 2 and delays[4] >= 16 and max(delays) <= 60
