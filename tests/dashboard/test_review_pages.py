"""The incident review list, the camera health page, site settings and the incident page's
assign/note forms and timeline: what each shows, who may use it, and that the list stays cheap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from monitor import services
from monitor.models import AlertRule, AuditLog, Camera, Event, Incident, Site, Zone, ZoneKind
from tests.conftest import WHOLE_FRAME

NOON = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def make_incident(camera: Camera, rule: AlertRule | None, at: datetime, **fields: object) -> Incident:
    fields.setdefault("title", f"Incident at {at:%H:%M:%S}")
    return Incident.objects.create(
        site=camera.site, camera=camera, rule=rule, started_at=at, last_seen_at=at + timedelta(seconds=5), **fields
    )


def listed(client: Client, site: Site, **params: object) -> list[int]:
    response = client.get(reverse("dashboard:incidents", args=[site.pk]), params)
    assert response.status_code == 200
    return [i.pk for i in response.context["page"].incidents]


@pytest.fixture
def second_rule(site: Site, camera: Camera) -> AlertRule:
    zone = Zone.objects.create(camera=camera, name="Door", kind=ZoneKind.POLYGON, points=WHOLE_FRAME)
    return AlertRule.objects.create(site=site, zone=zone, name="Loiterer at the door", kind="loitering", dwell_s=30)


def test_the_list_shows_the_sites_incidents_newest_first_with_links_and_badges(
    viewer: User, site: Site, camera: Camera, rule: AlertRule, other_site: Site
) -> None:
    old = make_incident(camera, rule, NOON)
    new = make_incident(camera, rule, NOON + timedelta(minutes=1), status="acknowledged")
    other_camera = Camera.objects.create(site=other_site, name="Elsewhere", stream_url="/x.mp4")
    make_incident(other_camera, None, NOON, title="Not yours")
    client = logged_in(viewer)
    assert listed(client, site) == [new.pk, old.pk]
    page = client.get(reverse("dashboard:incidents", args=[site.pk])).content.decode()
    assert f'href="{new.get_absolute_url()}"' in page and "Not yours" not in page
    assert 'class="badge status-acknowledged"' in page
    assert "13:01:00" in page  # started_at in the site's time zone (Europe/Paris, UTC+1)
    wall = client.get(reverse("dashboard:site", args=[site.pk])).content.decode()
    assert reverse("dashboard:incidents", args=[site.pk]) in wall


def test_the_list_filters_by_status_severity_camera_rule_zone_and_kind(
    viewer: User, site: Site, camera: Camera, rule: AlertRule, second_rule: AlertRule
) -> None:
    open_high = make_incident(camera, rule, NOON, severity="high")
    loiter = make_incident(camera, second_rule, NOON + timedelta(minutes=1), status="resolved")
    other_cam = Camera.objects.create(site=site, name="Yard", stream_url="/y.mp4")
    offline = make_incident(other_cam, None, NOON + timedelta(minutes=2), kind="camera_offline", severity="high")
    client = logged_in(viewer)
    assert listed(client, site, status="active") == [offline.pk, open_high.pk]
    assert listed(client, site, status="resolved") == [loiter.pk]
    assert listed(client, site, severity="high") == [offline.pk, open_high.pk]
    assert listed(client, site, camera=other_cam.pk) == [offline.pk]
    assert listed(client, site, rule=rule.pk) == [open_high.pk]
    assert listed(client, site, zone=second_rule.zone_id) == [loiter.pk]
    assert listed(client, site, kind="loitering") == [loiter.pk]
    assert listed(client, site, kind="camera_offline") == [offline.pk]
    assert listed(client, site, status="active", severity="high", camera=camera.pk) == [open_high.pk]


def test_the_list_filters_by_event_action_text_and_time_in_the_sites_time_zone(
    viewer: User, site: Site, camera: Camera, rule: AlertRule
) -> None:
    morning = make_incident(camera, rule, NOON - timedelta(hours=3), title="Person at the gate")
    noon = make_incident(camera, rule, NOON, title="Van", notes="[x] operator: a DELIVERY van")
    Event.objects.create(
        camera=camera,
        incident=noon,
        track_id="4",
        segment_start=NOON,
        segment_end=NOON,
        actor_class="person",
        action="running",
        score=0.9,
    )
    client = logged_in(viewer)
    assert listed(client, site, q="delivery") == [noon.pk]
    assert listed(client, site, q="gate") == [morning.pk]
    assert listed(client, site, action="running") == [noon.pk]
    # 12:00 UTC is 13:00 in Paris: the form's times are the site's local times.
    assert listed(client, site, since="2026-11-24T13:00") == [noon.pk]
    assert listed(client, site, until="2026-11-24T13:00") == [morning.pk]
    assert listed(client, site, since="2026-11-24T09:00", until="2026-11-24T12:59") == [morning.pk]


def test_a_bad_filter_is_reported_and_ignored(viewer: User, site: Site, camera: Camera, rule: AlertRule) -> None:
    incident = make_incident(camera, rule, NOON)
    response = logged_in(viewer).get(reverse("dashboard:incidents", args=[site.pk]), {"camera": "999", "since": "x"})
    assert [i.pk for i in response.context["page"].incidents] == [incident.pk]
    assert "Select a valid choice" in response.content.decode()


def test_keyset_pages_walk_every_incident_once_across_equal_timestamps_and_back(
    viewer: User, site: Site, camera: Camera, rule: AlertRule
) -> None:
    # 60 incidents, ten per timestamp, so page boundaries fall inside runs of equal started_at.
    made = [make_incident(camera, rule, NOON + timedelta(seconds=n // 10)) for n in range(60)]
    expected = [i.pk for i in sorted(made, key=lambda i: (i.started_at, i.pk), reverse=True)]
    client = logged_in(viewer)
    url = reverse("dashboard:incidents", args=[site.pk])
    seen, pages, params = [], [], {"per": "25"}
    while True:
        page = client.get(url, params).context["page"]
        pages.append(page)
        seen += [i.pk for i in page.incidents]
        if page.older is None:
            break
        params = {"per": "25", "after": page.older}
    assert seen == expected and [len(p.incidents) for p in pages] == [25, 25, 10]
    assert pages[0].newer is None and pages[1].newer and pages[2].newer
    back = client.get(url, {"per": "25", "before": pages[2].newer}).context["page"]
    assert [i.pk for i in back.incidents] == expected[25:50] and back.older and back.newer
    first = client.get(url, {"per": "25", "before": back.newer}).context["page"]
    assert [i.pk for i in first.incidents] == expected[:25] and first.newer is None


def test_exactly_one_full_page_has_no_older_link_and_a_bad_cursor_starts_over(
    viewer: User, site: Site, camera: Camera, rule: AlertRule
) -> None:
    for n in range(25):
        make_incident(camera, rule, NOON + timedelta(seconds=n))
    client = logged_in(viewer)
    url = reverse("dashboard:incidents", args=[site.pk])
    page = client.get(url).context["page"]
    assert len(page.incidents) == 25 and page.older is None and page.newer is None
    assert client.get(url, {"after": "not-a-cursor"}).context["page"].incidents == page.incidents
    html = client.get(url, {"status": "open"}).content.decode()
    assert "after=" not in html and "before=" not in html


def test_paging_links_keep_the_filters(viewer: User, site: Site, camera: Camera, rule: AlertRule) -> None:
    for n in range(30):
        make_incident(camera, rule, NOON + timedelta(seconds=n), severity="high")
    html = logged_in(viewer).get(reverse("dashboard:incidents", args=[site.pk]), {"severity": "high"}).content
    assert b"?severity=high&amp;after=" in html


def test_the_list_costs_the_same_queries_for_any_page_size(
    viewer: User, site: Site, camera: Camera, rule: AlertRule, second_rule: AlertRule
) -> None:
    for n in range(120):
        make_incident(camera, rule if n % 2 else second_rule, NOON + timedelta(seconds=n), assignee=viewer)
    client = logged_in(viewer)
    url = reverse("dashboard:incidents", args=[site.pk])
    counts = []
    for per in ("25", "100"):
        with CaptureQueriesContext(connection) as queries:
            assert len(client.get(url, {"per": per, "status": "open"}).context["page"].incidents) == int(per)
        counts.append(len(queries))
    assert counts[0] == counts[1] <= 10, counts


def test_outsiders_get_404_and_viewers_cannot_edit_settings(
    outsider: User, viewer: User, operator: User, site: Site
) -> None:
    pages = ["dashboard:incidents", "dashboard:cameras", "dashboard:site-settings"]
    for name in pages:
        assert logged_in(outsider).get(reverse(name, args=[site.pk])).status_code == 404, name
    for member in (viewer, operator):
        client = logged_in(member)
        assert client.get(reverse("dashboard:site-settings", args=[site.pk])).status_code == 404
        response = client.post(reverse("dashboard:site-settings", args=[site.pk]), {"retention_days": 1})
        assert response.status_code == 404
        assert "Settings" not in client.get(reverse("dashboard:incidents", args=[site.pk])).content.decode()
    site.refresh_from_db()
    assert site.retention_days == 30


def test_an_admin_changes_the_site_settings_with_an_audit_entry(owner: User, site: Site) -> None:
    client = logged_in(owner)
    url = reverse("dashboard:site-settings", args=[site.pk])
    assert 'value="Europe/Paris" selected' in client.get(url).content.decode()
    data = {"timezone": "America/New_York", "retention_days": "7", "media_budget_mb": "500"}
    response = client.post(url, data, follow=True)
    assert "Settings saved." in response.content.decode()
    site.refresh_from_db()
    assert (site.timezone, site.retention_days, site.media_budget_mb) == ("America/New_York", 7, 500)
    entry = AuditLog.objects.get(action="site.settings")
    assert entry.actor == owner and entry.details["changes"]["retention_days"] == [30, 7]


def test_bad_settings_are_refused_with_the_reason(owner: User, site: Site) -> None:
    client = logged_in(owner)
    url = reverse("dashboard:site-settings", args=[site.pk])
    response = client.post(url, {"timezone": "Mars/Olympus", "retention_days": "0", "media_budget_mb": "1"})
    page = response.content.decode()
    assert response.status_code == 200 and "Select a valid choice" in page and "greater than or equal to 1" in page
    site.refresh_from_db()
    assert site.timezone == "Europe/Paris" and not AuditLog.objects.filter(action="site.settings").exists()


def test_update_site_settings_validates_through_the_model(owner: User, site: Site) -> None:
    with pytest.raises(ValidationError) as caught:
        services.update_site_settings(site.pk, owner, timezone="Nowhere/Land")
    assert "timezone" in caught.value.message_dict
    services.update_site_settings(site.pk, owner, retention_days=30)  # unchanged: no audit entry
    assert not AuditLog.objects.filter(action="site.settings").exists()


def test_an_operator_assigns_and_adds_a_note_from_the_incident_page(
    operator: User, owner: User, viewer: User, camera: Camera, rule: AlertRule
) -> None:
    incident = make_incident(camera, rule, NOON)
    client = logged_in(operator)
    page = client.get(incident.get_absolute_url()).content.decode()
    assert f'<option value="{owner.pk}">owner (Admin)</option>' in page and f'value="{viewer.pk}"' not in page
    client.post(reverse("dashboard:incident-action", args=[incident.pk, "assign"]), {"assignee": owner.pk})
    client.post(reverse("dashboard:incident-action", args=[incident.pk, "note"]), {"note": "called the guard"})
    incident.refresh_from_db()
    assert incident.assignee == owner and incident.notes.endswith("operator: called the guard")
    response = client.post(
        reverse("dashboard:incident-action", args=[incident.pk, "assign"]), {"assignee": viewer.pk}, follow=True
    )
    assert "is not an operator or admin of this site" in response.content.decode()
    client.post(reverse("dashboard:incident-action", args=[incident.pk, "assign"]), {"assignee": ""})
    incident.refresh_from_db()
    assert incident.assignee is None


def test_a_viewer_can_neither_assign_nor_note(viewer: User, operator: User, camera: Camera, rule: AlertRule) -> None:
    incident = make_incident(camera, rule, NOON)
    client = logged_in(viewer)
    assert "assign-form" not in client.get(incident.get_absolute_url()).content.decode()
    for verb, data in (("assign", {"assignee": operator.pk}), ("note", {"note": "hi"})):
        assert client.post(reverse("dashboard:incident-action", args=[incident.pk, verb]), data).status_code == 404
    incident.refresh_from_db()
    assert incident.assignee is None and incident.notes == ""


def test_the_incident_page_shows_a_timeline_relative_to_its_start(
    viewer: User, camera: Camera, rule: AlertRule
) -> None:
    incident = make_incident(camera, rule, NOON)
    for track, start, end in (("1", 0, 4), ("2", 2.5, 5)):
        Event.objects.create(
            camera=camera,
            incident=incident,
            track_id=track,
            actor_class="person",
            action="present",
            score=0.8,
            segment_start=NOON + timedelta(seconds=start),
            segment_end=NOON + timedelta(seconds=end),
        )
    page = logged_in(viewer).get(incident.get_absolute_url()).content.decode()
    assert "Track 1 · present" in page and "0.0 s → 4.0 s" in page and "2.5 s → 5.0 s" in page
    assert '<rect class="tl-bar" x="50.00%" y="1" width="50.00%"' in page


def test_the_camera_health_page_shows_every_camera_in_the_sites_time_zone(
    viewer: User, site: Site, camera: Camera
) -> None:
    camera.health_state, camera.health_reason = "degraded", "1.0 of 2.0 fps arrive"
    camera.last_frame_at, camera.measured_fps, camera.reconnect_count = NOON, 1.04, 3
    camera.lease_owner, camera.lease_expires_at = "worker-7", timezone.now() + timedelta(seconds=30)
    camera.save()
    Camera.objects.create(site=site, name="Yard", stream_url="/y.mp4")
    client = logged_in(viewer)
    page = client.get(reverse("dashboard:cameras", args=[site.pk])).content.decode()
    for text in ("Gate cam", "Yard", "health-degraded", "1.0 of 2.0 fps arrive", "2026-11-24 13:00:00", "worker-7"):
        assert text in page, text
    assert f'data-ws-path="/ws/sites/{site.pk}/"' in page
    state = client.get(reverse("dashboard:site-state", args=[site.pk])).json()
    gate = next(c for c in state["cameras"] if c["camera_id"] == camera.pk)
    assert gate["reconnect_count"] == 3 and gate["lease_owner"] == "worker-7"
