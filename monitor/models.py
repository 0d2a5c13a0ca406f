"""The Argus domain: sites, cameras, zones, rules, events, incidents, notifications, audit.

Models validate themselves (`clean`) and derive state; changes that span rows live in services.py.
"""

from __future__ import annotations

import uuid as uuid_module
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

from detection.geometry import GeometryError, validate_calibration, validate_line, validate_masks, validate_polygon
from detection.rules import Anchor, CrossingDirection, RuleKind, SpeedUnit
from detection.stream_urls import SUPPORTED_SCHEMES, UnsupportedSource, check_source_url
from detection.types import ACTIONS


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
    masks = models.JSONField(
        default=list,
        blank=True,
        help_text="Polygons ([[x, y], ...], normalized) where detections are ignored by every rule of this camera.",
    )

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
        try:
            self.masks = [[list(p) for p in mask] for mask in validate_masks(self.masks)]
        except GeometryError as exc:
            raise ValidationError({"masks": str(exc)}) from exc

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
    anchor = models.CharField(
        max_length=16,
        choices=[(a.value, a.value.replace("_", " ").capitalize()) for a in Anchor],
        default=Anchor.BOTTOM_CENTER.value,
        help_text="The point of an actor's box that must be in the zone (or cross the line).",
    )
    masks = models.JSONField(
        default=list, blank=True, help_text="Polygons ([[x, y], ...], normalized) where detections are ignored."
    )
    # Ground calibration for speeds in m/s or km/h: 4 image points, in order around a real rectangle.
    calibration_points = models.JSONField(
        default=list,
        blank=True,
        help_text="4 image points [[x, y], ...] (normalized), in order around a rectangle on the ground.",
    )
    calibration_width_m = models.FloatField(
        null=True, blank=True, help_text="Real length of the side from calibration point 1 to 2, in metres."
    )
    calibration_length_m = models.FloatField(
        null=True, blank=True, help_text="Real length of the side from calibration point 2 to 3, in metres."
    )

    class Meta:
        ordering = ["camera", "name"]
        constraints = [models.UniqueConstraint(fields=["camera", "name"], name="zone_name_unique_per_camera")]

    def __str__(self) -> str:
        return f"{self.camera} / {self.name}"

    @property
    def site(self) -> Site:
        return self.camera.site

    @property
    def is_calibrated(self) -> bool:
        return len(self.calibration_points or []) == 4

    def clean(self) -> None:
        validate = validate_polygon if self.kind == ZoneKind.POLYGON else validate_line
        errors: dict[str, str] = {}
        try:
            self.points = [list(p) for p in validate(self.points)]
        except GeometryError as exc:
            errors["points"] = str(exc)
        try:
            self.masks = [[list(p) for p in mask] for mask in validate_masks(self.masks)]
        except GeometryError as exc:
            errors["masks"] = str(exc)
        try:
            validate_calibration(self.calibration_points, self.calibration_width_m, self.calibration_length_m)
        except GeometryError as exc:
            errors["calibration_points"] = str(exc)
        if errors:
            raise ValidationError(errors)


class ActorClass(models.TextChoices):
    PERSON = "person", "Person"
    VEHICLE = "vehicle", "Vehicle"
    ANY = "any", "Any"


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


# "present" (any detector sees it) and the actions the action model scores.
KNOWN_ACTIONS = ("present", *ACTIONS)


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


RULE_KINDS = [(k.value, k.value.replace("_", " ").capitalize()) for k in RuleKind]
CROSSINGS = [(c.value, c.value.replace("_", " ")) for c in CrossingDirection]
SPEED_KINDS = (RuleKind.SPEED, RuleKind.WRONG_WAY)  # wrong way uses min_speed as "moving" threshold
_SIZE_HELP = "Box height (of the frame height) or area (of the frame area), 0..1; empty: no limit."
_FRACTION = [MinValueValidator(0.0), MaxValueValidator(1.0)]


def _reversed(low: float | None, high: float | None) -> bool:
    return low is not None and high is not None and low > high


def _range_errors(obj: Any, *names: str) -> dict[str, str]:
    """min_<name> above max_<name> is a rule that can never fire."""
    return {
        f"max_{name}": f"max {name.replace('_', ' ')} is below the minimum"
        for name in names
        if _reversed(getattr(obj, f"min_{name}"), getattr(obj, f"max_{name}"))
    }


