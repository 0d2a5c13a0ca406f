"""Loaded into a test worker with `--include`: a video whose name starts with "poison" kills the
process analysing it, mid-run, the way a decoder crash or the OOM killer would."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from detection import tasks

_run = tasks.run_video_job


def _deadly_run(job: tasks.VideoJob, owner: str) -> tasks.VideoJobSink:
    if Path(job.source).name.startswith("poison"):
        os.kill(os.getpid(), signal.SIGKILL)
    return _run(job, owner)


tasks.run_video_job = _deadly_run  # type: ignore[assignment]
