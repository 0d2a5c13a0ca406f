"""The incident player's overlay (event boxes on the clip's clock) and the incident export (a zip
streamed with the clip, the poster and a JSON record; operators and admins only, audited)."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.db import connections
from django.test import AsyncClient, Client
from django.urls import reverse

from dashboard.export import CHUNK
from monitor import services
from monitor.models import AlertRule, AuditLog, Camera, ClipStatus, Event, Incident

AT = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
CLIP = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 12_000  # about 3 MB, no two chunks alike
POSTER = b"\xff\xd8poster\xff\xd9"


@pytest.fixture
def incident(camera: Camera, rule: AlertRule, settings, tmp_path: Path) -> Incident:
    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "incident.mp4").write_bytes(CLIP)
    (tmp_path / "clips" / "incident.jpg").write_bytes(POSTER)
    return Incident.objects.create(
        site=camera.site,
        camera=camera,
        rule=rule,
        title="Person at the gate",
        started_at=AT,
        last_seen_at=AT + timedelta(seconds=4),
        clip="clips/incident.mp4",
        poster="clips/incident.jpg",
        clip_status=ClipStatus.READY,
        clip_started_at=AT - timedelta(seconds=2),  # two seconds of pre-roll
    )


def add_event(incident: Incident, track: str, start_s: float, end_s: float, boxes: list[list[float]]) -> Event:
    return Event.objects.create(
        camera=incident.camera,
        rule=incident.rule,
        incident=incident,
        track_id=track,
        segment_start=AT + timedelta(seconds=start_s),
        segment_end=AT + timedelta(seconds=end_s),
        actor_class="person",
        action="present",
        score=0.87,
        boxes=boxes,
    )


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def overlay_of(user: User, incident: Incident) -> dict:
    response = logged_in(user).get(reverse("dashboard:incident-overlay", args=[incident.pk]))
    assert response.status_code == 200
    return response.json()


# --- The overlay -----------------------------------------------------------------------------


def test_event_boxes_are_put_on_the_clips_clock(viewer: User, incident: Incident) -> None:
    # Starts 1 s after the incident, whose clip starts 2 s before it: box t = 0 is clip second 3.
    event = add_event(incident, "7", 1.0, 3.0, [[0.0, 0.1, 0.2, 0.3, 0.6], [2.0, 0.5, 0.2, 0.7, 0.6]])

    overlay = overlay_of(viewer, incident)

    assert overlay["origin"] == incident.clip_started_at.isoformat() and overlay["origin_is_clip"]
    (track,) = overlay["tracks"]
    assert track == {
        "event_id": event.pk,
        "track_id": "7",
        "label": "person",
        "action": "present",
        "score": 0.87,
        "start_s": 3.0,
        "end_s": 5.0,
        "samples": [[3.0, 0.1, 0.2, 0.3, 0.6], [5.0, 0.5, 0.2, 0.7, 0.6]],
    }
    assert overlay["timeline"] == {"start_s": 2.0, "end_s": 6.0}, "the incident's span, on the clip's clock"


def test_a_crossings_boxes_end_at_the_crossing_not_start_there(viewer: User, incident: Incident) -> None:
    # A crossing is an instant; its boxes are the second that led up to it (detection/rules.py).
    add_event(
        incident, "9", 2.0, 2.0, [[0.0, 0.1, 0.1, 0.2, 0.2], [0.5, 0.2, 0.1, 0.3, 0.2], [1.0, 0.3, 0.1, 0.4, 0.2]]
    )

    (track,) = overlay_of(viewer, incident)["tracks"]

    assert [s[0] for s in track["samples"]] == [3.0, 3.5, 4.0], "the last box is at the crossing, clip second 4"


def test_without_a_clip_the_overlay_counts_from_the_incidents_start(viewer: User, incident: Incident) -> None:
    Incident.objects.filter(pk=incident.pk).update(clip_status=ClipStatus.MISSING, clip="", clip_started_at=None)
    add_event(incident, "7", 1.0, 2.0, [[0.0, 0.1, 0.2, 0.3, 0.6]])

    overlay = overlay_of(viewer, incident)

    assert not overlay["origin_is_clip"] and overlay["tracks"][0]["samples"] == [[1.0, 0.1, 0.2, 0.3, 0.6]]


def test_the_overlay_is_for_members_only(outsider: User, client: Client, incident: Incident) -> None:
    url = reverse("dashboard:incident-overlay", args=[incident.pk])
    assert logged_in(outsider).get(url).status_code == 404
    assert client.get(url).status_code == 302


def test_the_page_puts_a_canvas_over_the_clip_and_makes_the_timeline_seekable(viewer: User, incident: Incident) -> None:
    event = add_event(incident, "7", 1.0, 3.0, [[0.0, 0.1, 0.2, 0.3, 0.6]])
    page = logged_in(viewer).get(incident.get_absolute_url()).content.decode()
    overlay_url = reverse("dashboard:incident-overlay", args=[incident.pk])
    assert f'<div class="player" id="player" data-overlay-url="{overlay_url}">' in page
    assert '<canvas id="clip-overlay"' in page and "playback.js" in page
    assert f'<li data-event-id="{event.pk}">' in page


# --- The export ------------------------------------------------------------------------------


def export(user: User, incident: Incident) -> tuple[int, list[bytes], object]:
    response = logged_in(user).get(reverse("dashboard:incident-export", args=[incident.pk]))
    chunks = list(response.streaming_content) if response.status_code == 200 else []
    return response.status_code, chunks, response


def test_an_operator_downloads_the_clip_poster_and_a_record_of_everything(operator: User, incident: Incident) -> None:
    add_event(incident, "7", 1.0, 3.0, [[0.0, 0.1, 0.2, 0.3, 0.6], [2.0, 0.5, 0.2, 0.7, 0.6]])
    services.acknowledge_incident(incident.pk, operator, "looking")
    services.add_note(incident.pk, operator, "a delivery van")

    status, chunks, response = export(operator, incident)

    assert status == 200 and response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == f'attachment; filename="argus-incident-{incident.pk}.zip"'
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    stem = f"incident-{incident.pk}"
    assert archive.namelist() == [f"{stem}.json", f"{stem}.mp4", f"{stem}-poster.jpg"]
    assert archive.read(f"{stem}.mp4") == CLIP and archive.read(f"{stem}-poster.jpg") == POSTER
    record = json.loads(archive.read(f"{stem}.json"))
    assert record["format"] == "argus.incident-export/1" and record["exported_by"] == "operator"
    assert record["incident"]["status"] == "acknowledged" and record["incident"]["clip"]["file"] == f"{stem}.mp4"
    assert record["incident"]["site"]["name"] == "North gate"
    assert record["events"][0]["boxes"] == [[0.0, 0.1, 0.2, 0.3, 0.6], [2.0, 0.5, 0.2, 0.7, 0.6]]
    assert [line.split("] ")[1] for line in record["notes"]] == ["operator: looking", "operator: a delivery van"]
    trail = [(a["actor"], a["action"]) for a in record["audit"]]
    assert trail == [
        ("operator", "incident.acknowledge"),
        ("operator", "incident.note"),
        ("operator", "incident.export"),
    ]


def test_the_clip_is_streamed_in_chunks_never_whole(operator: User, incident: Incident) -> None:
    status, chunks, _ = export(operator, incident)
    assert status == 200
    assert len(chunks) > len(CLIP) // CHUNK, "one chunk (or more) per 64 KiB of clip"
    assert max(len(c) for c in chunks) < 2 * CHUNK, "no chunk holds much more than one read of the clip"


def test_an_export_is_audited(owner: User, incident: Incident) -> None:
    export(owner, incident)
    entry = AuditLog.objects.get(action="incident.export")
    assert (entry.actor, entry.site, entry.target_id) == (owner, incident.site, str(incident.pk))
    assert entry.details == {"files": [f"incident-{incident.pk}-poster.jpg", f"incident-{incident.pk}.mp4"]}


def test_a_viewer_may_not_export_and_nothing_is_audited(viewer: User, incident: Incident) -> None:
    status, _, _ = export(viewer, incident)
    assert status == 403 and not AuditLog.objects.filter(action="incident.export").exists()
    assert 'id="export"' not in logged_in(viewer).get(incident.get_absolute_url()).content.decode()


def test_an_outsider_gets_404_and_anonymous_the_login(outsider: User, client: Client, incident: Incident) -> None:
    assert export(outsider, incident)[0] == 404
    response = client.get(reverse("dashboard:incident-export", args=[incident.pk]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert not AuditLog.objects.filter(action="incident.export").exists()


def test_a_clip_gone_from_disk_leaves_the_record_and_says_so(
    operator: User, incident: Incident, tmp_path: Path
) -> None:
    (tmp_path / "clips" / "incident.mp4").unlink()

    status, chunks, _ = export(operator, incident)

    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert status == 200 and archive.namelist() == [
        f"incident-{incident.pk}.json",
        f"incident-{incident.pk}-poster.jpg",
    ]
    assert json.loads(archive.read(f"incident-{incident.pk}.json"))["incident"]["clip"]["file"] is None


# --- Under ASGI (Daphne serves Argus), the clip and the export stream too ----------------------


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_under_asgi_the_export_and_the_clip_are_streamed_not_read_whole_first(
    operator: User, incident: Incident
) -> None:
    # Django reads a plain iterator to its end before an ASGI server sends a byte; these are async.
    client = AsyncClient()
    await client.aforce_login(operator)
    export = await client.get(reverse("dashboard:incident-export", args=[incident.pk]))
    clip = await client.get(reverse("dashboard:incident-clip", args=[incident.pk]), headers={"Range": "bytes=0-"})

    assert export.status_code == 200 and export.is_async and clip.status_code == 206 and clip.is_async
    chunks = [c async for c in export.streaming_content]
    assert max(len(c) for c in chunks) < 2 * CHUNK and len(chunks) > len(CLIP) // CHUNK
    assert zipfile.ZipFile(io.BytesIO(b"".join(chunks))).read(f"incident-{incident.pk}.mp4") == CLIP
    assert b"".join([c async for c in clip.streaming_content]) == CLIP
    await sync_to_async(connections.close_all)()
