"""API representations. Writes are validated by the models' own full_clean(), so the API refuses
exactly what the admin refuses, with the same field messages.

Field lists are explicit so that a new model field is a decision, not a leak:
tests/dashboard/api/test_schema.py fails until every model field is listed here or in HIDDEN.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings

from monitor.models import (
    AlertRule,
    AuditLog,
    Camera,
    ClipStatus,
    Delivery,
    Event,
    Incident,
    NotificationChannel,
    Role,
    Site,
    Zone,
)

# Model fields the API deliberately does not show (worker bookkeeping, file paths, secrets).
HIDDEN: dict[type[Model], set[str]] = {
    Camera: {"failure_streak", "next_attempt_at", "lease_owner", "lease_expires_at"},
    Incident: {"poster", "clip"},  # exposed as poster_url / clip_url (member-only pages)
    NotificationChannel: {"secret"},  # write-only: see has_secret
    Delivery: {"claim_token"},  # which relay pass holds the row
}


class SiteScopedField(serializers.PrimaryKeyRelatedField):
    """A reference to an object of one of the requester's sites; others read as "does not exist"."""

    def __init__(self, model: type[Model], site_path: str, **kwargs: Any) -> None:
        self.site_path = site_path
        super().__init__(queryset=model._default_manager.all(), **kwargs)

    def get_queryset(self) -> Any:
        view = self.context["view"]
        queryset = super().get_queryset()
        assert queryset is not None
        return queryset.filter(**{f"{self.site_path}__in": view.member_site_ids})


def _field_errors(exc: DjangoValidationError) -> Any:
    if not hasattr(exc, "error_dict"):
        return {api_settings.NON_FIELD_ERRORS_KEY: exc.messages}
    return {
        (api_settings.NON_FIELD_ERRORS_KEY if field == "__all__" else field): messages
        for field, messages in exc.message_dict.items()
    }


class ModelCleanedSerializer(serializers.ModelSerializer):
    # Runs Model.full_clean() on the object as it would be saved, and keeps what clean() normalized.

    # Fields that place the object on a site: set on create, never moved to another site.
    create_only: ClassVar[tuple[str, ...]] = ()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        self._refuse_moves(attrs)
        model: type[Model] = self.Meta.model
        many = {f.name for f in model._meta.many_to_many}
        plain = {name: value for name, value in attrs.items() if name not in many}
        candidate = copy.copy(self.instance) if self.instance is not None else model()
        for name, value in plain.items():
            setattr(candidate, name, value)
        try:
            candidate.full_clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(_field_errors(exc)) from exc
        # clean() may normalize or fill in fields the body did not name (a webhook's generated secret).
        writable = [n for n, f in self.fields.items() if not f.read_only and f.source == n and n not in many]
        return {**attrs, **{name: getattr(candidate, name) for name in writable}}

    def _refuse_moves(self, attrs: dict[str, Any]) -> None:
        if self.instance is None:
            return
        for name in self.create_only:
            if name in attrs and attrs[name] != getattr(self.instance, name):
                raise serializers.ValidationError({name: "cannot be changed; create a new one instead"})


