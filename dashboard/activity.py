"""The activity page of a site: heatmaps over each camera's picture and charts of events, zone
occupancy and line crossings, drawn with Plotly from one JSON endpoint the page re-reads live.
Every member of the site (viewer and up) may look; everyone else gets 404."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from dashboard.access import require_site
from dashboard.analytics import MAX_WINDOW, WINDOWS, ActivityQuery, activity
from detection.types import ACTIONS
from monitor.media import snapshot_path
from monitor.models import KNOWN_ACTIONS, ActorClass, Camera, Site

WINDOW_CHOICES = [("1h", "Last hour"), ("24h", "Last 24 hours"), ("7d", "Last 7 days"), ("custom", "Custom")]
ACTION_CHOICES = [("", "All actions")] + [(a, a.capitalize()) for a in dict.fromkeys(KNOWN_ACTIONS + ACTIONS)]
CLASS_CHOICES = [("", "All classes")] + [(c.value, c.label) for c in ActorClass if c != ActorClass.ANY]
LOCAL_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class CameraChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return str(obj.name)  # the site is the page's own


class ActivityFilterForm(forms.Form):
    camera = CameraChoiceField(queryset=Camera.objects.none(), required=False, empty_label="All cameras")
    actor_class = forms.ChoiceField(choices=CLASS_CHOICES, required=False, label="Actor class")
    action = forms.ChoiceField(choices=ACTION_CHOICES, required=False)
    window = forms.ChoiceField(choices=WINDOW_CHOICES, required=False, initial="24h", label="Time window")
    start = forms.DateTimeField(required=False, widget=LOCAL_INPUT, label="From")
    end = forms.DateTimeField(required=False, widget=LOCAL_INPUT, label="To")

    def __init__(self, site: Site, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.site = site
        self.fields["camera"].queryset = site.cameras.order_by("name")  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        data["window"] = data.get("window") or "24h"
        if data["window"] != "custom":
            return data
        start, end = data.get("start"), data.get("end")
        if start is None or end is None:
            raise forms.ValidationError("a custom window needs a start and an end")
        if end <= start:
            raise forms.ValidationError("the end must come after the start")
        if end - start > MAX_WINDOW:
            raise forms.ValidationError(f"a custom window spans at most {MAX_WINDOW.days} days")
        return data

    def query(self, now: datetime) -> ActivityQuery:
        data = self.cleaned_data
        if data["window"] == "custom":
            start, end = data["start"], data["end"]
        else:
            start, end = now - WINDOWS[data["window"]], now
        camera = data.get("camera")
        return ActivityQuery(
            site=self.site,
            start=start,
            end=end,
            camera_id=camera.pk if camera else None,
            actor_class=data.get("actor_class") or "",
            action=data.get("action") or "",
        )


def _filter_form(site: Site, request: HttpRequest) -> ActivityFilterForm:
    """Bound to the query string (the last 24 hours when empty); custom times are the site's."""
    with timezone.override(site.timezone):
        form = ActivityFilterForm(site, request.GET or {"window": "24h"})
        form.is_valid()  # cleaned now, while the site's time zone is the current one
    return form


@login_required
def activity_page(request: HttpRequest, site_id: int) -> HttpResponse:
    site = require_site(request.user, site_id)
    with timezone.override(site.timezone):
        context = {
            "site": site,
            "form": _filter_form(site, request),
            "site_role": site.role_of(request.user),
            "data_url": reverse("dashboard:activity-data", args=[site.pk]),
        }
        return render(request, "dashboard/activity.html", context)


@login_required
def activity_data(request: HttpRequest, site_id: int) -> JsonResponse:
    """The page's JSON (dashboard/analytics.py); 400 with the form's messages on bad filters."""
    site = require_site(request.user, site_id)
    form = _filter_form(site, request)
    if form.errors:
        return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
    data = activity(form.query(timezone.now()))
    for heatmap in data["heatmaps"]:
        heatmap["snapshot_url"] = _snapshot_url(heatmap["camera_id"])
    return JsonResponse(data)


def _snapshot_url(camera_id: int) -> str | None:
    if not snapshot_path(camera_id).is_file():
        return None
    return reverse("dashboard:camera-snapshot", args=[camera_id])
