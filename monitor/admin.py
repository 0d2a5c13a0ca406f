from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from monitor import services
from monitor.models import (
    AlertRule,
    AuditLog,
    Camera,
    Delivery,
    Event,
    Incident,
    Membership,
    NotificationChannel,
    Site,
    Zone,
)
from monitor.uploads import check_video_upload, store_video_upload


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ["name", "timezone", "created_at"]
    inlines = [MembershipInline]


class CameraForm(forms.ModelForm):
    upload = forms.FileField(
        required=False,
        label="Or upload a video",
        help_text="A video file to analyse instead of a stream (MP4, MOV, MKV, WebM, AVI, TS).",
    )

    class Meta:
        model = Camera
        fields = [
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
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["stream_url"].required = False  # an upload can stand in for it

    def clean_upload(self) -> Any:
        upload = self.cleaned_data.get("upload")
        if upload:
            check_video_upload(upload)
        return upload

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if upload := cleaned.get("upload"):
            # A placeholder path so the model validates; save_model puts the stored file's path here.
            cleaned["stream_url"] = f"uploads/{upload.name}"
        elif not cleaned.get("stream_url") and "stream_url" not in self.errors:
            self.add_error("stream_url", "give a stream URL or upload a video file")
        return cleaned


@admin.register(Camera)
class CameraAdmin(admin.ModelAdmin):
    form = CameraForm
    list_display = ["name", "site", "enabled", "health_state", "health_reason", "last_frame_at", "measured_fps"]
    list_filter = ["site", "enabled", "health_state"]
    readonly_fields = [
        "health_state",
        "health_reason",
        "health_changed_at",
        "last_frame_at",
        "measured_fps",
        "reconnect_count",
        "failure_streak",
        "next_attempt_at",
        "lease_owner",
        "lease_expires_at",
    ]

    def save_model(self, request: HttpRequest, obj: Camera, form: Any, change: bool) -> None:
        if upload := form.cleaned_data.get("upload"):
            obj.stream_url = store_video_upload(upload, obj.site_id)
        super().save_model(request, obj, form, change)
        # Saving is how an operator says "I fixed it": a FAILED source is tried again.
        services.camera_saved(obj.pk, request.user)


@admin.register(Zone)
class ZoneAdmin(admin.ModelAdmin):
    list_display = ["name", "camera", "kind"]
    list_filter = ["kind", "camera__site"]


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "site", "zone", "actor_class", "severity", "enabled"]
    list_filter = ["site", "severity", "enabled"]
    filter_horizontal = ["channels"]


@admin.register(NotificationChannel)
class NotificationChannelAdmin(admin.ModelAdmin):
    list_display = ["name", "site", "kind", "target", "enabled"]


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = ["id", "title", "camera", "severity", "status", "started_at", "last_seen_at"]
    list_filter = ["status", "severity", "site"]
    # Status changes go through services (audit log, live push), not through this form.
    readonly_fields = ["status", "acknowledged_at", "resolved_at", "started_at", "last_seen_at", "track_ids"]


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["id", "camera", "track_id", "actor_class", "action", "segment_start", "segment_end", "score"]
    list_filter = ["camera", "action"]


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["incident", "channel", "status", "attempts", "next_attempt_at", "last_error"]
    list_filter = ["status"]


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ["at", "actor", "site", "action", "target_type", "target_id"]
    list_filter = ["action"]

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False  # the audit log is append-only