def _redact_url(url: str, *, keep_path: bool) -> str:
    """Stream URLs may carry a password, webhook URLs a token in the path: only admins see them."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return url
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    if parts.username:
        host = f"{parts.username}:***@{host}" if parts.password else f"{parts.username}@{host}"
    if keep_path:
        return urlunsplit((parts.scheme, host, parts.path, parts.query, ""))
    return urlunsplit((parts.scheme, host, "/…" if parts.path.strip("/") else "", "", ""))


class AdminOnlyDetails:
    # Mixin: fields whose full value only the site's admins may read.

    context: dict[str, Any]

    def shows_secrets(self, site_id: int) -> bool:
        return bool(self.context["view"].holds(site_id, Role.ADMIN))


class SiteSerializer(serializers.ModelSerializer):
    """A site you are a member of, with your role there."""

    role = serializers.SerializerMethodField(help_text="Your role on this site.")

    class Meta:
        model = Site
        fields = ["id", "name", "timezone", "retention_days", "media_budget_mb", "created_at", "role"]

    def get_role(self, site: Site) -> str:
        return str(self.context["view"].site_roles[site.pk])


class MemberSerializer(serializers.Serializer):
    """A member of a site and their role."""

    id = serializers.IntegerField(source="user_id")
    username = serializers.CharField(source="user.username")
    role = serializers.ChoiceField(choices=Role.choices)


class CameraSerializer(AdminOnlyDetails, ModelCleanedSerializer):
    """A camera. Only the site's admins see a password in stream_url; health fields are read-only."""

    site = SiteScopedField(Site, "pk")
    create_only = ("site",)

    class Meta:
        model = Camera
        fields = [
            "id",
            "site",
            "name",
            "stream_url",
            "loop",
            "analysis_fps",
            "enabled",
            "stall_timeout_s",
            "offline_incident_after_s",
            "pre_roll_s",
            "post_roll_s",
            "masks",
            "health_state",
            "health_reason",
            "health_changed_at",
            "last_frame_at",
            "measured_fps",
            "reconnect_count",
        ]
        read_only_fields = [
            "health_state",
            "health_reason",
            "health_changed_at",
            "last_frame_at",
            "measured_fps",
            "reconnect_count",
        ]

    def to_representation(self, instance: Camera) -> dict[str, Any]:
        data = super().to_representation(instance)
        if not self.shows_secrets(instance.site_id):
            data["stream_url"] = _redact_url(instance.stream_url, keep_path=True)
        return data


class ZoneSerializer(ModelCleanedSerializer):
    """A polygon (3+ points) or directed line (2 points) in normalized image coordinates."""

    camera = SiteScopedField(Camera, "site")
    site = serializers.IntegerField(source="camera.site_id", read_only=True)
    create_only = ("camera",)

    class Meta:
        model = Zone
        fields = [
            "id",
            "site",
            "camera",
            "name",
            "kind",
            "points",
            "anchor",
            "masks",
            "calibration_points",
            "calibration_width_m",
            "calibration_length_m",
        ]


class AlertRuleSerializer(ModelCleanedSerializer):
    """A rule on a zone of the same site; its channels are of the same site too."""

    site = SiteScopedField(Site, "pk")
    zone = SiteScopedField(Zone, "camera__site")
    channels = SiteScopedField(NotificationChannel, "site", many=True, required=False)
    create_only = ("site",)

    class Meta:
        model = AlertRule
        fields = [
            "id",
            "site",
            "zone",
            "name",
            "enabled",
            "kind",
            "actor_class",
            "actions",
            "min_confidence",
            "min_duration_s",
            "grace_s",
            "dwell_s",
            "min_speed",
            "max_speed",
            "speed_unit",
            "direction_deg",
            "direction_tolerance_deg",
            "min_count",
            "crossing",
            "min_box_height",
            "max_box_height",
            "min_box_area",
            "max_box_area",
            "cooldown_s",
            "schedule",
            "severity",
            "channels",
        ]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        site = attrs.get("site") or getattr(self.instance, "site", None)
        strangers = [c.name for c in attrs.get("channels", []) if site is not None and c.site_id != site.pk]
        if strangers:
            raise serializers.ValidationError({"channels": [f"channel(s) of another site: {', '.join(strangers)}"]})
        return attrs


