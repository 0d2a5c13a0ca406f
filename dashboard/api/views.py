"""API views: scope to the user's sites, validate, call services. No domain logic here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.db.models import Model
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from dashboard.api import filters
from dashboard.api import serializers as s
from dashboard.api.pagination import IncidentsNewestFirst
from dashboard.api.scoping import SiteScopedViewSet
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
    Role,
    Site,
    Zone,
)

ADMIN_WRITES = {"create": Role.ADMIN, "update": Role.ADMIN, "partial_update": Role.ADMIN, "destroy": Role.ADMIN}


@extend_schema_view(
    list=extend_schema(summary="Sites you are a member of, with your role"),
    retrieve=extend_schema(summary="One of your sites"),
)
class SiteViewSet(SiteScopedViewSet, viewsets.ReadOnlyModelViewSet):
    queryset = Site.objects.all()
    serializer_class = s.SiteSerializer
    site_path = "pk"

    @extend_schema(
        operation_id="sites_members",
        summary="Members of the site (who an incident can be assigned to)",
        responses=s.MemberSerializer(many=True),
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def members(self, request: Request, pk: str | None = None) -> Response:
        site = self.get_object()
        members = Membership.objects.filter(site=site).select_related("user").order_by("user__username")
        return Response(s.MemberSerializer(members, many=True).data)


class ConfigViewSet(SiteScopedViewSet, viewsets.ModelViewSet):
    """Members read; the site's admins create, change and delete (each change is audited)."""

    action_roles = ADMIN_WRITES
    audit_name = ""  # e.g. "camera": audit actions read camera.created / camera.updated / camera.deleted

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        self.require_role_for_new(serializer.validated_data)
        with transaction.atomic():
            obj = serializer.save()
            self._audit("created", obj)

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        assert isinstance(serializer, serializers.Serializer)
        with transaction.atomic():
            obj = serializer.save()
            sent = sorted(set(serializer.initial_data) & set(serializer.fields))  # what the client meant to change
            self._audit("updated", obj, fields=sent)

    def perform_destroy(self, instance: Model) -> None:
        with transaction.atomic():
            self._audit("deleted", instance, name=str(instance))
            instance.delete()

    def _audit(self, verb: str, obj: Model, **details: Any) -> None:
        site = Site.objects.get(pk=self.site_id_of(obj))
        services.audit(self.request.user, site, f"{self.audit_name}.{verb}", obj, **details)


@extend_schema_view(destroy=extend_schema(responses={204: None, 409: s.ErrorSerializer}))
class CameraViewSet(ConfigViewSet):
    queryset = Camera.objects.all()
    serializer_class = s.CameraSerializer
    filterset_class = filters.SiteFilter
    audit_name = "camera"

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        super().perform_update(serializer)
        # As in the admin: saving is how an admin says "I fixed it", so a FAILED source is retried.
        services.camera_saved(serializer.instance.pk, self.request.user)  # type: ignore[union-attr]

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        camera = self.get_object()
        # Deleting a camera would cascade to its incidents and events: the history and the
        # false-alarm feedback data. Disabling keeps them.
        if camera.incidents.exists():
            detail = "this camera has incidents; disable it (enabled=false) to keep their history"
            return Response({"detail": detail}, status=status.HTTP_409_CONFLICT)
        return super().destroy(request, *args, **kwargs)


class ZoneViewSet(ConfigViewSet):
    queryset = Zone.objects.select_related("camera")
    serializer_class = s.ZoneSerializer
    filterset_class = filters.ZoneFilter
    site_path = "camera__site"
    audit_name = "zone"


class AlertRuleViewSet(ConfigViewSet):
    queryset = AlertRule.objects.prefetch_related("channels")
    serializer_class = s.AlertRuleSerializer
    filterset_class = filters.RuleFilter
    audit_name = "rule"


class NotificationChannelViewSet(ConfigViewSet):
    queryset = NotificationChannel.objects.all()
    serializer_class = s.NotificationChannelSerializer
    filterset_class = filters.SiteFilter
    audit_name = "channel"


def _acts(name: str, summary: str, request: type[serializers.Serializer], conflict: bool = True) -> Any:
    """Schema of an incident action: its input, the incident back, and why it can be refused."""
    responses: dict[int, Any] = {200: s.IncidentSerializer, 403: OpenApiResponse(description="role too low")}
    responses[409 if conflict else 400] = s.ErrorSerializer
    return extend_schema(operation_id=f"incidents_{name}", summary=summary, request=request, responses=responses)


