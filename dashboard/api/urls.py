"""/api/v1/ (JSON), /api/v1/schema/ (OpenAPI 3) and /api/docs/ (Swagger UI, served locally)."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from dashboard.api import views

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False  # the schema is the index
# No ".json" twins of every route: JSON is the only format, and the twins of @action routes
# answered 500 (DRF passes `format` to handlers that do not take it).
router.include_format_suffixes = False
router.register("sites", views.SiteViewSet, basename="site")
router.register("cameras", views.CameraViewSet, basename="camera")
router.register("zones", views.ZoneViewSet, basename="zone")
router.register("rules", views.AlertRuleViewSet, basename="rule")
router.register("channels", views.NotificationChannelViewSet, basename="channel")
router.register("incidents", views.IncidentViewSet, basename="incident")
router.register("events", views.EventViewSet, basename="event")
router.register("deliveries", views.DeliveryViewSet, basename="delivery")
router.register("feedback/false-alarms", views.FalseAlarmFeedbackViewSet, basename="false-alarm")

app_name = "api"

urlpatterns = [
    path("v1/", include(router.urls)),
    path("v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its init script from a URL: no inline script for the CSP to allow.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
]
