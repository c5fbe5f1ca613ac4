"""Celery application. With REDIS_URL unset, tasks run eagerly in-process (the embedded default)."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "netsec.settings")

app = Celery("netsec")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
