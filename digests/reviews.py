"""Review e-mails: a justification about to expire asks its reviewer to keep it or revoke it.

Every day (beat, ``digests.tasks.send_justification_reviews``) the justifications that expire
within ``JUSTIFICATION_REVIEW_DAYS`` (7), or have expired, and whose grant the application
still holds, are mailed about: one e-mail per application and reviewer, to the reviewer
while they are a user of the tenant, else to the tenant's admins. Each justification in it
has two links into the portal, "keep another term" and "revoke"; each opens the
application's page with the choice to confirm, which posts (a link never changes anything).

Each expiry is mailed about once: the justification's ``reminded_at`` is claimed in the
database before the e-mail goes out (a retried or duplicated task finds it claimed), put
back when the send fails (the task's retry, or tomorrow's run, claims it again) and cleared
when the justification gets a new expiry. A worker killed between the claim and the send
loses that one e-mail; the application's page still shows the expiry.
"""

import logging
from collections import defaultdict
from datetime import date, datetime, timedelta
from email.utils import make_msgid
from urllib.parse import urlencode, urlsplit
from uuid import UUID

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone

from digests.content import portal_url
from digests.tasks import send_justification_review as send_justification_review_task
from portal.celery import send_on_commit
from tenants.audit import audit_record
from tenants.justifications import admin_addresses, held_slots, slot_of, tenant_users
from tenants.models import AuditEvent, Justification, ServicePrincipal, Tenant
from tenants.selectors import current_service_principal

logger = logging.getLogger(__name__)


def justification_reviews_due(*, today: date) -> list[list[int]]:
    """The justifications to mail about now, one list of pks per e-mail: those of one
    application in one tenant with one reviewer (or none: the admins)."""
    horizon = today + timedelta(days=settings.JUSTIFICATION_REVIEW_DAYS)
    due = (
        Justification.objects.filter(
            reminded_at__isnull=True,
            expires__isnull=False,
            expires__lte=horizon,
            tenant__status=Tenant.Status.ACTIVE,
        )
        .select_related("tenant")
        .order_by("tenant_id", "app_id", "expires", "pk")
    )
    groups: dict[tuple[int, UUID, int | None], list[int]] = defaultdict(list)
    held: dict[tuple[int, UUID], set] = {}
    for justification in due:
        client_key = (justification.tenant_id, justification.app_id)
        if client_key not in held:
            client = current_service_principal(
                tenant=justification.tenant, app_id=justification.app_id
            )
            held[client_key] = (
                held_slots(tenant=justification.tenant, client=client) if client else set()
            )
        # A grant revoked meanwhile needs no review: nothing is kept any more.
        if slot_of(justification) in held[client_key]:
            groups[(*client_key, justification.reviewer_id)].append(justification.pk)
    return list(groups.values())


def justification_reviews_queue(*, today: date | None = None) -> int:
    """Queue one review e-mail per group that is due; returns how many were queued."""
    groups = justification_reviews_due(today=today or timezone.localdate())
    for justification_ids in groups:
        send_on_commit(send_justification_review_task, justification_ids)
    return len(groups)


def justification_review_send(*, justification_ids: list[int], now: datetime | None = None) -> str:
    """Mail the reviewer of these justifications (one application's, in one tenant), once
    per expiry; says what happened."""
    now = now or timezone.now()
    rows = list(
        Justification.objects.filter(pk__in=justification_ids, reminded_at__isnull=True)
        .select_related("tenant", "reviewer")
        .order_by("expires", "value", "pk")
    )
    if not rows:
        return "already sent"
    first = rows[0]
    # One e-mail is about one application of one tenant, as the queue groups them.
    rows = [j for j in rows if (j.tenant_id, j.app_id) == (first.tenant_id, first.app_id)]
    to, audience = _recipients(first)
    if not to:
        # Left unclaimed: an admin who signs in later with an address gets tomorrow's run.
        logger.info("Nobody of %s has an e-mail address to review justifications", first.tenant)
        return "no recipient"
    claimed = [
        j
        for j in rows
        if Justification.objects.filter(
            pk=j.pk, reminded_at__isnull=True, expires=j.expires
        ).update(reminded_at=now)
    ]
    if not claimed:
        return "already sent"
    client = current_service_principal(tenant=first.tenant, app_id=first.app_id)
    try:
        _message(
            claimed, client=client, to=to, audience=audience, today=timezone.localdate(now)
        ).send()
    except Exception:
        # Unclaimed again, so that the task's retry (or tomorrow's run) sends it.
        Justification.objects.filter(pk__in=[j.pk for j in claimed], reminded_at=now).update(
            reminded_at=None
        )
        raise
    for justification in claimed:
        audit_record(
            action=AuditEvent.Action.JUSTIFICATION_REVIEW,
            tenant=justification.tenant,
            target=f"{slot_of(justification)} of {_name(client, justification)}",
            details={
                "app_id": str(justification.app_id),
                "permission": justification.value,
                "expires": justification.expires.isoformat() if justification.expires else None,
                "asked": audience,
                "recipients": len(to),
            },
        )
    return "sent"


def _recipients(justification: Justification) -> tuple[list[str], str]:
    """The reviewer, while a user of the tenant with an address; else the tenant's admins."""
    reviewer = justification.reviewer
    if reviewer is not None and reviewer.email:
        if reviewer.pk in {user.pk for user in tenant_users(justification.tenant)}:
            return [reviewer.email], "reviewer"
    return admin_addresses(justification.tenant), "admins"


def review_url(justification: Justification, choice: str) -> str:
    """Where a review e-mail's link goes: the application's page, with the choice to confirm."""
    page = portal_url("tenants:application", justification.tenant.tenant_id, justification.app_id)
    return f"{page}?{urlencode({'review': justification.pk, 'do': choice})}#review"


def _name(client: ServicePrincipal | None, justification: Justification) -> str:
    # Display names come from Graph: one line, whatever they hold, for a subject header.
    name = client.display_name if client else str(justification.app_id)
    return " ".join(name.split())[:200]


def _message(
    justifications: list[Justification],
    *,
    client: ServicePrincipal | None,
    to: list[str],
    audience: str,
    today: date,
) -> EmailMultiAlternatives:
    first = justifications[0]
    tenant = first.tenant
    application = _name(client, first)
    items = [
        {
            "justification": justification,
            "expired": not justification.in_force(today),
            "keep_url": review_url(justification, "keep"),
            "revoke_url": review_url(justification, "revoke"),
        }
        for justification in justifications
    ]
    if len(items) == 1:
        subject = f"{tenant.name}: keep {first.value} of {application}, or revoke it?"
    else:
        subject = f"{tenant.name}: keep {len(items)} permissions of {application}, or revoke them?"
    context = {
        "tenant": tenant,
        "application": application,
        "items": items,
        "audience": audience,
        "application_url": portal_url("tenants:application", tenant.tenant_id, first.app_id),
    }
    domain = urlsplit(settings.PORTAL_URL).hostname or "localhost"
    message = EmailMultiAlternatives(
        # Names come from Graph and the tenant: one line, whatever they hold.
        subject=" ".join(f"[Permission Portal] {subject}".split()),
        body=render_to_string("email/justification_review.txt", context),
        to=to,
        headers={"Message-ID": make_msgid(domain=domain), "Auto-Submitted": "auto-generated"},
    )
    message.attach_alternative(
        render_to_string("email/justification_review.html", context), "text/html"
    )
    return message
