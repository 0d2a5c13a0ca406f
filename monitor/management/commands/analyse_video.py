"""Analyse recorded video files against a camera's zones and rules (events and incidents as if live)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from monitor.models import VideoJob
from monitor.video_jobs import VideoJobError, create_video_job

FINISHED = (VideoJob.Status.DONE, VideoJob.Status.FAILED)


def _recorded_at(text: str | None) -> datetime | None:
    if text is None:
        return None
    value = parse_datetime(text)
    if value is None:
        raise CommandError(f"--recorded-at {text!r} is not an ISO date-time (e.g. 2026-11-24T08:30:00+01:00)")
    return value if timezone.is_aware(value) else timezone.make_aware(value)


def _progress(job: VideoJob) -> str:
    share = f" ({job.progress:.0%})" if job.progress is not None else ""
    total = f"/{job.frames_total}" if job.frames_total else ""
    line = f"job {job.pk} {job.status}: {job.frames_done}{total} frames{share}, run {job.attempts}"
    if job.status == VideoJob.Status.DONE:
        line += f", {job.hits} rule hit(s)"
    return line + (f" - {job.error}" if job.error else "")


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", help="video files the workers can read")
        parser.add_argument("--camera", type=int, required=True, help="id of the camera whose zones and rules apply")
        parser.add_argument(
            "--recorded-at", help="wall-clock time of the first file's first frame (ISO 8601); default: now"
        )
        parser.add_argument("--fps", type=float, help="analysis frames per second (default: the camera's)")
        parser.add_argument("--wait", action="store_true", help="show progress until every job has finished")

    def handle(self, *args: Any, **options: Any) -> None:
        recorded_at = _recorded_at(options["recorded_at"])
        jobs = []
        for path in options["files"]:
            try:
                job = create_video_job(options["camera"], path, recorded_at=recorded_at, analysis_fps=options["fps"])
            except VideoJobError as exc:
                raise CommandError(f"{path}: {exc}") from exc
            self.stdout.write(f"queued job {job.pk}: {job.source}")
            jobs.append(job.pk)
            recorded_at = None  # only the first file is placed by --recorded-at
        if options["wait"]:
            self._wait(jobs)

    def _wait(self, job_ids: list[int]) -> None:
        last: dict[int, str] = {}
        while True:
            jobs = list(VideoJob.objects.filter(pk__in=job_ids).order_by("pk"))
            for job in jobs:
                line = _progress(job)
                if last.get(job.pk) != line:
                    self.stdout.write(line)
                    last[job.pk] = line
            if all(job.status in FINISHED for job in jobs):
                break
            time.sleep(1.0)
        failed = [job.pk for job in jobs if job.status == VideoJob.Status.FAILED]
        if failed:
            raise CommandError(f"{len(failed)} job(s) failed: {failed}")