OPERATOR_ACTIONS = ("acknowledge", "resolve", "false_alarm", "assign", "notes")


class IncidentViewSet(SiteScopedViewSet, viewsets.ReadOnlyModelViewSet):
    """Incidents of your sites. Members read; operators and admins act (each action is audited)."""

    # Every change goes through a monitor.services verb: one transaction, an audit entry, a live
    # push after commit.

    queryset = Incident.objects.select_related("camera", "rule", "assignee")
    serializer_class = s.IncidentSerializer
    filterset_class = filters.IncidentFilter
    pagination_class = IncidentsNewestFirst
    action_roles = dict.fromkeys(OPERATOR_ACTIONS, Role.OPERATOR)

    @_acts("acknowledge", "Acknowledge an open incident", s.TransitionInput)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk: str | None = None) -> Response:
        return self._act(s.TransitionInput, lambda i, d: services.acknowledge_incident(i, request.user, d["note"]))

    @_acts("resolve", "Resolve an open or acknowledged incident", s.TransitionInput)
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: str | None = None) -> Response:
        return self._act(s.TransitionInput, lambda i, d: services.resolve_incident(i, request.user, d["note"]))

    @_acts("false_alarm", "Mark an incident a false alarm; its events stay, as training feedback", s.TransitionInput)
    @action(detail=True, methods=["post"], url_path="false-alarm")
    def false_alarm(self, request: Request, pk: str | None = None) -> Response:
        return self._act(
            s.TransitionInput, lambda i, d: services.resolve_incident(i, request.user, d["note"], false_alarm=True)
        )

    @_acts("assign", "Assign to an operator or admin of the site (null unassigns)", s.AssignInput, conflict=False)
    @action(detail=True, methods=["post"])
    def assign(self, request: Request, pk: str | None = None) -> Response:
        return self._act(
            s.AssignInput, lambda i, d: services.assign_incident(i, request.user, d["assignee"]), refused="assignee"
        )

    @_acts("add_note", "Append a note (author and time are recorded)", s.NoteInput, conflict=False)
    @action(detail=True, methods=["post"])
    def notes(self, request: Request, pk: str | None = None) -> Response:
        return self._act(s.NoteInput, lambda i, d: services.add_note(i, request.user, d["text"]), refused="text")

    @extend_schema(
        operation_id="incidents_history",
        summary="The incident's audit trail: who did what, when",
        responses=s.AuditEntrySerializer(many=True),
    )
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def history(self, request: Request, pk: str | None = None) -> Response:
        incident = self.get_object()
        entries = AuditLog.objects.filter(target_type="Incident", target_id=str(incident.pk)).select_related("actor")
        return Response(s.AuditEntrySerializer(entries.order_by("at", "pk"), many=True).data)

    def _act(
        self,
        input_class: type[serializers.Serializer],
        verb: Callable[[int, dict[str, Any]], Incident],
        refused: str | None = None,
    ) -> Response:
        """Run a service verb on the incident. A refusal is 409 for a transition the incident's
        state forbids, or 400 on the `refused` field for bad input."""
        incident = self.get_object()
        data = input_class(data=self.request.data)
        data.is_valid(raise_exception=True)
        try:
            verb(incident.pk, dict(data.validated_data))
        except services.ServiceError as exc:
            if refused:
                return Response({refused: [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(self.get_serializer(self.get_queryset().get(pk=incident.pk)).data)


class EventViewSet(SiteScopedViewSet, viewsets.ReadOnlyModelViewSet):
    queryset = Event.objects.select_related("camera", "incident")
    serializer_class = s.EventSerializer
    filterset_class = filters.EventFilter
    site_path = "camera__site"


@extend_schema_view(
    list=extend_schema(
        summary="Events of incidents marked false alarm: training feedback",
        description="Tubes (track, boxes over time, actor class, action, score) that operators judged "
        "false alarms. Marking a false alarm never deletes events, and retention keeps these.",
    )
)
class FalseAlarmFeedbackViewSet(SiteScopedViewSet, mixins.ListModelMixin, viewsets.GenericViewSet):
    queryset = Event.objects.select_related("camera", "incident").filter(incident__status=Incident.Status.FALSE_ALARM)
    serializer_class = s.EventSerializer
    filterset_class = filters.FalseAlarmFilter
    site_path = "camera__site"


class DeliveryViewSet(SiteScopedViewSet, viewsets.ReadOnlyModelViewSet):
    queryset = Delivery.objects.select_related("incident")
    serializer_class = s.DeliverySerializer
    filterset_class = filters.DeliveryFilter
    site_path = "incident__site"
