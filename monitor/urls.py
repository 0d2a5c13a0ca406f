from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from dashboard.auth import LoginView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/", include("dashboard.api.urls")),
    path("", include("dashboard.urls")),
]

# 503 with Retry-After while the database is unreachable; no traceback either way.
handler500 = "dashboard.errors.server_error"
handler400 = "dashboard.errors.bad_request"  # JSON for the API (e.g. a body over the upload limit)
