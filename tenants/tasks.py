"""Celery tasks: thin wrappers that take primary keys and call one service each."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.logging import run_context
from tenants.graph import GraphError
from tenants.models import RevokeRequest, SyncRun, Tenant
from tenants.revokes import (
    REVOKE_SOFT_TIME_LIMIT,
    REVOKE_TIME_LIMIT,
    revoke_request_execute,
    revoke_request_give_up,
)
from tenants.services import sync_run_queue
from tenants.sync import sync_run_execute

logger = logging.getLogger(__name__)

SYNC_MAX_RETRIES = 3
REVOKE_MAX_RETRIES = 5


@shared_task(acks_late=True)
def dispatch_due_syncs() -> int:
    """Queue one sync per tenant that is due; returns how many were queued."""
    fail_abandoned_runs()
    resume_abandoned_revokes()
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
def sync_tenant(self, run_id: int) -> str:
    with run_context(f"sync-{run_id}"):
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


@shared_task(
    bind=True,
    acks_late=True,
    max_retries=REVOKE_MAX_RETRIES,
    soft_time_limit=REVOKE_SOFT_TIME_LIMIT,
    time_limit=REVOKE_TIME_LIMIT,
)
def execute_revoke(self, revoke_id: int) -> str:
    """Carry out one revoke or restore request; throttling and outages are retried later."""
    with run_context(f"revoke-{revoke_id}"):
        try:
            revoke = revoke_request_execute(revoke_id=revoke_id)
        except GraphError as exc:
            if not exc.retryable:
                return RevokeRequest.Status.FAILED  # recorded on the request
            if self.request.retries >= self.max_retries:
                return revoke_request_give_up(revoke_id=revoke_id).status
            # The request went back to QUEUED with the error; the retry claims it again.
            raise self.retry(countdown=30 * 2**self.request.retries) from exc
        if revoke.status == RevokeRequest.Status.SUCCEEDED:
            # The tenant's pages show grants as the last sync saw them: sync again so they
            # show the change (the one-open-sync rule makes a burst of revokes one sync).
            run = sync_run_queue(tenant=revoke.tenant, trigger=SyncRun.Trigger.SCHEDULE)
            if run is not None:
                sync_tenant.delay_on_commit(run.pk)
        return revoke.status


def resume_abandoned_revokes() -> int:
    """Queue again the requests whose worker died mid-way (acks_late redelivers the
    message, but it may arrive while the request still looks alive); the execution
    takes over only those running for longer than the task's hard time limit."""
    cutoff = timezone.now() - timedelta(seconds=REVOKE_TIME_LIMIT)
    abandoned = list(
        RevokeRequest.objects.filter(
            status=RevokeRequest.Status.RUNNING, started_at__lt=cutoff
        ).values_list("pk", flat=True)
    )
    for revoke_id in abandoned:
        execute_revoke.delay_on_commit(revoke_id)
    return len(abandoned)
