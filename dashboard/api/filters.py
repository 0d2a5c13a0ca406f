"""Query filters. References are plain numbers (never "choose an existing row"), so asking for
another site's id gives an empty list rather than an error that would confirm the id exists."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import django_filters as filters
from django import forms
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from monitor.models import Delivery, Incident, Severity


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(filters.NumberFilter):
    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Ids are 64-bit columns: a bigger number is a 400 here, not an overflow in the database.
        kwargs.setdefault("min_value", -(2**63))
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, handed to the database in UTC: an offset Postgres cannot store (beyond
    +-15:59, which ISO allows) or a time that leaves the calendar when moved to UTC is a 400."""

    def to_python(self, value: Any) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise ValidationError("This time is out of range.", code="invalid") from None


@extend_schema_field(OpenApiTypes.DATETIME)
class UtcIsoDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class IncidentFilter(filters.FilterSet):
    site = IdFilter(field_name="site_id")
    camera = IdFilter(field_name="camera_id")
    rule = IdFilter(field_name="rule_id")
    assignee = IdFilter(field_name="assignee_id")
    status = filters.MultipleChoiceFilter(choices=Incident.Status.choices, help_text="Repeat for several.")
    severity = filters.MultipleChoiceFilter(choices=Severity.choices, help_text="Repeat for several.")
    kind = filters.CharFilter(help_text="rule, or camera_offline")
    started_after = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="gte")
    started_before = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="lt")

    class Meta:
        model = Incident
        fields: list[str] = []


class EventFilter(filters.FilterSet):
    site = IdFilter(field_name="camera__site_id")
    camera = IdFilter(field_name="camera_id")
    rule = IdFilter(field_name="rule_id")
    incident = IdFilter(field_name="incident_id")
    incident_status = filters.ChoiceFilter(
        field_name="incident__status", choices=Incident.Status.choices, help_text="false_alarm: feedback data."
    )
    track_id = filters.CharFilter()
    started_after = UtcIsoDateTimeFilter(field_name="segment_start", lookup_expr="gte")
    started_before = UtcIsoDateTimeFilter(field_name="segment_start", lookup_expr="lt")


class FalseAlarmFilter(filters.FilterSet):
    site = IdFilter(field_name="camera__site_id")
    camera = IdFilter(field_name="camera_id")
    rule = IdFilter(field_name="rule_id")
    incident = IdFilter(field_name="incident_id")
    started_after = UtcIsoDateTimeFilter(field_name="segment_start", lookup_expr="gte")
    started_before = UtcIsoDateTimeFilter(field_name="segment_start", lookup_expr="lt")


class DeliveryFilter(filters.FilterSet):
    site = IdFilter(field_name="incident__site_id")
    incident = IdFilter(field_name="incident_id")
    channel = IdFilter(field_name="channel_id")
    status = filters.MultipleChoiceFilter(choices=Delivery.Status.choices, help_text="Repeat for several.")


class SiteFilter(filters.FilterSet):
    site = IdFilter(field_name="site_id")


class ZoneFilter(filters.FilterSet):
    site = IdFilter(field_name="camera__site_id")
    camera = IdFilter(field_name="camera_id")


class RuleFilter(filters.FilterSet):
    site = IdFilter(field_name="site_id")
    zone = IdFilter(field_name="zone_id")
    enabled = filters.BooleanFilter()
