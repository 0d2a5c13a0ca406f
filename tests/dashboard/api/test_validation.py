"""Writes are validated by the models' own clean(): clear 400s with field messages, and nothing
is saved or moved across sites."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from monitor.models import AuditLog, Camera, Membership, NotificationChannel, Role, Zone
from tests.conftest import WHOLE_FRAME
from tests.dashboard.api.conftest import Everything, api_as


def post(user: User, endpoint: str, body: dict[str, Any]) -> Any:
    return api_as(user).post(f"/api/v1/{endpoint}/", body, format="json")


def test_a_zone_polygon_with_two_points_is_refused_on_its_field(owner: User, ours: Everything) -> None:
    body = {"camera": ours.camera.pk, "name": "Thin", "kind": "polygon", "points": [[0, 0], [1, 1]]}
    response = post(owner, "zones", body)
    assert response.status_code == 400
    assert list(response.json()) == ["points"] and "3" in response.json()["points"][0]
    assert not Zone.objects.filter(name="Thin").exists()


def test_a_line_zone_with_two_points_is_accepted_and_normalized(owner: User, ours: Everything) -> None:
    body = {"camera": ours.camera.pk, "name": "Kerb", "kind": "line", "points": [[0.1, 0.5], [0.9, 0.5]]}
    response = post(owner, "zones", body)
    assert response.status_code == 201, response.json()
    assert response.json()["points"] == [[0.1, 0.5], [0.9, 0.5]] and response.json()["site"] == ours.site.pk


def test_a_rule_on_another_sites_zone_is_refused_even_for_an_admin_of_both(
    owner: User, ours: Everything, theirs: Everything
) -> None:
    Membership.objects.create(user=owner, site=theirs.site, role=Role.ADMIN)
    response = post(owner, "rules", {"site": ours.site.pk, "zone": theirs.zone.pk, "name": "Cross-site"})
    assert response.status_code == 400
    assert "another site" in response.json()["zone"][0]


def test_a_rule_on_another_sites_zone_reads_as_a_zone_that_does_not_exist(
    owner: User, ours: Everything, theirs: Everything
) -> None:
    response = post(owner, "rules", {"site": ours.site.pk, "zone": theirs.zone.pk, "name": "Cross-site"})
    assert response.status_code == 400
    assert "does not exist" in response.json()["zone"][0] and "South" not in response.content.decode()


def test_a_rule_with_another_sites_channel_is_refused(owner: User, ours: Everything, theirs: Everything) -> None:
    Membership.objects.create(user=owner, site=theirs.site, role=Role.ADMIN)
    body = {"site": ours.site.pk, "zone": ours.zone.pk, "name": "Loud", "channels": [theirs.channel.pk]}
    response = post(owner, "rules", body)
    assert response.status_code == 400 and "another site" in response.json()["channels"][0]


def test_an_unsupported_camera_url_scheme_is_refused(owner: User, ours: Everything) -> None:
    response = post(owner, "cameras", {"site": ours.site.pk, "name": "Bad", "stream_url": "gopher://cam/1"})
    assert response.status_code == 400
    assert "stream_url" in response.json() and "gopher" in response.json()["stream_url"][0]


def test_a_camera_name_is_unique_per_site(owner: User, ours: Everything) -> None:
    response = post(owner, "cameras", {"site": ours.site.pk, "name": ours.camera.name, "stream_url": "rtsp://x/1"})
    assert response.status_code == 400 and "non_field_errors" in response.json()


def test_a_webhook_needs_an_http_url(owner: User, ours: Everything) -> None:
    body = {"site": ours.site.pk, "name": "Hook", "kind": "webhook", "target": "ftp://example.com/x"}
    response = post(owner, "channels", body)
    assert response.status_code == 400 and "http" in response.json()["target"][0]


def test_a_webhook_secret_is_write_only(owner: User, ours: Everything) -> None:
    secret = ours.channel.secret
    body = {
        "site": ours.site.pk,
        "name": "Hook 2",
        "kind": "webhook",
        "target": "https://example.com/h",
        "secret": secret,
    }
    created = post(owner, "channels", body)
    assert created.status_code == 201, created.json()
    assert "secret" not in created.json() and created.json()["has_secret"] is True
    assert NotificationChannel.objects.get(pk=created.json()["id"]).secret == secret
    for response in (api_as(owner).get("/api/v1/channels/"), api_as(owner).get(f"/api/v1/channels/{ours.channel.pk}/")):
        assert secret not in response.content.decode()


def test_members_below_admin_see_no_credentials_in_urls(viewer: User, owner: User, ours: Everything) -> None:
    camera = api_as(viewer).get(f"/api/v1/cameras/{ours.camera.pk}/").json()
    channel = api_as(viewer).get(f"/api/v1/channels/{ours.channel.pk}/").json()
    assert camera["stream_url"] == "rtsp://cam:***@10.0.0.5/stream"
    assert channel["target"] == "https://hooks.example.com/…"
    assert api_as(owner).get(f"/api/v1/cameras/{ours.camera.pk}/").json()["stream_url"] == ours.camera.stream_url


def test_an_object_cannot_be_moved_to_another_site(owner: User, ours: Everything, theirs: Everything) -> None:
    Membership.objects.create(user=owner, site=theirs.site, role=Role.ADMIN)
    response = api_as(owner).patch(f"/api/v1/cameras/{ours.camera.pk}/", {"site": theirs.site.pk}, format="json")
    assert response.status_code == 400 and "cannot be changed" in response.json()["site"][0]
    ours.camera.refresh_from_db()
    assert ours.camera.site_id == ours.site.pk


def test_a_patch_is_validated_against_the_whole_object(owner: User, ours: Everything) -> None:
    response = api_as(owner).patch(f"/api/v1/zones/{ours.zone.pk}/", {"kind": "line"}, format="json")
    assert response.status_code == 400 and "points" in response.json()  # 4 points are no line


def test_config_changes_are_audited(owner: User, ours: Everything) -> None:
    created = post(owner, "zones", {"camera": ours.camera.pk, "name": "Door", "points": WHOLE_FRAME}).json()
    api_as(owner).patch(f"/api/v1/zones/{created['id']}/", {"name": "Back door"}, format="json")
    api_as(owner).delete(f"/api/v1/zones/{created['id']}/")
    entries = AuditLog.objects.filter(target_type="Zone", target_id=str(created["id"])).order_by("at", "pk")
    assert [(e.action, e.actor) for e in entries] == [
        ("zone.created", owner),
        ("zone.updated", owner),
        ("zone.deleted", owner),
    ]
    assert entries[1].details == {"fields": ["name"]}


def test_a_camera_with_incidents_is_kept_and_one_without_is_deleted(owner: User, ours: Everything) -> None:
    refused = api_as(owner).delete(f"/api/v1/cameras/{ours.camera.pk}/")
    assert refused.status_code == 409 and "disable" in refused.json()["detail"]
    spare = Camera.objects.create(site=ours.site, name="Spare", stream_url="rtsp://10.0.0.8/s")
    assert api_as(owner).delete(f"/api/v1/cameras/{spare.pk}/").status_code == 204
    assert list(Camera.objects.filter(site=ours.site)) == [ours.camera]


def test_a_webhook_created_without_a_secret_gets_one_generated(owner: User, ours: Everything) -> None:
    body = {"site": ours.site.pk, "name": "Hook 3", "kind": "webhook", "target": "https://example.com/h"}
    created = post(owner, "channels", body)
    assert created.status_code == 201 and created.json()["has_secret"] is True
    assert NotificationChannel.objects.get(pk=created.json()["id"]).secret.startswith("whsec_")
