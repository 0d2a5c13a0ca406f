"""The zone and rule editor: a page that draws zones over the camera's picture and saves them through
the REST API, and the preview of a draft rule over the camera's recent tubes. Access: members look,
the site's admins edit (the API enforces that on every write), everyone else gets 404."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_POST

from dashboard.access import require_camera
from dashboard.api import parsers
from detection.rules import Anchor, SpeedUnit
from monitor import preview
from monitor.media import snapshot_path
from monitor.models import (
    CROSSINGS,
    RULE_KINDS,
    ActorClass,
    Camera,
    Role,
    Severity,
    ZoneKind,
)


def _choices(pairs: Any) -> list[dict[str, str]]:
    return [{"value": str(value), "label": str(label)} for value, label in pairs]


def editor_options(camera: Camera) -> dict[str, Any]:
    """What the page's forms offer: the model's own choices, and the site's channels."""
    return {
        "zone_kinds": _choices(ZoneKind.choices),
        "anchors": _choices((a.value, a.value.replace("_", " ")) for a in Anchor),
        "rule_kinds": _choices(RULE_KINDS),
        "actor_classes": _choices(ActorClass.choices),
        "speed_units": _choices((u.value, u.value) for u in SpeedUnit),
        "crossings": _choices(CROSSINGS),
        "severities": _choices(Severity.choices),
        "channels": [{"value": str(c.pk), "label": c.name} for c in camera.site.channels.order_by("name")],
    }


@login_required
def zone_editor(request: HttpRequest, camera_id: int) -> HttpResponse:
    camera = require_camera(request.user, camera_id)
    context = {
        "camera": camera,
        "site": camera.site,
        "can_edit": camera.site.role_of(request.user) == Role.ADMIN,
        "has_snapshot": snapshot_path(camera.pk).is_file(),
        "options": editor_options(camera),
    }
    return render(request, "dashboard/editor.html", context)


@login_required
@require_POST
def rule_preview(request: HttpRequest, camera_id: int) -> JsonResponse:
    """Read-only despite POST (a draft is a body): the tubes of the last day the draft would fire on."""
    camera = require_camera(request.user, camera_id)
    try:
        body = parsers.loads(request.body or b"{}")
        spec = preview.draft_spec(camera, body.get("zone"), body.get("rule"))
    except (ValueError, AttributeError):
        return JsonResponse({"errors": {"__all__": ['send JSON: {"zone": {...}, "rule": {...}}']}}, status=400)
    except ValidationError as exc:
        return JsonResponse({"errors": exc.message_dict}, status=400)
    events = preview.recent_events(camera.pk, timezone.now())
    hits = preview.preview_rule(spec, events)
    return JsonResponse({"events_checked": len(events), "hits": [h.as_dict() for h in hits]})
