"""Incidents through the API: lifecycle via the services (audit entries, live pushes), filters,
cursor pagination, and false alarms kept as training feedback."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User

from monitor.models import AuditLog, Event, Incident
from tests.dashboard.api.conftest import AT, Everything, api_as


def act(user: User, incident: Incident, verb: str, body: dict[str, Any] | None = None) -> Any:
    return api_as(user).post(f"/api/v1/incidents/{incident.pk}/{verb}/", body or {}, format="json")


def test_an_operator_walks_an_incident_from_open_to_resolved_with_an_audit_trail(
    operator: User, ours: Everything
) -> None:
    acked = act(operator, ours.incident, "acknowledge", {"note": "on my way"})
    assert acked.status_code == 200 and acked.json()["status"] == "acknowledged"
    assert acked.json()["acknowledged_at"] is not None
    resolved = act(operator, ours.incident, "resolve", {"note": "gate closed"}).json()
    assert resolved["status"] == "resolved" and resolved["resolved_at"] is not None
    assert resolved["notes"].splitlines()[0].endswith("] operator: on my way")
    assert resolved["notes"].splitlines()[1].endswith("] operator: gate closed")
    history = api_as(operator).get(f"/api/v1/incidents/{ours.incident.pk}/history/").json()
    assert [(h["action"], h["actor"]) for h in history] == [
        ("incident.acknowledge", "operator"),
        ("incident.resolve", "operator"),
    ]


def test_a_transition_the_state_forbids_is_a_409_that_says_why(operator: User, ours: Everything) -> None:
    act(operator, ours.incident, "resolve")
    response = act(operator, ours.incident, "acknowledge")
    assert response.status_code == 409
    assert response.json() == {"detail": "cannot acknowledge an incident that is Resolved"}
    assert act(operator, ours.incident, "false-alarm").status_code == 409


def test_an_incident_is_assigned_to_an_operator_and_unassigned(owner: User, operator: User, ours: Everything) -> None:
    assigned = act(owner, ours.incident, "assign", {"assignee": operator.pk})
    assert assigned.status_code == 200
    assert (assigned.json()["assignee"], assigned.json()["assignee_username"]) == (operator.pk, "operator")
    assert act(owner, ours.incident, "assign", {"assignee": None}).json()["assignee"] is None
    details = [e.details for e in AuditLog.objects.filter(action="incident.assign").order_by("pk")]
    assert details == [
        {"assignee": operator.pk, "username": "operator", "previous": None},
        {"assignee": None, "username": None, "previous": operator.pk},
    ]


@pytest.mark.parametrize("who", ["viewer", "outsider", "nobody"])
def test_only_an_operator_or_admin_of_the_site_can_be_assigned(
    who: str, operator: User, viewer: User, outsider: User, ours: Everything
) -> None:
    assignee = {"viewer": viewer.pk, "outsider": outsider.pk, "nobody": 999_999}[who]
    response = act(operator, ours.incident, "assign", {"assignee": assignee})
    assert response.status_code == 400
    # The same words whether the user exists or not: user ids leak nothing.
    assert response.json() == {"assignee": [f"user {assignee} is not an operator or admin of this site"]}
    ours.incident.refresh_from_db()
    assert ours.incident.assignee is None


def test_notes_are_appended_with_author_and_time_even_after_resolution(operator: User, ours: Everything) -> None:
    act(operator, ours.incident, "resolve")
    first = act(operator, ours.incident, "notes", {"text": "guard confirmed"})
    second = act(operator, ours.incident, "notes", {"text": "  camera 2 also saw it "})
    assert first.status_code == second.status_code == 200
    lines = second.json()["notes"].splitlines()
    assert len(lines) == 2 and lines[0].startswith("[20") and " UTC] operator: guard confirmed" in lines[0]
    assert lines[1].endswith("operator: camera 2 also saw it")
    notes = AuditLog.objects.filter(action="incident.note").order_by("pk")
    assert [(n.actor, n.details["note"]) for n in notes] == [
        (operator, "guard confirmed"),
        (operator, "camera 2 also saw it"),
    ]


def test_an_empty_note_is_refused(operator: User, ours: Everything) -> None:
    assert act(operator, ours.incident, "notes", {"text": "   "}).status_code == 400
    assert not AuditLog.objects.filter(action="incident.note").exists()


def test_a_false_alarm_keeps_its_events_and_lists_them_as_feedback(operator: User, ours: Everything) -> None:
    assert api_as(operator).get("/api/v1/feedback/false-alarms/").json()["results"] == []
    assert act(operator, ours.incident, "false-alarm", {"note": "a shadow"}).json()["status"] == "false_alarm"
    assert Event.objects.filter(incident=ours.incident).count() == 1
    feedback = api_as(operator).get("/api/v1/feedback/false-alarms/").json()["results"]
    assert [(f["id"], f["incident_status"], f["boxes"]) for f in feedback] == [
        (ours.event.pk, "false_alarm", [[0.0, 0.1, 0.1, 0.3, 0.6]])
    ]
    same = api_as(operator).get("/api/v1/events/?incident_status=false_alarm").json()["results"]
    assert [e["id"] for e in same] == [ours.event.pk]


def _incident(e: Everything, minutes: int, **fields: Any) -> Incident:
    at = AT + timedelta(minutes=minutes)
    fields = {"rule": e.rule, **fields}
    return Incident.objects.create(
        site=e.site, camera=e.camera, title=f"at {minutes}", started_at=at, last_seen_at=at, **fields
    )


def ids(user: User, query: str) -> list[int]:
    response = api_as(user).get(f"/api/v1/incidents/?{query}")
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


def test_incidents_filter_by_status_severity_kind_camera_rule_and_time(viewer: User, ours: Everything) -> None:
    high = _incident(ours, 10, severity="high", status="acknowledged")
    offline = _incident(ours, 20, kind="camera_offline", rule=None)
    base = ours.incident.pk
    assert ids(viewer, "status=open") == [offline.pk, base]
    assert ids(viewer, "status=open&status=acknowledged") == [offline.pk, high.pk, base]
    assert ids(viewer, "severity=high") == [high.pk]
    assert ids(viewer, "kind=camera_offline") == [offline.pk]
    assert ids(viewer, f"rule={ours.rule.pk}") == [high.pk, base]
    assert ids(viewer, f"camera={ours.camera.pk}&site={ours.site.pk}") == [offline.pk, high.pk, base]
    after = (AT + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    before = (AT + timedelta(minutes=15)).isoformat().replace("+00:00", "Z")
    assert ids(viewer, f"started_after={after}&started_before={before}") == [high.pk]


def test_a_bad_filter_value_is_a_400(viewer: User, ours: Everything) -> None:
    response = api_as(viewer).get("/api/v1/incidents/?status=sleeping")
    assert response.status_code == 400 and "status" in response.json()


def test_incident_pages_follow_the_cursor_newest_first_without_gaps_or_repeats(viewer: User, ours: Everything) -> None:
    made = [_incident(ours, minutes) for minutes in range(1, 8)]
    _incident(ours, 3)  # same start time as another: the id breaks the tie
    expected = list(Incident.objects.order_by("-started_at", "-id").values_list("pk", flat=True))
    seen: list[int] = []
    url: str | None = "/api/v1/incidents/?page_size=3"
    pages = 0
    while url:
        page = api_as(viewer).get(url).json()
        assert "count" not in page  # no COUNT(*) over a large table
        seen += [row["id"] for row in page["results"]]
        url, pages = page["next"], pages + 1
    assert seen == expected and pages == 3 and len(made) + 2 == len(seen)


def test_the_live_push_follows_an_action_after_commit(
    operator: User, ours: Everything, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    pushed: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr("monitor.live.publish_now", lambda group, event: pushed.append((group, event)))
    with django_capture_on_commit_callbacks(execute=True):
        act(operator, ours.incident, "notes", {"text": "seen"})
    assert [(g, e["type"], e["incident_id"]) for g, e in pushed] == [
        (f"site-{ours.site.pk}", "incident.updated", ours.incident.pk)
    ]
