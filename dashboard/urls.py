from django.urls import path

from dashboard import activity, editor, views

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    path("sites/<int:site_id>/", views.site_wall, name="site"),
    path("sites/<int:site_id>/state.json", views.site_state, name="site-state"),
    path("sites/<int:site_id>/incidents/", views.incident_list, name="incidents"),
    path("sites/<int:site_id>/cameras/", views.camera_health, name="cameras"),
    path("sites/<int:site_id>/settings/", views.site_settings, name="site-settings"),
    path("sites/<int:site_id>/activity/", activity.activity_page, name="activity"),
    path("sites/<int:site_id>/activity.json", activity.activity_data, name="activity-data"),
    path("cameras/<int:camera_id>/snapshot.jpg", views.camera_snapshot, name="camera-snapshot"),
    path("cameras/<int:camera_id>/zones/", editor.zone_editor, name="zone-editor"),
    path("cameras/<int:camera_id>/zones/preview.json", editor.rule_preview, name="rule-preview"),
    path("incidents/<int:incident_id>/", views.incident_detail, name="incident"),
    path("incidents/<int:incident_id>/poster.jpg", views.incident_poster, name="incident-poster"),
    path("incidents/<int:incident_id>/clip.mp4", views.incident_clip, name="incident-clip"),
    path("incidents/<int:incident_id>/overlay.json", views.incident_overlay, name="incident-overlay"),
    path("incidents/<int:incident_id>/export.zip", views.incident_export, name="incident-export"),
    path("incidents/<int:incident_id>/<str:verb>/", views.incident_action, name="incident-action"),
]
