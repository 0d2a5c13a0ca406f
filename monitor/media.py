"""Where media files live. Light on purpose: web processes import it."""

from pathlib import Path

from django.conf import settings


def snapshot_path(camera_id: int) -> Path:
    """The latest picture of a camera, replaced atomically by its worker about once a second."""
    return Path(settings.MEDIA_ROOT) / "snapshots" / f"camera-{camera_id}.jpg"
