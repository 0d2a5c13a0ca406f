"""The incident review list: filters read from the query string, and keyset pages.

Pages are cut on (started_at, id), newest first, so page 1000 costs what page 1 costs: the
`(site, -started_at)` index gives the order, the cursor is a range bound on it, and one extra row
tells whether another page follows. Nothing counts the whole table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django import forms
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from detection.rules import RuleKind
from monitor.models import Event, Incident, Severity, Site, Zone

PAGE_SIZES = (25, 50, 100)
ACTIVE = [Incident.Status.OPEN, Incident.Status.ACKNOWLEDGED]
CAMERA_OFFLINE = "camera_offline"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LOCAL_MINUTE = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends


def _any(label: str, choices: list[tuple[Any, str]]) -> list[tuple[Any, str]]:
    return [("", label), *choices]


class IncidentFilters(forms.Form):
    """Every field is optional; an invalid one is reported and ignored, the rest still apply."""

    q = forms.CharField(required=False, max_length=200, label="Search")
    status = forms.ChoiceField(required=False)
    severity = forms.ChoiceField(required=False)
    camera = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    zone = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    rule = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    kind = forms.ChoiceField(required=False)
    action = forms.CharField(required=False, max_length=32)
    since = forms.DateTimeField(required=False, input_formats=[_LOCAL_MINUTE], label="From")
    until = forms.DateTimeField(required=False, input_formats=[_LOCAL_MINUTE], label="To")
    per = forms.TypedChoiceField(
        coerce=int, required=False, empty_value=None, choices=[(n, str(n)) for n in PAGE_SIZES]
    )

    def __init__(self, data: Mapping[str, Any], *, site: Site) -> None:
        super().__init__(data)
        fields: dict[str, Any] = self.fields
        fields["status"].choices = _any("Any status", [("active", "Active"), *Incident.Status.choices])
        fields["severity"].choices = _any("Any severity", list(Severity.choices))
        fields["camera"].choices = _any("All cameras", list(site.cameras.order_by("name").values_list("pk", "name")))
        zones = Zone.objects.filter(camera__site=site).select_related("camera").order_by("camera__name", "name")
        fields["zone"].choices = _any("All zones", [(z.pk, f"{z.camera.name} · {z.name}") for z in zones])
        fields["rule"].choices = _any("All rules", list(site.rules.order_by("name").values_list("pk", "name")))
        kinds = [(k.value, k.value.replace("_", " ").capitalize()) for k in RuleKind]
        fields["kind"].choices = _any("Any kind", [*kinds, (CAMERA_OFFLINE, "Camera offline")])
        for name in ("since", "until"):
            fields[name].widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format=_LOCAL_MINUTE)
        fields["q"].widget.attrs.update(type="search", placeholder="Title or notes")
        fields["action"].widget.attrs.update(placeholder="e.g. present")

    def conditions(self) -> Q:
        """The filters that validated, as one Q; call after is_valid()."""
        data = getattr(self, "cleaned_data", {})
        where = Q()
        if text := data.get("q"):
            where &= Q(title__icontains=text) | Q(notes__icontains=text)
        if status := data.get("status"):
            where &= Q(status__in=ACTIVE) if status == "active" else Q(status=status)
        for name, lookup in (("severity", "severity"), ("camera", "camera_id"), ("rule", "rule_id")):
            if data.get(name):
                where &= Q(**{lookup: data[name]})
        if data.get("zone"):
            where &= Q(rule__zone_id=data["zone"])
        if kind := data.get("kind"):
            where &= Q(kind=CAMERA_OFFLINE) if kind == CAMERA_OFFLINE else Q(rule__kind=kind)
        if action := data.get("action"):
            where &= Q(Exists(Event.objects.filter(incident=OuterRef("pk"), action=action)))
        if data.get("since"):
            where &= Q(started_at__gte=data["since"])
        if data.get("until"):
            where &= Q(started_at__lt=data["until"])
        return where


@dataclass(frozen=True)
class Cursor:
    """A position in the list: the incident the page starts after (or ends before)."""

    started_at: datetime
    pk: int

    def encode(self) -> str:
        return f"{(self.started_at - _EPOCH) // timedelta(microseconds=1)}.{self.pk}"

    @classmethod
    def decode(cls, raw: str | None) -> Cursor | None:
        try:
            micros, pk = (raw or "").split(".")
            return cls(_EPOCH + timedelta(microseconds=int(micros)), int(pk))
        except (ValueError, OverflowError):
            return None

    @classmethod
    def of(cls, incident: Incident) -> Cursor:
        return cls(incident.started_at, incident.pk)


@dataclass(frozen=True)
class Page:
    incidents: list[Incident]
    older: str | None  # cursor for ?after=
    newer: str | None  # cursor for ?before=


def _older_than(c: Cursor) -> Q:
    # `started_at <= t` is the index bound; the OR only breaks ties within one timestamp.
    return Q(started_at__lte=c.started_at) & (Q(started_at__lt=c.started_at) | Q(pk__lt=c.pk))


def _newer_than(c: Cursor) -> Q:
    return Q(started_at__gte=c.started_at) & (Q(started_at__gt=c.started_at) | Q(pk__gt=c.pk))


def keyset_page(qs: QuerySet[Incident], size: int, *, after: Cursor | None, before: Cursor | None) -> Page:
    """One page of `qs`, newest first; `after` walks to older incidents, `before` back to newer."""
    if before is not None:
        rows = list(qs.filter(_newer_than(before)).order_by("started_at", "pk")[: size + 1])
        more_newer, rows = len(rows) > size, rows[:size][::-1]
        return _page(rows, has_older=True, has_newer=more_newer)
    if after is not None:
        qs = qs.filter(_older_than(after))
    rows = list(qs.order_by("-started_at", "-pk")[: size + 1])
    return _page(rows[:size], has_older=len(rows) > size, has_newer=after is not None)


def _page(rows: list[Incident], *, has_older: bool, has_newer: bool) -> Page:
    if not rows:
        return Page([], older=None, newer=None)
    return Page(
        rows,
        older=Cursor.of(rows[-1]).encode() if has_older else None,
        newer=Cursor.of(rows[0]).encode() if has_newer else None,
    )


@dataclass(frozen=True)
class Listing:
    form: IncidentFilters
    page: Page
    query: str  # the filters as a query string, for the paging links


def incident_listing(site: Site, params: Mapping[str, str]) -> Listing:
    """The filtered page the query string asks for; times are read in the site's time zone."""
    form = IncidentFilters(params, site=site)
    with timezone.override(ZoneInfo(site.timezone)):
        form.is_valid()
    qs = site.incidents.filter(form.conditions()).select_related("camera", "rule", "assignee")
    size = getattr(form, "cleaned_data", {}).get("per") or PAGE_SIZES[0]
    page = keyset_page(qs, size, after=Cursor.decode(params.get("after")), before=Cursor.decode(params.get("before")))
    kept = {k: v for k, v in params.items() if k not in ("after", "before") and v}
    return Listing(form, page, urlencode(kept))


@dataclass(frozen=True)
class TimelineRow:
    """One event on the incident's timeline; seconds are relative to the incident's start."""

    event: Event
    start_s: float
    end_s: float
    left_pct: float  # where its bar starts and how wide it is, as shares of the whole span
    width_pct: float


def timeline_bounds(incident: Incident, events: Sequence[Event]) -> tuple[datetime, datetime]:
    """The span the timeline draws: the incident's and every event's, whichever is wider."""
    first = min([incident.started_at, *(e.segment_start for e in events)])
    last = max([incident.last_seen_at, *(e.segment_end for e in events)])
    return first, last


def timeline(incident: Incident, events: list[Event]) -> list[TimelineRow]:
    t0 = incident.started_at
    first, last = timeline_bounds(incident, events)
    span = max((last - first).total_seconds(), 1e-3)

    def pct(at: datetime) -> float:
        return round(100 * (at - first).total_seconds() / span, 2)

    return [
        TimelineRow(
            event=e,
            start_s=(e.segment_start - t0).total_seconds(),
            end_s=(e.segment_end - t0).total_seconds(),
            left_pct=pct(e.segment_start),
            width_pct=max(pct(e.segment_end) - pct(e.segment_start), 0.5),
        )
        for e in events
    ]