class NotificationChannel(models.Model):
    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook"

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="channels")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    target = models.CharField(max_length=1000, help_text="Email address(es), comma separated, or webhook URL.")
    # Several secrets during a rotation: every one signs, so receivers can switch at their own pace.
    secret = models.CharField(
        max_length=1000,
        blank=True,
        help_text="Webhook signing secret(s), whsec_..., separated by spaces; one is generated when empty.",
    )
    enabled = models.BooleanField(default=True, help_text="Turned off by Argus when a webhook answers 410 Gone.")
    camera_health = models.BooleanField(
        default=True, help_text="Also send this site's camera-offline incidents here (they belong to no rule)."
    )

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    @property
    def secrets(self) -> list[str]:
        return self.secret.split()

    @property
    def recipients(self) -> list[str]:
        return [a.strip() for a in self.target.split(",") if a.strip()]

    def clean(self) -> None:
        from monitor.notify.signing import SigningError, generate_secret, parse_secret

        if self.kind == self.Kind.WEBHOOK and urlsplit(self.target).scheme not in {"http", "https"}:
            raise ValidationError({"target": "a webhook target must be an http(s) URL"})
        if self.kind == self.Kind.EMAIL and "@" not in self.target:
            raise ValidationError({"target": "give at least one email address"})
        if self.kind == self.Kind.WEBHOOK and not self.secrets:
            self.secret = generate_secret()
        try:
            for secret in self.secrets:
                parse_secret(secret)
        except SigningError as exc:
            raise ValidationError({"secret": str(exc)}) from exc


class AlertRule(models.Model):
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="rules")
    zone = models.ForeignKey(Zone, on_delete=models.CASCADE, related_name="rules")
    name = models.CharField(max_length=120)
    enabled = models.BooleanField(default=True)
    kind = models.CharField(
        max_length=16,
        choices=RULE_KINDS,
        default=RuleKind.PRESENCE.value,
        help_text="The condition; crossing needs a directed-line zone, every other kind an area zone.",
    )
    actor_class = models.CharField(max_length=16, choices=ActorClass.choices, default=ActorClass.PERSON)
    actions = models.JSONField(default=list, blank=True, validators=[validate_actions])
    min_confidence = models.FloatField(default=0.5, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    min_duration_s = models.FloatField(
        default=1.0,
        validators=[MinValueValidator(0.0)],
        help_text="How long the condition must hold before the rule fires (not used by crossing).",
    )
    grace_s = models.FloatField(
        default=2.0,
        validators=[MinValueValidator(0.0)],
        help_text="An actor unseen (occluded) or off the condition for less than this stays in its segment.",
    )
    dwell_s = models.FloatField(
        default=30.0, validators=[MinValueValidator(0.0)], help_text="Loitering: time in the zone before it fires."
    )
    min_speed = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0)], help_text="Speed: fires at or above this."
    )
    max_speed = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0)], help_text="Speed: fires at or below this."
    )
    speed_unit = models.CharField(
        max_length=8,
        choices=[(u.value, u.value) for u in SpeedUnit],
        default=SpeedUnit.PX_S.value,
        help_text="m/s and km/h need the zone's calibration.",
    )
    direction_deg = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(360.0)],
        help_text="Wrong way: the allowed heading on the image, 0 = right, 90 = up, 180 = left, 270 = down.",
    )
    direction_tolerance_deg = models.FloatField(
        default=90.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(180.0)],
        help_text="Wrong way: headings within this many degrees of the allowed one are fine.",
    )
    min_count = models.PositiveIntegerField(
        default=2, validators=[MinValueValidator(2)], help_text="Crowd: actors in the zone at once."
    )
    crossing = models.CharField(
        max_length=16,
        choices=CROSSINGS,
        default=CrossingDirection.ANY.value,
        help_text="Crossing: sides as seen looking from the line's point 1 towards point 2.",
    )
    min_box_height = models.FloatField(null=True, blank=True, validators=_FRACTION, help_text=_SIZE_HELP)
    max_box_height = models.FloatField(null=True, blank=True, validators=_FRACTION, help_text=_SIZE_HELP)
    min_box_area = models.FloatField(null=True, blank=True, validators=_FRACTION, help_text=_SIZE_HELP)
    max_box_area = models.FloatField(null=True, blank=True, validators=_FRACTION, help_text=_SIZE_HELP)
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
        errors = {**self._zone_errors(), **self._condition_errors(), **_range_errors(self, "box_height", "box_area")}
        if errors:
            raise ValidationError(errors)

    def _zone_errors(self) -> dict[str, str]:
        if not self.zone_id:
            return {}
        is_line = self.zone.kind == ZoneKind.LINE
        if is_line and self.kind != RuleKind.CROSSING:
            return {"kind": "a directed-line zone only supports crossing rules; use an area zone for this kind"}
        if not is_line and self.kind == RuleKind.CROSSING:
            return {"kind": "a crossing rule needs a directed-line zone"}
        if self.kind in SPEED_KINDS and self.speed_unit != SpeedUnit.PX_S and not self.zone.is_calibrated:
            return {"speed_unit": f"speeds in {self.speed_unit} need the zone's calibration; calibrate it or use px/s"}
        return {}

    def _condition_errors(self) -> dict[str, str]:
        """The fields of the rule's kind must make a condition that can fire."""
        if self.kind == RuleKind.SPEED and self.min_speed is None and self.max_speed is None:
            return {"min_speed": "a speed rule needs a minimum or a maximum speed"}
        if self.kind in SPEED_KINDS and any(v is not None and v <= 0 for v in (self.min_speed, self.max_speed)):
            return {"min_speed": "speed limits must be positive"}
        if self.kind == RuleKind.SPEED and _reversed(self.min_speed, self.max_speed):
            return {"max_speed": "the maximum speed is below the minimum"}
        if self.kind == RuleKind.WRONG_WAY and self.direction_deg is None:
            return {"direction_deg": "a wrong-way rule needs the allowed direction"}
        if self.kind == RuleKind.LOITERING and self.dwell_s <= 0:
            return {"dwell_s": "a loitering rule needs a dwell time above 0 s"}
        return {}


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
        # A camera's events of a time window, newest first, as the activity page reads them.
        indexes = [models.Index(fields=["camera", "segment_start"], name="event_camera_time")]

    def __str__(self) -> str:
        return f"{self.actor_class} {self.action} track {self.track_id}"


