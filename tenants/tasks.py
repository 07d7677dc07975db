"""Celery tasks: thin wrappers that take primary keys and call one service each."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tenants.graph import GraphError
from tenants.models import SyncRun, Tenant
from tenants.services import sync_run_queue
from tenants.sync import sync_run_execute

logger = logging.getLogger(__name__)

SYNC_MAX_RETRIES = 3


@shared_task(acks_late=True)
def dispatch_due_syncs() -> int:
    """Queue one sync per tenant that is due; returns how many were queued."""
    fail_abandoned_runs()
    now = timezone.now()
    queued = 0
    for tenant in Tenant.objects.filter(status=Tenant.Status.ACTIVE, next_sync_at__lte=now):
        with transaction.atomic():
            run = sync_run_queue(tenant=tenant, trigger=SyncRun.Trigger.SCHEDULE)
            if run is None:
                continue  # one is queued or running already
            # Due again one interval from now, whatever this run's fate: a tenant that
            # keeps failing is not hammered every minute.
            Tenant.objects.filter(pk=tenant.pk).update(next_sync_at=now + tenant.sync_interval)
            sync_tenant.delay_on_commit(run.pk)
            queued += 1
    return queued


@shared_task(bind=True, acks_late=True, max_retries=SYNC_MAX_RETRIES)
def sync_tenant(self, run_id: int) -> str:  # noqa: ANN001 - Celery's bound task
    try:
        run = sync_run_execute(run_id=run_id)
    except GraphError as exc:
        if not exc.retryable or self.request.retries >= self.max_retries:
            return "failed"
        # The failed attempt stays in the history; a fresh run tries again later.
        tenant = SyncRun.objects.get(pk=run_id).tenant
        retry_run = sync_run_queue(tenant=tenant, trigger=SyncRun.Trigger.SCHEDULE)
        if retry_run is None:
            return "failed"
        raise self.retry(args=(retry_run.pk,), countdown=60 * 2**self.request.retries) from exc
    return run.status


def fail_abandoned_runs() -> int:
    """Close runs whose worker died: nothing else would ever end them.

    A run still open after twice the hard time limit cannot be alive (the limit would
    have killed it); its tenant could otherwise never sync again.
    """
    cutoff = timezone.now() - timedelta(seconds=2 * settings.CELERY_TASK_TIME_LIMIT)
    return SyncRun.objects.filter(
        status__in=[SyncRun.Status.QUEUED, SyncRun.Status.RUNNING], queued_at__lt=cutoff
    ).update(
        status=SyncRun.Status.FAILED,
        finished_at=timezone.now(),
        progress="",
        error="The worker running this sync stopped before it finished; the next sync starts afresh.",
    )
