"""Who may see what: every view, API call, socket and file goes through these."""

from __future__ import annotations

from typing import Any

from django.http import Http404

from monitor.models import ROLE_RANK, Camera, Incident, Membership, Role, Site


def sites_of(user: Any) -> list[Site]:
    if not getattr(user, "is_authenticated", False):
        return []
    return list(Site.objects.filter(memberships__user=user).order_by("name"))


def require_site(user: Any, site_id: int, role: str = Role.VIEWER) -> Site:
    """The site if the user holds at least `role` there; 404 otherwise, so ids leak nothing."""
    membership = (
        Membership.objects.select_related("site").filter(user=user, site_id=site_id).first()
        if getattr(user, "is_authenticated", False)
        else None
    )
    if membership is None or ROLE_RANK[Role(membership.role)] < ROLE_RANK[Role(role)]:
        raise Http404("no such site")
    return membership.site


def require_camera(user: Any, camera_id: int, role: str = Role.VIEWER) -> Camera:
    camera = Camera.objects.filter(pk=camera_id).first()
    if camera is None:
        raise Http404("no such camera")
    require_site(user, camera.site_id, role)
    return camera


def require_incident(user: Any, incident_id: int, role: str = Role.VIEWER) -> Incident:
    incident = Incident.objects.select_related("camera", "rule", "site").filter(pk=incident_id).first()
    if incident is None:
        raise Http404("no such incident")
    require_site(user, incident.site_id, role)
    return incident


def can_operate(user: Any, site: Site) -> bool:
    role = site.role_of(user)
    return role is not None and ROLE_RANK[Role(role)] >= ROLE_RANK[Role.OPERATOR]
