from django.urls import path

from dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    path("sites/<int:site_id>/", views.site_wall, name="site"),
    path("sites/<int:site_id>/state.json", views.site_state, name="site-state"),
    path("cameras/<int:camera_id>/snapshot.jpg", views.camera_snapshot, name="camera-snapshot"),
    path("incidents/<int:incident_id>/", views.incident_detail, name="incident"),
    path("incidents/<int:incident_id>/poster.jpg", views.incident_poster, name="incident-poster"),
    path("incidents/<int:incident_id>/clip.mp4", views.incident_clip, name="incident-clip"),
    path("incidents/<int:incident_id>/<str:verb>/", views.incident_action, name="incident-action"),
]