class VideoJob(models.Model):
    """A recorded video analysed once against a camera's zones and rules (footage for review, an
    export from another system). Its timeline starts at `recorded_at`, so a re-run after a worker
    died writes the same events (they are keyed by camera, track and segment start) and never doubles them.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    camera = models.ForeignKey(Camera, on_delete=models.CASCADE, related_name="video_jobs")
    source = models.CharField(max_length=1000, help_text="Path of the video file, readable by the workers.")
    recorded_at = models.DateTimeField(help_text="Wall-clock time of the video's first frame.")
    analysis_fps = models.FloatField(validators=[MinValueValidator(0.1), MaxValueValidator(30.0)])
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    error = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveIntegerField(
        default=0, help_text="Runs started; a job whose worker dies too often fails."
    )
    frames_done = models.PositiveIntegerField(default=0)
    frames_total = models.PositiveIntegerField(null=True, blank=True, help_text="Estimated from the file's duration.")
    hits = models.PositiveIntegerField(default=0, help_text="Rule hits written by the run that finished.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True, help_text="When its task was last sent to the broker.")
    started_at = models.DateTimeField(null=True, blank=True, help_text="When its latest run started.")
    finished_at = models.DateTimeField(null=True, blank=True)
    # Exactly one worker runs a job: it holds this lease and renews it while alive.
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_task = models.CharField(max_length=200, blank=True, help_text="Celery task id of the lease holder.")
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "lease_expires_at"], name="videojob_status_lease")]

    def __str__(self) -> str:
        return f"video job #{self.pk} on {self.camera}: {self.status}"

    @property
    def progress(self) -> float | None:
        """0..1 of the estimated frames; None while the length is unknown."""
        if not self.frames_total:
            return None
        return min(1.0, self.frames_done / self.frames_total)


class Delivery(models.Model):
    """Outbox row: one per incident x channel, written in the incident's transaction."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed, will retry"
        DEAD = "dead", "Gave up"

    # The stable id receivers deduplicate by: webhook-id "msg_<hex>", email Message-ID.
    uuid = models.UUIDField(default=uuid_module.uuid4, unique=True, editable=False)
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(NotificationChannel, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # When the relay may pick the row up; while SENDING, when its claim lapses (the visibility time).
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claim_token = models.CharField(max_length=64, blank=True, help_text="The relay pass that holds the row.")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["incident", "channel"], name="one_delivery_per_channel")]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.incident} -> {self.channel}: {self.status}"

    @property
    def message_id(self) -> str:
        return f"msg_{self.uuid.hex}"


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
