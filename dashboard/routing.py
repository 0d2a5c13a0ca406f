from django.urls import path

from dashboard.consumers import SiteConsumer

websocket_urlpatterns = [
    path("ws/sites/<int:site_id>/", SiteConsumer.as_asgi()),
]
