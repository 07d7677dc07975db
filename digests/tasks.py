"""Celery tasks for e-mails: thin wrappers that take primary keys and call one service.

Each e-mail is one task, so a mail server that fails for one recipient delays only that
e-mail; its retry sends nothing that went out already (digests.services claims each one).
"""

from celery import shared_task

from digests.models import DigestDelivery, Subscription
from digests.services import (
    alert_send,
    controlplane_additions,
    digest_period,
    digest_send,
)
from tenants.models import SyncRun

# The first send and its retries: each claims the e-mail's row again (digests.services).
EMAIL_MAX_RETRIES = DigestDelivery.MAX_ATTEMPTS - 1
Frequency = Subscription.Frequency


@shared_task(acks_late=True)
def send_digests(frequency: str) -> int:
    """Beat's daily or weekly run: one digest task per subscription of that frequency."""
    period = digest_period(frequency)
    subscriptions = Subscription.objects.filter(frequency=frequency).values_list("pk", flat=True)
    for subscription_id in subscriptions:
        send_digest.delay(subscription_id, period)
    return len(subscriptions)


@shared_task(acks_late=True)
def after_sync(run_id: int) -> None:
    """Queued by each sync that succeeds: ControlPlane alerts, then after-sync digests."""
    run = SyncRun.objects.select_related("tenant").get(pk=run_id)
    subscriptions = Subscription.objects.filter(tenant=run.tenant).exclude(frequency=Frequency.OFF)
    if controlplane_additions(run):
        for subscription_id in subscriptions.values_list("pk", flat=True):
            send_alert.delay(subscription_id, run_id)
    after_each = subscriptions.filter(frequency=Frequency.AFTER_SYNC)
    for subscription_id in after_each.values_list("pk", flat=True):
        send_digest.delay(subscription_id, f"sync-{run_id}")


# A mail server's refusals and outages are OSErrors (smtplib.SMTPException is one).
@shared_task(
    acks_late=True,
    autoretry_for=(OSError,),
    max_retries=EMAIL_MAX_RETRIES,
    retry_backoff=60,
)
def send_digest(subscription_id: int, period: str) -> str:
    return digest_send(subscription_id=subscription_id, period=period)


@shared_task(
    acks_late=True,
    autoretry_for=(OSError,),
    max_retries=EMAIL_MAX_RETRIES,
    retry_backoff=60,
)
def send_alert(subscription_id: int, run_id: int) -> str:
    return alert_send(subscription_id=subscription_id, run_id=run_id)


@shared_task(acks_late=True)
def send_justification_reviews() -> int:
    """Beat's daily run: one review e-mail task per application and reviewer whose
    justifications expire within JUSTIFICATION_REVIEW_DAYS (digests.reviews)."""
    from digests.reviews import justification_reviews_queue

    return justification_reviews_queue()


@shared_task(
    acks_late=True,
    autoretry_for=(OSError,),
    max_retries=EMAIL_MAX_RETRIES,
    retry_backoff=60,
)
def send_justification_review(justification_ids: list[int]) -> str:
    from digests.reviews import justification_review_send

    return justification_review_send(justification_ids=justification_ids)
