"""Site scoping for every API view: the same roles as the pages (viewer < operator < admin).

A user sees only the sites they are a member of: querysets are filtered by membership, so another
site's objects are 404 (their ids leak nothing). A member whose role is too low gets 403.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any, ClassVar

from django.db.models import Model, QuerySet
from rest_framework import permissions, viewsets
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request

from monitor.models import ROLE_RANK, Membership, Role


def _at_least(held: str | None, role: str) -> bool:
    return held is not None and ROLE_RANK[Role(held)] >= ROLE_RANK[Role(role)]


class SiteRolePermission(permissions.BasePermission):
    """Anonymous: 401. Below the action's role on every site: 403 before the body is even read.
    On an object: the role must be held on that object's site."""

    message = "your role on this site does not allow this"

    def has_permission(self, request: Request, view: Any) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        role = view.required_role()
        return role is None or view.holds_anywhere(role)

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        role = view.required_role()
        return role is None or view.holds(view.site_id_of(obj), role)


class SiteScopedViewSet(viewsets.GenericViewSet):
    """Base of every API viewset. Subclasses say how to reach an object's site and who may act."""

    permission_classes: ClassVar[list[type[permissions.BasePermission]]] = [SiteRolePermission]  # type: ignore[misc]
    # Lookup from the model to its site, e.g. "site" or "camera__site"; "pk" for Site itself.
    site_path: ClassVar[str] = "site"
    # Least role per action. Unsafe actions that are not listed need ADMIN: new actions fail closed.
    action_roles: ClassVar[Mapping[str, str]] = {}

    @cached_property
    def site_roles(self) -> dict[int, str]:
        """site id -> role of the requesting user; one query per request."""
        user = self.request.user
        if not user.is_authenticated:
            return {}
        return dict(Membership.objects.filter(user=user).values_list("site_id", "role"))

    @property
    def member_site_ids(self) -> list[int]:
        return list(self.site_roles)

    def holds(self, site_id: int, role: str) -> bool:
        return _at_least(self.site_roles.get(site_id), role)

    def holds_anywhere(self, role: str) -> bool:
        return any(_at_least(held, role) for held in self.site_roles.values())

    def required_role(self) -> str | None:
        """None for reads (membership, which the queryset enforces, is enough)."""
        if self.action in self.action_roles:
            return self.action_roles[self.action]
        return None if self.request.method in permissions.SAFE_METHODS else Role.ADMIN

    def get_queryset(self) -> QuerySet[Any]:
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user, no rows
            return queryset.none()
        return queryset.filter(**{f"{self.site_path}__in": self.member_site_ids})

    def site_id_of(self, obj: Model, site_path: str | None = None) -> int:
        site_path = site_path or self.site_path
        if site_path == "pk":
            return int(obj.pk)
        *hops, last = site_path.split("__")
        for hop in hops:
            obj = getattr(obj, hop)
        return int(getattr(obj, f"{last}_id"))

    def require_role_for_new(self, data: dict[str, Any]) -> None:
        """Creation: the object's site is only known once the body is validated, e.g. from
        data["site"] or data["camera"].site_id."""
        first, *rest = self.site_path.split("__")
        site_id = data[first].pk if not rest else self.site_id_of(data[first], "__".join(rest))
        role = self.required_role()
        if role is not None and not self.holds(int(site_id), role):
            raise PermissionDenied(f"you need the {role} role on this site")
