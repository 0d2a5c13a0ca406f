"""Argus Django project and domain. The Celery app is loaded with Django so that tasks use it."""

from monitor.celery import app as celery_app

__all__ = ["celery_app"]
