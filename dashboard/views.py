"""Pages and JSON for the operator's dashboard. Views check access, call services, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from dashboard.access import can_operate, require_camera, require_incident, require_site, sites_of
from dashboard.export import zip_chunks
from dashboard.forms import SiteSettingsForm, assignable_members
from dashboard.playback import overlay
from dashboard.ranges import ranged_file_response
from dashboard.review import incident_listing, timeline, timeline_bounds
from dashboard.streaming import for_server
from monitor import exports, services
from monitor.live import camera_health_event, incident_event
from monitor.media import snapshot_path
from monitor.models import ClipStatus, Incident, Role, Site

ACTIVE = [Incident.Status.OPEN, Incident.Status.ACKNOWLEDGED]


@login_required
def home(request: HttpRequest) -> HttpResponse:
    sites = sites_of(request.user)
    if len(sites) == 1:
        return redirect("dashboard:site", site_id=sites[0].pk)
    return render(request, "dashboard/home.html", {"sites": sites})


def _active_incidents(site: Site, limit: int = 50) -> list[Incident]:
    return list(site.incidents.filter(status__in=ACTIVE).select_related("camera").order_by("-last_seen_at")[:limit])


@login_required
def site_wall(request: HttpRequest, site_id: int) -> HttpResponse:
    site = require_site(request.user, site_id)
    context = {
        "site": site,
        "cameras": list(site.cameras.order_by("name")),
        "incidents": _active_incidents(site),
        "recent": list(site.incidents.select_related("camera").order_by("-started_at")[:20]),
        "site_role": site.role_of(request.user),
    }
    return render(request, "dashboard/site.html", context)


@login_required
def incident_list(request: HttpRequest, site_id: int) -> HttpResponse:
    site = require_site(request.user, site_id)
    listing = incident_listing(site, request.GET)
    context = {"site": site, "form": listing.form, "page": listing.page, "query": listing.query}
    context["site_role"] = site.role_of(request.user)
    return render(request, "dashboard/incidents.html", context)


@login_required
def camera_health(request: HttpRequest, site_id: int) -> HttpResponse:
    site = require_site(request.user, site_id)
    context = {"site": site, "cameras": list(site.cameras.order_by("name")), "site_role": site.role_of(request.user)}
    return render(request, "dashboard/cameras.html", context)


@login_required
def site_settings(request: HttpRequest, site_id: int) -> HttpResponse:
    site = require_site(request.user, site_id, role=Role.ADMIN)
    form = SiteSettingsForm(request.POST) if request.method == "POST" else SiteSettingsForm.of(site)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_site_settings(site.pk, request.user, **form.cleaned_data)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, "Settings saved.")
            return redirect("dashboard:site-settings", site_id=site.pk)
    return render(request, "dashboard/settings.html", {"site": site, "form": form, "site_role": Role.ADMIN})


@login_required
def site_state(request: HttpRequest, site_id: int) -> JsonResponse:
    """What a browser re-reads after (re)connecting its socket, so no missed push goes unseen."""
    site = require_site(request.user, site_id)
    return JsonResponse(
        {
            "cameras": [camera_health_event(c) for c in site.cameras.order_by("name")],
            "incidents": [incident_event(i) for i in _active_incidents(site)],
        }
    )


@login_required
def camera_snapshot(request: HttpRequest, camera_id: int) -> FileResponse:
    camera = require_camera(request.user, camera_id)
    path = snapshot_path(camera.pk)
    if not path.is_file():
        raise Http404("no picture from this camera yet")
    response = FileResponse(path.open("rb"), content_type="image/jpeg")
    response["Cache-Control"] = "no-store"
    return response


@login_required
def incident_detail(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = require_incident(request.user, incident_id)
    operates = can_operate(request.user, incident.site)
    events = list(incident.events.order_by("segment_start", "pk"))
    context = {
        "incident": incident,
        "events": events,
        "timeline": timeline(incident, events),
        "timeline_span": timeline_bounds(incident, events),  # what the bars cover, for the player's playhead
        "can_operate": operates,
        "assignable": assignable_members(incident.site) if operates else [],
    }
    return render(request, "dashboard/incident.html", context)


@login_required
def incident_poster(request: HttpRequest, incident_id: int) -> FileResponse:
    incident = require_incident(request.user, incident_id)
    if not incident.poster:
        raise Http404("this incident has no poster")
    return FileResponse(incident.poster.open("rb"), content_type="image/jpeg")


@login_required
def incident_clip(request: HttpRequest, incident_id: int) -> HttpResponseBase:
    """The incident's mp4, with byte ranges so the browser can seek; same access as the poster."""
    incident = require_incident(request.user, incident_id)
    if incident.clip_status != ClipStatus.READY or not incident.clip:
        raise Http404("this incident has no clip")
    try:
        handle = incident.clip.open("rb")
        size = incident.clip.size
    except OSError as exc:  # removed from disk behind the database's back
        raise Http404("the clip file is gone") from exc
    response = ranged_file_response(request, handle, size, "video/mp4")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
def incident_overlay(request: HttpRequest, incident_id: int) -> JsonResponse:
    """The events' boxes on the clip's clock, for the player to draw over the video."""
    incident = require_incident(request.user, incident_id)
    response = JsonResponse(overlay(incident, list(incident.events.order_by("segment_start", "pk"))))
    response["Cache-Control"] = "no-store"  # an incident still growing gains events
    return response


@login_required
def incident_export(request: HttpRequest, incident_id: int) -> StreamingHttpResponse:
    """A zip of the incident's record and media. Operators and admins only: an export leaves the
    site's access control behind, so viewers, who only look, get 403; non-members 404 as ever."""
    incident = require_incident(request.user, incident_id)
    if not can_operate(request.user, incident.site):
        raise PermissionDenied("exports are for the site's operators and admins")
    export = exports.export_incident(incident.pk, request.user)
    response = StreamingHttpResponse(for_server(request, zip_chunks(export)), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="argus-{export.stem}.zip"'
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def incident_action(request: HttpRequest, incident_id: int, verb: str) -> HttpResponse:
    incident = require_incident(request.user, incident_id, role=Role.OPERATOR)
    note = request.POST.get("note", "").strip()[:2000]
    try:
        if verb == "acknowledge":
            services.acknowledge_incident(incident.pk, request.user, note)
        elif verb in ("resolve", "false_alarm"):
            services.resolve_incident(incident.pk, request.user, note, false_alarm=verb == "false_alarm")
        elif verb == "note":
            services.add_note(incident.pk, request.user, note)
        elif verb == "assign":
            services.assign_incident(incident.pk, request.user, _assignee_id(request))
        else:
            raise Http404("unknown action")
    except services.ServiceError as exc:
        messages.error(request, str(exc))
    return redirect("dashboard:incident", incident_id=incident.pk)


def _assignee_id(request: HttpRequest) -> int | None:
    raw = request.POST.get("assignee", "")
    if not raw:
        return None
    if not raw.isdigit():
        raise services.ServiceError("pick someone from the list")
    return int(raw)
