"""The Celery application. Tasks live in each app's tasks.py and are found automatically."""

import logging.config
import os

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def _use_django_logging(**kwargs: object) -> None:
    # Otherwise Celery replaces the root handlers with its own: workers' lines would be
    # neither JSON nor tagged with run ids, nor redacted.
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
