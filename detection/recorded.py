"""Recorded video files analysed once: frames on the recording's own timeline, and its length.

A live camera's frames are stamped with the wall clock. A recording's are stamped with the time it
was recorded plus their media time, so analysing the same file twice yields the same timestamps,
tracks and rule segments, and the events written the second time replace those of the first.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import replace
from datetime import datetime

import av

from detection.sources import SourceOptions, iter_frames
from detection.types import Frame


def recording_frames(path: str, recorded_at: datetime, options: SourceOptions) -> Generator[Frame]:
    """Every analysis frame of the file, as fast as it decodes, stamped from `recorded_at`."""
    once = replace(options, loop=False, realtime=False)
    start = recorded_at.timestamp()
    # iter_frames anchors a file's timeline at its clock's first reading; without pacing that is the only one.
    yield from iter_frames(path, once, clock=lambda: start)


def estimated_frames(path: str, fps: float) -> int | None:
    """How many frames analysis at `fps` will see, from the container's duration; None when unknown."""
    try:
        with av.open(path) as container:
            if container.duration:
                seconds = container.duration / av.time_base
            elif container.streams.video and (stream := container.streams.video[0]).duration and stream.time_base:
                seconds = float(stream.duration * stream.time_base)
            else:
                return None
    except (av.error.FFmpegError, OSError):
        return None  # the run itself reports why the file cannot be read
    return max(1, math.ceil(seconds * fps)) if seconds > 0 else None
