"""Celery tasks: thin wrappers that take primary keys and call one service each.

Each task imports its service inside its body, and services import the tasks they send
(``from tenants.tasks import sync_tenant as sync_tenant_task``), so this module imports
no service at all and the two never form an import cycle.
"""

from celery import shared_task
from django.conf import settings

from portal.logging import run_context
from tenants.graph import GraphError
from tenants.models import RevokeRequest

SYNC_MAX_RETRIES = 3
REVOKE_MAX_RETRIES = 5
NOTIFY_MAX_RETRIES = 5
# The revoke task's limits. A request RUNNING for longer than the hard limit has lost its
# worker (the limit would have killed it), so another run may take it over.
REVOKE_SOFT_TIME_LIMIT = settings.REVOKE_TASK_SOFT_TIME_LIMIT
REVOKE_TIME_LIMIT = settings.REVOKE_TASK_TIME_LIMIT


@shared_task(acks_late=True)
def dispatch_due_syncs() -> int:
    """Every minute (beat): sweep up after dead workers, then queue one sync per tenant
    that is due; returns how many were queued."""
    from tenants.revokes import revoke_requests_resume_abandoned
    from tenants.services import (
        sync_runs_fail_abandoned,
        sync_runs_queue_due,
        sync_runs_resend_queued,
    )

    sync_runs_fail_abandoned()
    sync_runs_resend_queued()
    revoke_requests_resume_abandoned()
    return sync_runs_queue_due()


@shared_task(bind=True, acks_late=True, max_retries=SYNC_MAX_RETRIES)
def sync_tenant(self, run_id: int) -> str:
    from tenants.services import sync_run_again
    from tenants.sync import sync_run_execute

    with run_context(f"sync-{run_id}"):
        try:
            run = sync_run_execute(run_id=run_id)
        except GraphError as exc:
            if not exc.retryable or self.request.retries >= self.max_retries:
                return "failed"
            # The failed attempt stays in the history; a fresh run tries again later.
            retry_run = sync_run_again(run_id=run_id)
            if retry_run is None:
                return "failed"
            raise self.retry(args=(retry_run.pk,), countdown=60 * 2**self.request.retries) from exc
        return run.status


@shared_task(
    bind=True,
    acks_late=True,
    max_retries=REVOKE_MAX_RETRIES,
    soft_time_limit=REVOKE_SOFT_TIME_LIMIT,
    time_limit=REVOKE_TIME_LIMIT,
)
def execute_revoke(self, revoke_id: int) -> str:
    """Carry out one revoke, restore or grant request; throttling and outages are retried
    later."""
    from tenants.revokes import (
        revoke_request_execute,
        revoke_request_give_up,
        revoke_request_resync,
    )

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
        revoke_request_resync(revoke=revoke)
        return revoke.status


# A mail server's refusals and outages are OSErrors (smtplib.SMTPException is one).
@shared_task(
    acks_late=True, autoretry_for=(OSError,), max_retries=NOTIFY_MAX_RETRIES, retry_backoff=60
)
def notify_revoke_requests(revoke_ids: list[int]) -> int:
    """Mail a tenant's admins that readers ask for these revokes."""
    from tenants.notifications import revoke_requests_notify

    return revoke_requests_notify(revoke_ids=revoke_ids)


@shared_task(
    acks_late=True, autoretry_for=(OSError,), max_retries=NOTIFY_MAX_RETRIES, retry_backoff=60
)
def notify_revoke_decision(revoke_id: int) -> str:
    """Mail the requester of a revoke whether an admin approved or denied it, and who."""
    from tenants.notifications import revoke_decision_notify

    return revoke_decision_notify(revoke_id=revoke_id)
