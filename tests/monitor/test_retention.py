"""Retention on real files in a throw-away MEDIA_ROOT: ages, per-site budgets, the free-space guard."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from unittest import mock

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command

from monitor import retention
from monitor.models import AuditLog, Camera, ClipStatus, Event, Incident, Site
from monitor.retention import MIB, apply_retention

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
KB = 1024


def plenty_free() -> int:
    return 10**15


@pytest.fixture
def media(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.ARGUS_MEDIA_MIN_FREE_MB = 1
    return settings.MEDIA_ROOT


def incident(camera: Camera, days_ago: float, clip_kb: int = 100, poster_kb: int = 10, **fields) -> Incident:
    """An incident last seen `days_ago` before NOW, with real clip and poster files of these sizes."""
    seen = NOW - timedelta(days=days_ago)
    row = Incident.objects.create(
        site=camera.site, camera=camera, title=f"{days_ago} days ago", started_at=seen, last_seen_at=seen, **fields
    )
    if clip_kb:
        row.clip.save(f"incident-{row.pk}.mp4", ContentFile(b"v" * clip_kb * KB), save=False)
        row.clip_status = fields.get("clip_status", ClipStatus.READY)
    if poster_kb:
        row.poster.save(f"incident-{row.pk}.jpg", ContentFile(b"p" * poster_kb * KB), save=False)
    row.save()
    return row


def event(camera: Camera, days_ago: float, track: str) -> Event:
    end = NOW - timedelta(days=days_ago)
    return Event.objects.create(
        camera=camera,
        track_id=track,
        segment_start=end - timedelta(seconds=5),
        segment_end=end,
        actor_class="person",
        action="present",
        score=0.9,
    )


def files_of(row: Incident) -> list[Path]:
    return [Path(f.path) for f in (row.clip, row.poster) if f.name]


def test_clips_and_events_past_the_sites_retention_go_and_the_incident_stays(camera: Camera, media: Path) -> None:
    Site.objects.filter(pk=camera.site_id).update(retention_days=30)
    old, recent = incident(camera, days_ago=31), incident(camera, days_ago=29)
    old_files, recent_files = files_of(old), files_of(recent)
    event(camera, days_ago=31, track="old")
    event(camera, days_ago=1, track="new")

    report = apply_retention(now=NOW, free_bytes=plenty_free)

    assert [r.incident_id for r in report.removed] == [old.pk]
    assert report.removed[0].size == 110 * KB
    assert not any(p.exists() for p in old_files)
    old.refresh_from_db()
    assert (old.clip.name, old.poster.name, old.clip_status) == ("", "", ClipStatus.MISSING)
    assert old.clip_error == "removed by retention after 30 days"
    assert all(p.exists() for p in recent_files)
    assert Incident.objects.get(pk=recent.pk).clip_status == ClipStatus.READY
    assert list(Event.objects.values_list("track_id", flat=True)) == ["new"]
    assert report.events_deleted == 1
    removed = AuditLog.objects.get(action="incident.media_removed")
    assert (removed.target_id, removed.site_id, removed.actor) == (str(old.pk), camera.site_id, None)
    assert removed.details["reason"] == "removed by retention after 30 days"
    assert AuditLog.objects.get(action="events.expired").details["count"] == 1


def test_each_site_keeps_its_own_retention(camera: Camera, other_site: Site, media: Path) -> None:
    Site.objects.filter(pk=camera.site_id).update(retention_days=7)
    Site.objects.filter(pk=other_site.pk).update(retention_days=90)
    other_camera = Camera.objects.create(site=other_site, name="Depot cam", stream_url="/nowhere.mp4")
    short, long = incident(camera, days_ago=10), incident(other_camera, days_ago=10)

    report = apply_retention(now=NOW, free_bytes=plenty_free)

    assert [r.incident_id for r in report.removed] == [short.pk]
    assert all(p.exists() for p in files_of(long))


def test_a_dry_run_lists_what_a_real_run_removes_and_changes_nothing(camera: Camera, media: Path) -> None:
    Site.objects.filter(pk=camera.site_id).update(retention_days=30, media_budget_mb=1)
    rows = [incident(camera, days_ago=d, clip_kb=400) for d in (40, 20, 10, 5)]
    event(camera, days_ago=40, track="old")
    before = sorted(p.name for p in media.rglob("*") if p.is_file())

    dry = apply_retention(now=NOW, dry_run=True, free_bytes=plenty_free)

    assert sorted(p.name for p in media.rglob("*") if p.is_file()) == before
    assert all(Incident.objects.get(pk=r.pk).clip_status == ClipStatus.READY for r in rows)
    assert Event.objects.count() == 1
    real = apply_retention(now=NOW, free_bytes=plenty_free)
    assert dry.removed == real.removed
    assert (dry.events_deleted, real.events_deleted) == (1, 1)


def test_a_second_run_removes_nothing(camera: Camera, media: Path) -> None:
    Site.objects.filter(pk=camera.site_id).update(retention_days=30, media_budget_mb=1)
    for days in (40, 20, 10, 5):
        incident(camera, days_ago=days, clip_kb=400)
    event(camera, days_ago=40, track="old")
    first = apply_retention(now=NOW, free_bytes=plenty_free)

    second = apply_retention(now=NOW, free_bytes=plenty_free)

    assert first.removed and first.events_deleted == 1
    assert second.summary() == {"incidents": 0, "freed_bytes": 0, "events_deleted": 0, "repaired": 0}


def test_a_site_over_its_budget_loses_its_oldest_clips_and_posters_first(
    camera: Camera, other_site: Site, media: Path
) -> None:
    Site.objects.filter(pk=camera.site_id).update(media_budget_mb=1)
    # Created out of age order, so only ordering by time (not by id) removes the right ones.
    middle = incident(camera, days_ago=3, clip_kb=400, poster_kb=100)
    newest = incident(camera, days_ago=1, clip_kb=400, poster_kb=100)
    oldest = incident(camera, days_ago=5, clip_kb=400, poster_kb=100)
    other_camera = Camera.objects.create(site=other_site, name="Depot cam", stream_url="/nowhere.mp4")
    elsewhere = incident(other_camera, days_ago=9, clip_kb=2000)  # another site's budget (20 GB)

    report = apply_retention(now=NOW, free_bytes=plenty_free)

    # 1500 KB > 1 MB: the oldest goes (1000 KB left, under 1024 KB), and no more.
    assert [r.incident_id for r in report.removed] == [oldest.pk]
    assert not any(p.exists() for p in files_of(oldest))
    assert all(p.exists() for r in (middle, newest, elsewhere) for p in files_of(r))
    oldest.refresh_from_db()
    assert oldest.clip_error == "removed to keep the site within its media budget of 1 MB"


def test_the_budget_counts_posters_of_incidents_without_clips(camera: Camera, media: Path) -> None:
    Site.objects.filter(pk=camera.site_id).update(media_budget_mb=1)
    old = incident(camera, days_ago=2, clip_kb=0, poster_kb=600)
    new = incident(camera, days_ago=1, clip_kb=0, poster_kb=600)

    apply_retention(now=NOW, free_bytes=plenty_free)

    old.refresh_from_db()
    assert old.poster.name == "" and old.clip_status == ClipStatus.NONE and old.clip_error == ""
    assert all(p.exists() for p in files_of(new))


def disk(capacity_kb: int, media: Path) -> Callable[[], int]:
    """A media filesystem of this capacity holding exactly the files under MEDIA_ROOT."""
    return lambda: capacity_kb * KB - sum(p.stat().st_size for p in media.rglob("*") if p.is_file())


def test_when_the_disk_runs_low_the_oldest_media_of_any_site_goes_until_enough_is_free(
    camera: Camera, other_site: Site, media: Path, settings
) -> None:
    other_camera = Camera.objects.create(site=other_site, name="Depot cam", stream_url="/nowhere.mp4")
    # Created out of age order: only ordering by time across sites picks the right ones.
    a2, b1, a4, b3 = (
        incident(cam, days_ago=d, clip_kb=500, poster_kb=12)
        for cam, d in ((camera, 2), (other_camera, 1), (camera, 4), (other_camera, 3))
    )
    settings.ARGUS_MEDIA_MIN_FREE_MB = 2
    free = disk(capacity_kb=3000, media=media)  # 4 x 512 KB used: 952 KB free, 2048 KB wanted
    assert free() < 2 * MIB

    report = apply_retention(now=NOW, free_bytes=free)

    assert [r.incident_id for r in report.removed] == [a4.pk, b3.pk, a2.pk]
    assert free() >= 2 * MIB
    assert all(p.exists() for p in files_of(b1))
    a4.refresh_from_db()
    assert a4.clip_error == "removed because the media disk had less than 2 MB free"


def test_nothing_goes_while_the_disk_has_enough_free(camera: Camera, media: Path) -> None:
    rows = [incident(camera, days_ago=d) for d in (3, 2, 1)]

    report = apply_retention(now=NOW, free_bytes=disk(capacity_kb=10_000, media=media))

    assert report.removed == []
    assert all(p.exists() for r in rows for p in files_of(r))


def test_a_row_pointing_to_a_clip_that_is_gone_is_repaired_to_missing(camera: Camera, media: Path) -> None:
    row = incident(camera, days_ago=1)
    Path(row.clip.path).unlink()

    report = apply_retention(now=NOW, free_bytes=plenty_free)

    assert report.repaired == [row.pk]
    row.refresh_from_db()
    assert (row.clip.name, row.clip_status) == ("", ClipStatus.MISSING)
    assert row.clip_error == retention.MISSING_CLIP
    assert row.poster.name and Path(row.poster.path).exists()  # what is still there stays


def test_an_expired_clip_whose_file_is_already_gone_is_cleared_without_error(camera: Camera, media: Path) -> None:
    Site.objects.filter(pk=camera.site_id).update(retention_days=30)
    row = incident(camera, days_ago=40, clip_status=ClipStatus.FAILED)  # not "ready": repair leaves it
    Path(row.clip.path).unlink()

    report = apply_retention(now=NOW, free_bytes=plenty_free)

    assert [r.incident_id for r in report.removed] == [row.pk]
    assert report.removed[0].size == 10 * KB  # only the poster took space
    row.refresh_from_db()
    assert (row.clip.name, row.poster.name, row.clip_status) == ("", "", ClipStatus.MISSING)


def test_a_clip_still_being_recorded_is_left_alone(camera: Camera, media: Path) -> None:
    Site.objects.filter(pk=camera.site_id).update(retention_days=30, media_budget_mb=1)
    row = incident(camera, days_ago=40, clip_kb=2000, clip_status=ClipStatus.RECORDING)

    report = apply_retention(now=NOW, free_bytes=lambda: 0)

    assert report.removed == [] and report.repaired == []
    assert all(p.exists() for p in files_of(row))


def test_a_row_changed_since_it_was_read_is_not_touched(camera: Camera, media: Path) -> None:
    stale = incident(camera, days_ago=40)
    Incident.objects.filter(pk=stale.pk).update(clip="clips/re-recorded.mp4")  # e.g. the recorder replaced it

    assert retention.remove_media(stale, "test") is None
    assert all(p.exists() for p in files_of(stale))
    assert Incident.objects.get(pk=stale.pk).clip.name == "clips/re-recorded.mp4"


def test_the_command_prints_what_it_removed_and_a_dry_run_what_it_would(camera: Camera, media: Path) -> None:
    Site.objects.filter(pk=camera.site_id).update(retention_days=30)
    row = incident(camera, days_ago=40)
    event(camera, days_ago=40, track="old")
    dry, real = StringIO(), StringIO()

    with mock.patch("monitor.retention.timezone.now", return_value=NOW):  # the clock, at the seam
        call_command("apply_retention", "--dry-run", stdout=dry)
        assert all(p.exists() for p in files_of(row))
        call_command("apply_retention", stdout=real)

    assert f"would remove incident #{row.pk}: {row.clip.name}, {row.poster.name} (0.1 MB)" in dry.getvalue()
    assert "Dry run: would remove media of 1 incident(s) (0.1 MB) and 1 event(s)" in dry.getvalue()
    assert f"removed incident #{row.pk}: {row.clip.name}, {row.poster.name} (0.1 MB)" in real.getvalue()
    assert "Removed media of 1 incident(s) (0.1 MB) and 1 event(s); 0 row(s) repaired." in real.getvalue()
    assert not any(p.exists() for p in files_of(row))


def test_retention_runs_on_beat_as_a_registered_task() -> None:
    from django.conf import settings

    from monitor.celery import app

    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "monitor.tasks.apply_retention" in scheduled
    assert scheduled <= set(app.tasks)
