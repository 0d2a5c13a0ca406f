"""Create (or refresh) the demo site: a camera looping real footage, a zone, a rule, an operator."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from monitor.models import AlertRule, Camera, Membership, Role, Severity, Site, Zone, ZoneKind

DEMO_USER = "operator"
# The middle of the picture, where people walk on vtest.avi and ride on bikes.mp4.
DEMO_ZONE = [[0.05, 0.35], [0.95, 0.35], [0.95, 0.98], [0.05, 0.98]]


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--footage", required=True, help="video file the demo camera loops")
        parser.add_argument("--fps", type=float, default=4.0, help="analysis frames per second")

    def handle(self, *args: Any, **options: Any) -> None:
        footage = Path(options["footage"]).resolve()
        if not footage.is_file():
            raise CommandError(f"demo footage not found: {footage} (run `make footage`)")
        with transaction.atomic():
            site, _ = Site.objects.get_or_create(name="Demo site", defaults={"timezone": "UTC"})
            camera = self._camera(site, footage, options["fps"])
            zone = self._zone(camera)
            self._rule(site, zone)
            password = self._operator(site)
        summary = (
            f"  camera:   {camera.name} <- {footage.name} (looped, {camera.analysis_fps:g} fps analysed)\n"
            f"  login:    {DEMO_USER} / {password}\n"
        )
        self.stdout.write(self.style.SUCCESS("Demo ready."))
        self.stdout.write(summary)
        # runstack prints this again once the stack is up, below the start-up logs.
        login_file = Path(settings.VAR_DIR) / "demo-login.txt"
        login_file.write_text(summary)
        login_file.chmod(0o600)

    def _camera(self, site: Site, footage: Path, fps: float) -> Camera:
        camera, _ = Camera.objects.update_or_create(
            site=site,
            name="Plaza",
            defaults={"stream_url": str(footage), "loop": True, "analysis_fps": fps, "enabled": True},
        )
        camera.full_clean()
        return camera

    def _zone(self, camera: Camera) -> Zone:
        zone, _ = Zone.objects.update_or_create(
            camera=camera, name="Walkway", defaults={"kind": ZoneKind.POLYGON, "points": DEMO_ZONE}
        )
        zone.full_clean()
        return zone

    def _rule(self, site: Site, zone: Zone) -> None:
        rule, _ = AlertRule.objects.update_or_create(
            site=site,
            name="Person on the walkway",
            defaults={
                "zone": zone,
                "actor_class": "person",
                "min_confidence": 0.5,
                "min_duration_s": 2.0,
                "cooldown_s": 20.0,
                "severity": Severity.MEDIUM,
            },
        )
        rule.full_clean()

    def _operator(self, site: Site) -> str:
        """The demo operator's password is made once and kept in var/, so reruns print the same."""
        secret_file = Path(settings.VAR_DIR) / "demo-password"
        if secret_file.exists():
            password = secret_file.read_text().strip()
        else:
            password = secrets.token_urlsafe(9)
            secret_file.parent.mkdir(parents=True, exist_ok=True)
            secret_file.write_text(password + "\n")
            secret_file.chmod(0o600)
        user, _ = get_user_model().objects.get_or_create(username=DEMO_USER)
        user.set_password(password)
        user.save()
        Membership.objects.update_or_create(user=user, site=site, defaults={"role": Role.OPERATOR})
        return password
