"""The OpenAPI schema generates without warnings, documents every endpoint, and every model
field is either in the API or deliberately hidden."""

from __future__ import annotations

import re

import pytest
import yaml
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework import serializers

from dashboard.api import serializers as api_serializers
from monitor.models import AlertRule, Camera, Delivery, Event, Incident, NotificationChannel, Site, Zone

EXPOSED = {
    Site: api_serializers.SiteSerializer,
    Camera: api_serializers.CameraSerializer,
    Zone: api_serializers.ZoneSerializer,
    AlertRule: api_serializers.AlertRuleSerializer,
    NotificationChannel: api_serializers.NotificationChannelSerializer,
    Incident: api_serializers.IncidentSerializer,
    Event: api_serializers.EventSerializer,
    Delivery: api_serializers.DeliverySerializer,
}


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("schema") / "schema.yml"
    # --fail-on-warn: a view or field spectacular cannot describe fails the build, not the docs.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    return yaml.safe_load(out.read_text())


def _api_routes(resolver: URLResolver | None = None, prefix: str = "") -> set[str]:
    routes: set[str] = set()
    for entry in (resolver or get_resolver()).url_patterns:
        pattern = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            routes |= _api_routes(entry, pattern)
        elif isinstance(entry, URLPattern) and pattern.startswith("api/v1/") and "schema" not in pattern:
            routes.add(pattern)
    return routes


def _as_openapi_path(route: str) -> str:
    route = re.sub(r"\(\?P<\w+>[^)]*\)", "{id}", route)  # DRF's router: (?P<pk>[^/.]+)
    return "/" + route.replace("^", "").replace("$", "")


def test_the_schema_validates_without_warnings_and_covers_every_endpoint(schema: dict) -> None:
    routes = {_as_openapi_path(r) for r in _api_routes() if "(?P<format>" not in r}
    assert routes and routes == set(schema["paths"])
    operation_ids = [op["operationId"] for path in schema["paths"].values() for op in path.values()]
    assert len(operation_ids) == len(set(operation_ids))
    assert {"incidents_acknowledge", "incidents_false_alarm", "incidents_assign", "incidents_add_note"} <= set(
        operation_ids
    )


def test_the_schema_never_shows_a_webhook_secret_in_a_response(schema: dict) -> None:
    components = schema["components"]["schemas"]
    assert "secret" not in components["NotificationChannel"]["properties"]
    assert "secret" in components["NotificationChannelRequest"]["properties"]


@pytest.mark.parametrize("model", list(EXPOSED), ids=lambda m: m.__name__)
def test_every_model_field_is_in_the_api_or_deliberately_hidden(model: type) -> None:
    """A field added to a model fails here until someone decides whether clients see it."""
    meta_fields = set(EXPOSED[model].Meta.fields)
    hidden = api_serializers.HIDDEN.get(model, set())
    model_fields = {f.name for f in model._meta.get_fields() if f.concrete}
    assert model_fields - meta_fields - hidden == set()


def test_the_schema_and_docs_are_served_without_a_cdn(db: None) -> None:
    client = Client()
    schema = client.get("/api/v1/schema/")
    assert schema.status_code == 200 and b"/api/v1/incidents/" in schema.content
    docs = client.get("/api/docs/").content.decode()
    assert "cdn" not in docs.lower() and "swagger-ui" in docs
    # Its init script is a file of its own (no inline script under the CSP), and points at our schema.
    script = client.get("/api/docs/", {"script": ""})
    assert script["Content-Type"].startswith("application/javascript")
    assert "/api/v1/schema/" in script.content.decode() and "cdn" not in script.content.decode().lower()


def test_hidden_fields_are_not_serializer_fields() -> None:
    for model, names in api_serializers.HIDDEN.items():
        serializer = EXPOSED[model]()
        visible = {n for n, f in serializer.fields.items() if not isinstance(f, serializers.HiddenField)}
        readable = {n for n in visible if not serializer.fields[n].write_only}
        assert not (names & readable), model


def test_the_docs_page_loads_its_assets_from_our_static_files(db: None) -> None:
    docs = Client().get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in docs