class NotificationChannelSerializer(AdminOnlyDetails, ModelCleanedSerializer):
    """Email or webhook. The secret is write-only; only admins see a webhook's full URL."""

    site = SiteScopedField(Site, "pk")
    has_secret = serializers.SerializerMethodField()
    create_only = ("site",)

    class Meta:
        model = NotificationChannel
        fields = ["id", "site", "name", "kind", "target", "secret", "has_secret", "enabled", "camera_health"]
        # The model's length and help stay; only reading it back is taken away.
        extra_kwargs = {"secret": {"write_only": True}}

    def get_has_secret(self, channel: NotificationChannel) -> bool:
        return bool(channel.secret)

    def to_representation(self, instance: NotificationChannel) -> dict[str, Any]:
        data = super().to_representation(instance)
        if instance.kind == NotificationChannel.Kind.WEBHOOK and not self.shows_secrets(instance.site_id):
            data["target"] = _redact_url(instance.target, keep_path=False)
        return data


class IncidentSerializer(serializers.ModelSerializer):
    """An incident: open -> acknowledged -> resolved | false_alarm. Change it through its actions."""

    camera_name = serializers.CharField(source="camera.name", read_only=True)
    rule_name = serializers.CharField(source="rule.name", read_only=True, default=None, allow_null=True)
    assignee_username = serializers.CharField(source="assignee.username", read_only=True, default=None, allow_null=True)
    url = serializers.CharField(source="get_absolute_url", read_only=True, help_text="The incident's page.")
    poster_url = serializers.SerializerMethodField()
    clip_url = serializers.SerializerMethodField()

    class Meta:
        model = Incident
        fields = [
            "id",
            "site",
            "camera",
            "camera_name",
            "rule",
            "rule_name",
            "kind",
            "title",
            "severity",
            "status",
            "started_at",
            "last_seen_at",
            "track_ids",
            "explanation",
            "clip_status",
            "clip_error",
            "clip_started_at",
            "poster_url",
            "clip_url",
            "assignee",
            "assignee_username",
            "notes",
            "acknowledged_at",
            "resolved_at",
            "created_at",
            "url",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_poster_url(self, incident: Incident) -> str | None:
        return reverse("dashboard:incident-poster", args=[incident.pk]) if incident.poster else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_clip_url(self, incident: Incident) -> str | None:
        if incident.clip_status != ClipStatus.READY or not incident.clip:
            return None
        return reverse("dashboard:incident-clip", args=[incident.pk])


class EventSerializer(serializers.ModelSerializer):
    """One tube segment: a track's boxes over time ([t_s, x1, y1, x2, y2], normalized)."""

    site = serializers.IntegerField(source="camera.site_id", read_only=True)
    incident_status = serializers.CharField(source="incident.status", read_only=True, default=None, allow_null=True)

    class Meta:
        model = Event
        fields = [
            "id",
            "site",
            "camera",
            "rule",
            "incident",
            "incident_status",
            "track_id",
            "segment_start",
            "segment_end",
            "actor_class",
            "action",
            "score",
            "boxes",
        ]
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    """One notification of an incident through a channel: attempts, status, last error."""

    site = serializers.IntegerField(source="incident.site_id", read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "uuid",
            "site",
            "incident",
            "channel",
            "status",
            "attempts",
            "last_error",
            "next_attempt_at",
            "last_attempt_at",
            "last_latency_ms",
            "delivered_at",
            "created_at",
        ]
        read_only_fields = fields


class AuditEntrySerializer(serializers.ModelSerializer):
    """Who did what, when."""

    actor = serializers.CharField(source="actor.username", default=None, allow_null=True, read_only=True)

    class Meta:
        model = AuditLog
        fields = ["at", "actor", "action", "details"]
        read_only_fields = fields


# --- Incident actions: inputs -------------------------------------------------------------------


class TransitionInput(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class AssignInput(serializers.Serializer):
    assignee = serializers.IntegerField(
        allow_null=True,
        min_value=1,
        max_value=2**63 - 1,  # beyond a 64-bit id: a 400 here, not an overflow in the database
        help_text="User id of an operator or admin of the incident's site; null unassigns.",
    )


class NoteInput(serializers.Serializer):
    text = serializers.CharField(max_length=2000)


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
