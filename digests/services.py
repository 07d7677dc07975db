"""Subscriptions, the signed unsubscribe link, and sending each e-mail exactly once."""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from email.utils import make_msgid
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone

from digests.content import (
    Item,
    control_plane_items,
    digest_build,
    newest_finished_run,
    portal_url,
)
from digests.models import DigestDelivery, Subscription
from portal.logging import failure_text
from portal.models import User
from portal.text import plain
from tenants.access import role_in
from tenants.models import SyncRun, Tenant
from tenants.selectors import run_diff

logger = logging.getLogger(__name__)

UNSUBSCRIBE_SALT = "digests.unsubscribe"
Frequency = Subscription.Frequency


# --- subscriptions -------------------------------------------------------------------------


def subscription_set(
    *, user: User, tenant: Tenant, frequency: str, all_quiet: bool
) -> Subscription:
    """Save a user's choice for a tenant. Switching e-mails on starts from now: the first
    digest tells what happens from here, not the tenant's history."""
    subscription = Subscription.objects.filter(user=user, tenant=tenant).first()
    if subscription is None:
        subscription = Subscription(user=user, tenant=tenant, frequency=Frequency.OFF)
    if subscription.frequency == Frequency.OFF and frequency != Frequency.OFF:
        subscription.starts_after_run = newest_finished_run(tenant)
        subscription.started_at = timezone.now()
    elif subscription.pk is None:
        subscription.started_at = timezone.now()
    subscription.frequency = frequency
    subscription.all_quiet = all_quiet
    subscription.save()
    return subscription


def unsubscribe_token(subscription: Subscription) -> str:
    # No expiry: an unsubscribe link must work in an e-mail of any age.
    return signing.dumps(subscription.pk, salt=UNSUBSCRIBE_SALT)


def subscription_for_token(token: str) -> Subscription | None:
    """The subscription a link was made for; None for a tampered or unknown one."""
    try:
        pk = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    return Subscription.objects.select_related("tenant").filter(pk=pk).first()


def subscription_unsubscribe(*, subscription: Subscription) -> None:
    Subscription.objects.filter(pk=subscription.pk).update(frequency=Frequency.OFF)


def _recipient(subscription: Subscription) -> str | None:
    """Whom to mail: the user, if they may still see the tenant (roles change in Entra)
    and have an address."""
    user = subscription.user
    if subscription.frequency == Frequency.OFF or not user.email:
        return None
    if role_in(user, subscription.tenant) is None:
        return None
    return user.email


# --- sending, once ----------------------------------------------------------------------


def _claim(subscription: Subscription, kind: str, period: str) -> DigestDelivery | None:
    """The delivery row to send, now ours; None when it is sent, another worker sends it,
    or it failed ``MAX_ATTEMPTS`` times.

    A failed row is claimed again by the next attempt (the task's retry). A claim older
    than the task's hard time limit belongs to a worker that died before it finished: it
    is taken over (the e-mail may then go out twice, never zero times).
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            return DigestDelivery.objects.create(
                subscription=subscription, kind=kind, period=period, claimed_at=now
            )
    except IntegrityError:
        stale = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
        rows = DigestDelivery.objects.filter(
            Q(status=DigestDelivery.Status.FAILED)
            | Q(status=DigestDelivery.Status.SENDING, claimed_at__lt=stale),
            subscription=subscription,
            kind=kind,
            period=period,
            attempts__lt=DigestDelivery.MAX_ATTEMPTS,
        )
        claimed = rows.update(
            status=DigestDelivery.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1
        )
        if claimed:
            return DigestDelivery.objects.get(subscription=subscription, kind=kind, period=period)
        return None


def _unclaimed(subscription: Subscription, kind: str, period: str) -> str:
    """Why ``_claim`` gave no row, said as the task's result."""
    failed = DigestDelivery.objects.filter(
        subscription=subscription, kind=kind, period=period, status=DigestDelivery.Status.FAILED
    )
    return "failed too often" if failed.exists() else "already sent"


def _send_claimed(delivery: DigestDelivery, build: Callable[[str], EmailMultiAlternatives]) -> None:
    """Send ``build(message_id)`` for a claimed delivery and mark it sent. On failure the
    row is marked failed with the error, and the exception goes on to the task, whose
    retry claims the row again."""
    message_id = make_msgid(domain=urlsplit(settings.PORTAL_URL).hostname or "localhost")
    try:
        build(message_id).send()
    except Exception as exc:
        DigestDelivery.objects.filter(pk=delivery.pk).update(
            status=DigestDelivery.Status.FAILED, error=failure_text(exc)
        )
        raise
    DigestDelivery.objects.filter(pk=delivery.pk).update(
        status=DigestDelivery.Status.SENT, sent_at=timezone.now(), message_id=message_id, error=""
    )


