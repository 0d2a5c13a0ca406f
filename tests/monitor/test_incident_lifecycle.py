"""The incident verbs the API added: assignment, notes, and false alarms kept as feedback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User

from monitor import services
from monitor.models import AlertRule, AuditLog, Camera, Event, Incident
from monitor.retention import delete_old_events

AT = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


@pytest.fixture
def incident(camera: Camera, rule: AlertRule) -> Incident:
    incident = Incident.objects.create(
        site=camera.site, camera=camera, rule=rule, title="Person at the gate", started_at=AT, last_seen_at=AT
    )
    Event.objects.create(
        camera=camera,
        rule=rule,
        incident=incident,
        track_id="3",
        segment_start=AT,
        segment_end=AT + timedelta(seconds=2),
        actor_class="person",
        action="present",
        score=0.8,
        boxes=[[0.0, 0.2, 0.2, 0.4, 0.7]],
    )
    return incident


def _pushed(django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch, verb: Any) -> list[str]:
    pushed: list[str] = []
    monkeypatch.setattr("monitor.live.publish_now", lambda group, event: pushed.append(event["type"]))
    with django_capture_on_commit_callbacks(execute=True):
        verb()
    return pushed


def test_assigning_is_audited_and_pushed_after_commit(
    incident: Incident, owner: User, operator: User, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    pushed = _pushed(
        django_capture_on_commit_callbacks,
        monkeypatch,
        lambda: services.assign_incident(incident.pk, owner, operator.pk),
    )
    assert pushed == ["incident.updated"]
    assert Incident.objects.get().assignee == operator
    entry = AuditLog.objects.get(action="incident.assign")
    assert (entry.actor, entry.details["username"]) == (owner, "operator")


def test_assigning_the_same_person_again_changes_nothing(incident: Incident, owner: User) -> None:
    services.assign_incident(incident.pk, owner, owner.pk)
    services.assign_incident(incident.pk, owner, owner.pk)
    assert AuditLog.objects.filter(action="incident.assign").count() == 1


def test_a_viewer_or_an_inactive_operator_cannot_be_assigned(
    incident: Incident, owner: User, viewer: User, operator: User
) -> None:
    with pytest.raises(services.ServiceError, match="not an operator or admin of this site"):
        services.assign_incident(incident.pk, owner, viewer.pk)
    User.objects.filter(pk=operator.pk).update(is_active=False)
    with pytest.raises(services.ServiceError):
        services.assign_incident(incident.pk, owner, operator.pk)
    assert not AuditLog.objects.filter(action="incident.assign").exists()


def test_a_note_is_appended_with_its_author_and_time(
    incident: Incident, operator: User, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    services.add_note(incident.pk, operator, "first")
    pushed = _pushed(
        django_capture_on_commit_callbacks, monkeypatch, lambda: services.add_note(incident.pk, operator, "second")
    )
    assert pushed == ["incident.updated"]
    lines = Incident.objects.get().notes.splitlines()
    assert [line.split(" UTC] ")[1] for line in lines] == ["operator: first", "operator: second"]
    assert AuditLog.objects.filter(action="incident.note", actor=operator).count() == 2


def test_a_blank_note_is_refused(incident: Incident, operator: User) -> None:
    with pytest.raises(services.ServiceError, match="needs some text"):
        services.add_note(incident.pk, operator, "  \n")


def test_a_false_alarm_keeps_its_events_through_retention(incident: Incident, camera: Camera, operator: User) -> None:
    other = Event.objects.create(
        camera=camera,
        track_id="9",
        segment_start=AT,
        segment_end=AT + timedelta(seconds=1),
        actor_class="person",
        action="present",
        score=0.6,
    )
    services.resolve_incident(incident.pk, operator, "a reflection", false_alarm=True)
    assert delete_old_events(camera.site, cutoff=AT + timedelta(days=400)) == 1
    assert list(Event.objects.values_list("incident__status", flat=True)) == ["false_alarm"]
    assert not Event.objects.filter(pk=other.pk).exists()
