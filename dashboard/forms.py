"""Forms of the dashboard's pages: they parse input; the domain's rules stay in the models and services."""

from __future__ import annotations

from typing import Any
from zoneinfo import available_timezones

from django import forms

from monitor.models import Membership, Role, Site


def assignable_members(site: Site) -> list[Membership]:
    """Who an incident of the site can be given to: its active operators and admins."""
    members = Membership.objects.filter(site=site, role__in=[Role.OPERATOR, Role.ADMIN], user__is_active=True)
    return list(members.select_related("user").order_by("user__username"))


class SiteSettingsForm(forms.Form):
    timezone = forms.ChoiceField(label="Time zone")
    retention_days = forms.IntegerField(label="Retention (days)", min_value=1)
    media_budget_mb = forms.IntegerField(label="Media budget (MB)", min_value=1)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        zones: Any = self.fields["timezone"]
        zones.choices = [(name, name) for name in sorted(available_timezones())]

    @classmethod
    def of(cls, site: Site) -> SiteSettingsForm:
        return cls(initial={name: getattr(site, name) for name in ("timezone", "retention_days", "media_budget_mb")})