def _message(
    *,
    subscription: Subscription,
    to: str,
    subject: str,
    template: str,
    context: dict[str, Any],
    message_id: str,
) -> EmailMultiAlternatives:
    """Both parts from ``email/<template>.txt`` and ``.html``, with the one-click
    unsubscribe headers of RFC 8058 that mail clients show as an "Unsubscribe" button."""
    token = unsubscribe_token(subscription)
    context = {
        **context,
        "subscription": subscription,
        "unsubscribe_url": portal_url("digests:unsubscribe", token),
        "subscriptions_url": portal_url("digests:subscriptions"),
    }
    message = EmailMultiAlternatives(
        # Names in it come from Graph: a CR/LF would abort the send, a bidi override
        # would disguise it.
        subject=f"[Permission Portal] {plain(subject)}",
        body=render_to_string(f"email/{template}.txt", context),
        to=[to],
        headers={
            "Message-ID": message_id,
            "List-Unsubscribe": f"<{context['unsubscribe_url']}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            # Out-of-office replies are not sent to automatic e-mails (RFC 3834).
            "Auto-Submitted": "auto-generated",
        },
    )
    message.attach_alternative(render_to_string(f"email/{template}.html", context), "text/html")
    return message


def digest_send(*, subscription_id: int, period: str) -> str:
    """Send one subscription's digest for ``period``, at most once; says what happened."""
    subscription = (
        Subscription.objects.select_related("user", "tenant").filter(pk=subscription_id).first()
    )
    if subscription is None:
        return "gone"
    to = _recipient(subscription)
    if to is None:
        return "no recipient"
    kind = DigestDelivery.Kind.DIGEST
    sent = DigestDelivery.objects.filter(
        subscription=subscription, kind=kind, period=period, status=DigestDelivery.Status.SENT
    )
    if sent.exists():
        return "already sent"
    previous = (
        DigestDelivery.objects.filter(
            subscription=subscription, kind=kind, status=DigestDelivery.Status.SENT
        )
        .order_by("-up_to_run", "-sent_at")
        .first()
    )
    floor = max(subscription.starts_after_run, previous.up_to_run if previous else 0)
    since = subscription.started_at
    if previous is not None and previous.sent_at is not None:
        since = max(since, previous.sent_at)
    digest = digest_build(
        tenant=subscription.tenant,
        floor=floor,
        up_to_run=max(floor, newest_finished_run(subscription.tenant)),
        previous_findings=previous.findings if previous else None,
        since=since,
    )
    all_quiet = subscription.frequency == Frequency.WEEKLY and subscription.all_quiet
    if digest.is_empty and not all_quiet:
        return "nothing to say"
    delivery = _claim(subscription, kind, period)
    if delivery is None:
        return _unclaimed(subscription, kind, period)
    DigestDelivery.objects.filter(pk=delivery.pk).update(
        up_to_run=digest.up_to_run, findings=digest.findings
    )
    _send_claimed(
        delivery,
        lambda message_id: _message(
            subscription=subscription,
            to=to,
            subject=digest.subject,
            template="digest",
            context={"digest": digest, "since_run": floor},
            message_id=message_id,
        ),
    )
    return "sent"


def controlplane_additions(run: SyncRun) -> list[Item]:
    """The ControlPlane-tier grants that ``run`` found and the run before did not have."""
    return control_plane_items(run.tenant, run_diff(run).added)


def alert_send(*, subscription_id: int, run_id: int) -> str:
    """Alert one subscriber that ``run`` found new ControlPlane grants, at most once."""
    subscription = (
        Subscription.objects.select_related("user", "tenant").filter(pk=subscription_id).first()
    )
    if subscription is None:
        return "gone"
    to = _recipient(subscription)
    if to is None:
        return "no recipient"
    run = SyncRun.objects.select_related("tenant").get(pk=run_id)
    items = controlplane_additions(run)
    if not items:
        return "nothing to say"
    kind, period = DigestDelivery.Kind.ALERT, f"sync-{run.pk}"
    delivery = _claim(subscription, kind, period)
    if delivery is None:
        return _unclaimed(subscription, kind, period)
    tenant = subscription.tenant
    what = items[0].text.split(" (")[0] if len(items) == 1 else f"{len(items)} permissions"
    _send_claimed(
        delivery,
        lambda message_id: _message(
            subscription=subscription,
            to=to,
            subject=f"{tenant.name}: ControlPlane permission granted: {what}",
            template="controlplane_alert",
            context={
                "tenant": tenant,
                "run": run,
                "items": items,
                "run_url": portal_url("tenants:run-detail", tenant.tenant_id, run.pk),
            },
            message_id=message_id,
        ),
    )
    return "sent"


def digest_period(frequency: str, now: datetime | None = None) -> str:
    """The period a scheduled digest is for: one e-mail per day, or per ISO week."""
    today = timezone.localdate(now)
    if frequency == Frequency.WEEKLY:
        year, week, _ = today.isocalendar()
        return f"weekly-{year}-W{week:02d}"
    return f"daily-{today.isoformat()}"
