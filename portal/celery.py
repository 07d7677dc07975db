"""The Celery application. Tasks live in each app's tasks.py and are found automatically."""

import logging.config
import os
from typing import Any

from celery import Celery
from celery.signals import setup_logging
from django.db import transaction

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def send_on_commit(task: Any, *args: Any, countdown: float | None = None) -> None:
    """Send ``task`` once the transaction commits; a broker that is down then is logged
    (Django's robust on_commit), not raised. The work it carries out is a row that stays
    QUEUED, which the every-minute sweep sends again (tenants.tasks.dispatch_due_syncs),
    whereas raising would fail what had committed: a sync applied and then marked
    failed, a revoke request saved and then answered with an error page."""

    def send() -> None:  # a named function: Django's log of a failed callback names it
        if countdown:
            task.apply_async(args=args, countdown=countdown)
        else:
            task.delay(*args)

    transaction.on_commit(send, robust=True)


@setup_logging.connect
def _use_django_logging(**kwargs: object) -> None:
    # Otherwise Celery replaces the root handlers with its own: workers' lines would be
    # neither JSON nor tagged with run ids, nor redacted.
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
