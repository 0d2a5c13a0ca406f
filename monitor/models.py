"""The Argus domain: sites, cameras, zones, rules, events, incidents, notifications, audit.

Models validate themselves (`clean`) and derive state; changes that span rows live in services.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from detection.geometry import GeometryError, validate_line, validate_polygon
from detection.sources import SUPPORTED_SCHEMES, UnsupportedSource, check_source_url


def validate_timezone(value: str) -> None:
    if value not in available_timezones():
        raise ValidationError(f"{value!r} is not a known time zone (e.g. Europe/Paris)")


class Site(models.Model):
    name = models.CharField(max_length=120, unique=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    retention_days = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1)], help_text="Clips and events older than this are removed."
    )
    media_budget_mb = models.PositiveIntegerField(
        default=20_000, validators=[MinValueValidator(1)], help_text="Disk for this site's clips; oldest go first."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def role_of(self, user: Any) -> str | None:
        if not getattr(user, "is_authenticated", False):
            return None
        membership = self.memberships.filter(user=user).first()
        return membership.role if membership else None


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"
    ADMIN = "admin", "Admin"


ROLE_RANK = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "site"], name="one_membership_per_site")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.site} ({self.role})"

    def allows(self, role: str) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(role)]


def validate_stream_url(value: str) -> None:
    try:
        check_source_url(value)
    except UnsupportedSource as exc:
        raise ValidationError(str(exc)) from exc


class HealthState(models.TextChoices):
    UNKNOWN = "unknown", "Unknown"
    ONLINE = "online", "Online"
    DEGRADED = "degraded", "Degraded"
    OFFLINE = "offline", "Offline"
    FAILED = "failed", "Failed (fix the source)"
    DISABLED = "disabled", "Disabled"


class Camera(models.Model):
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="cameras")
    name = models.CharField(max_length=120)
    stream_url = models.CharField(
        max_length=1000,
        validators=[validate_stream_url],
        help_text=f"One of: {', '.join(sorted(SUPPORTED_SCHEMES))}, or a path to a video file.",
    )
    loop = models.BooleanField(default=False, help_text="Replay a video file forever as if it were live.")
    analysis_fps = models.FloatField(default=2.0, validators=[MinValueValidator(0.1), MaxValueValidator(30.0)])
    enabled = models.BooleanField(default=True)
    stall_timeout_s = models.FloatField(
        default=10.0, validators=[MinValueValidator(1.0)], help_text="No frame for this long: reconnect."
    )
    offline_incident_after_s = models.FloatField(
        default=60.0, validators=[MinValueValidator(0.0)], help_text="Raise a camera-offline incident after this."
    )
    pre_roll_s = models.FloatField(default=5.0, validators=[MinValueValidator(0.0), MaxValueValidator(60.0)])
    post_roll_s = models.FloatField(default=5.0, validators=[MinValueValidator(0.0), MaxValueValidator(60.0)])

    health_state = models.CharField(max_length=16, choices=HealthState.choices, default=HealthState.UNKNOWN)
    health_reason = models.CharField(max_length=500, blank=True)
    health_changed_at = models.DateTimeField(null=True, blank=True)
    last_frame_at = models.DateTimeField(null=True, blank=True)
    measured_fps = models.FloatField(null=True, blank=True)
    reconnect_count = models.PositiveIntegerField(default=0)
    failure_streak = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    # Exactly one worker analyses a camera: it holds this lease and renews it while alive.
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["site__name", "name"]
        constraints = [models.UniqueConstraint(fields=["site", "name"], name="camera_name_unique_per_site")]

    def __str__(self) -> str:
        return f"{self.site} / {self.name}"

    def clean(self) -> None:
        self.stream_url = self.stream_url.strip()

    def lease_is_live(self, now: Any = None) -> bool:
        now = now or timezone.now()
        return bool(self.lease_owner) and self.lease_expires_at is not None and self.lease_expires_at > now


class ZoneKind(models.TextChoices):
    POLYGON = "polygon", "Area (polygon)"
    LINE = "line", "Directed line"


class Zone(models.Model):
    camera = models.ForeignKey(Camera, on_delete=models.CASCADE, related_name="zones")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=ZoneKind.choices, default=ZoneKind.POLYGON)
    # [[x, y], ...] normalized to 0..1 of the image, origin top-left. A line runs from point 0 to 1.
    points = models.JSONField()

    class Meta:
        ordering = ["camera", "name"]
        constraints = [models.UniqueConstraint(fields=["camera", "name"], name="zone_name_unique_per_camera")]

    def __str__(self) -> str:
        return f"{self.camera} / {self.name}"

    @property
    def site(self) -> Site:
        return self.camera.site

    def clean(self) -> None:
        validate = validate_polygon if self.kind == ZoneKind.POLYGON else validate_line
        try:
            self.points = [list(p) for p in validate(self.points)]
        except GeometryError as exc:
            raise ValidationError({"points": str(exc)}) from exc


class ActorClass(models.TextChoices):
    PERSON = "person", "Person"
    VEHICLE = "vehicle", "Vehicle"
    ANY = "any", "Any"


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


# Actions the first detector can observe; the action model issue extends this list.
KNOWN_ACTIONS = ("present",)


def validate_actions(value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise ValidationError("actions must be a list of action names")
    unknown = sorted(set(value) - set(KNOWN_ACTIONS))
    if unknown:
        raise ValidationError(f"unknown action(s) {unknown}; known: {list(KNOWN_ACTIONS)}")


def validate_schedule(value: Any) -> None:
    """A weekly schedule: [{"days": [0..6, Monday=0], "start": "HH:MM", "end": "HH:MM"}]; empty = always."""
    from detection.schedule import ScheduleError, parse_schedule

    try:
        parse_schedule(value)
    except ScheduleError as exc:
        raise ValidationError(str(exc)) from exc


class NotificationChannel(models.Model):
    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook"

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="channels")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    target = models.CharField(max_length=1000, help_text="Email address(es), comma separated, or webhook URL.")
    secret = models.CharField(max_length=200, blank=True, help_text="Webhook signing secret (whsec_...).")
    enabled = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    def clean(self) -> None:
        if self.kind == self.Kind.WEBHOOK and urlsplit(self.target).scheme not in {"http", "https"}:
            raise ValidationError({"target": "a webhook target must be an http(s) URL"})
        if self.kind == self.Kind.EMAIL and "@" not in self.target:
            raise ValidationError({"target": "give at least one email address"})


class AlertRule(models.Model):
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="rules")
    zone = models.ForeignKey(Zone, on_delete=models.CASCADE, related_name="rules")
    name = models.CharField(max_length=120)
    enabled = models.BooleanField(default=True)
    actor_class = models.CharField(max_length=16, choices=ActorClass.choices, default=ActorClass.PERSON)
    actions = models.JSONField(default=list, blank=True, validators=[validate_actions])
    min_confidence = models.FloatField(default=0.5, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    min_duration_s = models.FloatField(default=1.0, validators=[MinValueValidator(0.0)])
    cooldown_s = models.FloatField(
        default=60.0,
        validators=[MinValueValidator(0.0)],
        help_text="An incident keeps growing while hits come closer together than this.",
    )
    schedule = models.JSONField(default=list, blank=True, validators=[validate_schedule])
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.MEDIUM)
    channels = models.ManyToManyField(NotificationChannel, blank=True, related_name="rules")

    class Meta:
        ordering = ["site", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.zone_id and self.site_id and self.zone.camera.site_id != self.site_id:
            raise ValidationError({"zone": "the zone belongs to a camera of another site"})


class ClipStatus(models.TextChoices):
    NONE = "none", "No clip"
    RECORDING = "recording", "Recording"
    READY = "ready", "Ready"
    MISSING = "missing", "Missing (not recorded or removed)"
    FAILED = "failed", "Failed"


class Incident(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"
        FALSE_ALARM = "false_alarm", "False alarm"

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="incidents")
    camera = models.ForeignKey(Camera, on_delete=models.CASCADE, related_name="incidents")
    rule = models.ForeignKey(AlertRule, on_delete=models.SET_NULL, null=True, blank=True, related_name="incidents")
    kind = models.CharField(max_length=32, default="rule", help_text="rule, or camera_offline")
    title = models.CharField(max_length=200)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.MEDIUM)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    track_ids = models.JSONField(default=list, blank=True)
    # Why it fired: the rule and the condition values, e.g. {"dwell_s": 4.5, "min_duration_s": 1.0}.
    explanation = models.JSONField(default=dict, blank=True)
    poster = models.FileField(upload_to="posters/%Y/%m/%d/", blank=True)
    clip = models.FileField(upload_to="clips/%Y/%m/%d/", blank=True)
    clip_status = models.CharField(max_length=16, choices=ClipStatus.choices, default=ClipStatus.NONE)
    clip_error = models.CharField(max_length=500, blank=True)
    clip_started_at = models.DateTimeField(null=True, blank=True)  # wall time of the clip's first frame
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    notes = models.TextField(blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["site", "-started_at"]),
            models.Index(fields=["rule", "status", "-last_seen_at"]),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("dashboard:incident", args=[self.pk])

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.OPEN, self.Status.ACKNOWLEDGED)

    @property
    def duration(self) -> timedelta:
        return self.last_seen_at - self.started_at


class Event(models.Model):
    """One tube segment that satisfied a rule: who, where (boxes over time), from when to when."""

    camera = models.ForeignKey(Camera, on_delete=models.CASCADE, related_name="events")
    rule = models.ForeignKey(AlertRule, on_delete=models.SET_NULL, null=True, blank=True, related_name="events")
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, null=True, blank=True, related_name="events")
    track_id = models.CharField(max_length=64)
    segment_start = models.DateTimeField()
    segment_end = models.DateTimeField()
    actor_class = models.CharField(max_length=16, choices=ActorClass.choices)
    action = models.CharField(max_length=32)
    score = models.FloatField()
    # [[t_seconds_from_start, x1, y1, x2, y2], ...] normalized boxes, sampled.
    boxes = models.JSONField(default=list)

    class Meta:
        ordering = ["segment_start"]
        constraints = [
            # Idempotent writes: a re-run of the same footage updates, never duplicates.
            models.UniqueConstraint(fields=["camera", "track_id", "segment_start"], name="event_idempotency_key")
        ]

    def __str__(self) -> str:
        return f"{self.actor_class} {self.action} track {self.track_id}"


class Delivery(models.Model):
    """Outbox row: one per incident x channel, written in the incident's transaction."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed, will retry"
        DEAD = "dead", "Gave up"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(NotificationChannel, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["incident", "channel"], name="one_delivery_per_channel")]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.incident} -> {self.channel}: {self.status}"


class AuditLog(models.Model):
    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    site = models.ForeignKey(Site, on_delete=models.SET_NULL, null=True, blank=True)
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target_type}#{self.target_id}"
