from typing import Any

from django import forms
from django.contrib import admin, messages
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
    VideoJob,
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
            "masks",
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
    list_display = ["name", "camera", "kind", "anchor", "is_calibrated"]
    list_filter = ["kind", "camera__site"]
    fieldsets = [
        (None, {"fields": ["camera", "name", "kind", "points", "anchor", "masks"]}),
        (
            "Ground calibration (speeds in m/s or km/h)",
            {"fields": ["calibration_points", "calibration_width_m", "calibration_length_m"]},
        ),
    ]

    @admin.display(boolean=True, description="calibrated")
    def is_calibrated(self, obj: Zone) -> bool:
        return obj.is_calibrated


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "site", "zone", "kind", "actor_class", "severity", "enabled"]
    list_filter = ["site", "kind", "severity", "enabled"]
    filter_horizontal = ["channels"]
    # Each kind reads its own section; the fields of other kinds are ignored (see README, "Rules").
    fieldsets = [
        (None, {"fields": ["site", "zone", "name", "enabled", "kind", "severity", "channels"]}),
        ("Who", {"fields": ["actor_class", "actions", "min_confidence"]}),
        (
            "Box size (normalized, empty: no limit)",
            {"fields": [("min_box_height", "max_box_height"), ("min_box_area", "max_box_area")]},
        ),
        ("When", {"fields": ["min_duration_s", "grace_s", "schedule", "cooldown_s"]}),
        ("Loitering", {"fields": ["dwell_s"]}),
        (
            "Speed and wrong way",
            {"fields": [("min_speed", "max_speed", "speed_unit"), ("direction_deg", "direction_tolerance_deg")]},
        ),
        ("Crowd", {"fields": ["min_count"]}),
        ("Line crossing", {"fields": ["crossing"]}),
    ]


@admin.register(NotificationChannel)
class NotificationChannelAdmin(admin.ModelAdmin):
    list_display = ["name", "site", "kind", "target", "enabled", "camera_health"]
    list_filter = ["kind", "enabled", "site"]
    actions = ["send_test"]

    @admin.action(description="Send a test notification")
    def send_test(self, request: HttpRequest, queryset: Any) -> None:
        for channel in queryset:
            result = services.send_test_notification(channel.pk, request.user)
            if result.ok:
                self.message_user(request, f"{channel}: delivered in {result.latency_ms} ms", messages.SUCCESS)
            else:
                self.message_user(request, f"{channel}: failed: {result.error}", messages.ERROR)


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
    """The delivery log: one row per incident x channel, its attempts and last outcome."""

    list_display = [
        "incident",
        "channel",
        "status",
        "attempts",
        "last_attempt_at",
        "last_latency_ms",
        "next_attempt_at",
        "last_error",
    ]
    list_filter = ["status", "channel__kind", "channel"]
    list_select_related = ["incident", "channel"]
    search_fields = ["uuid", "incident__title", "last_error"]
    # The relay owns these rows; editing them by hand would fight it.
    readonly_fields = [f.name for f in Delivery._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ["at", "actor", "site", "action", "target_type", "target_id"]
    list_filter = ["action"]

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False  # the audit log is append-only


@admin.register(VideoJob)
class VideoJobAdmin(admin.ModelAdmin):
    """Read-only: jobs are queued with `manage.py analyse_video`; workers own their state."""

    list_display = ["id", "camera", "source", "status", "progress_shown", "attempts", "hits", "recorded_at", "error"]
    list_filter = ["status", "camera__site"]

    @admin.display(description="progress")
    def progress_shown(self, job: VideoJob) -> str:
        return f"{job.progress:.0%}" if job.progress is not None else f"{job.frames_done} frames"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
