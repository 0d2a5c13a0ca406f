from django.apps import AppConfig


class MonitorConfig(AppConfig):
    name = "monitor"
    verbose_name = "Argus monitoring"
    default_auto_field = "django.db.models.BigAutoField"
