"""The e-mails about revoke requests: to a tenant's portal admins when readers ask for
revokes (or for a missing permission to be granted), and to a requester when an admin
decided on their request.

Sent by tasks (``tenants.tasks.notify_revoke_requests``, ``notify_revoke_decision``) once
the requests are committed, never inside the request that made them: a mail server's
error, or a name that a mail library refuses, cannot undo a request or fail a click. The
admins are read when it goes out, so an admin whose role ended meanwhile gets nothing;
the requests wait on the tenant's page (and in digests) whether or not anyone was mailed.

The admins' e-mail says what each request would do, as the pages do: the grant's verdict,
the features it would break, and why the reader asks. The requester's e-mail is claimed on
its request (``decision_mailed_at``) before it goes, so a retried task sends it once; a
failed send puts the claim back and keeps the error on the request, for the task's retry
and for the revoke requests page to show.
"""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse
from django.utils import timezone

from portal.logging import failure_text
from portal.models import User
from portal.text import plain
from tenants.access import Role, role_in
from tenants.models import RevokeRequest, Tenant
from tenants.revokes._shared import target
from tenants.selectors import GrantDetail, revoke_impacts

logger = logging.getLogger(__name__)

Status = RevokeRequest.Status


def tenant_admin_addresses(tenant: Tenant) -> list[str]:
    """The addresses of the tenant's own portal admins, as their roles stand now."""
    users = User.objects.filter(
        entra_tenant_id__iexact=str(tenant.tenant_id), is_active=True
    ).exclude(email="")
    return [user.email for user in users.order_by("pk") if role_in(user, tenant) == Role.ADMIN]


def revoke_requests_notify(*, revoke_ids: list[int]) -> int:
    """Mail the admins about the requests that still wait for approval; returns how many
    admins were mailed (0: none to mail, or nothing waits any more)."""
    revokes = list(
        RevokeRequest.objects.select_related("tenant", "client", "requested_by")
        .filter(pk__in=revoke_ids, status=Status.PENDING_APPROVAL)
        .order_by("pk")
    )
    if not revokes:
        return 0  # decided or cancelled before the e-mail went out: nothing to ask
    tenant = revokes[0].tenant
    recipients = tenant_admin_addresses(tenant)
    if not recipients:
        logger.info("No portal admin of %s has an e-mail address to notify", tenant.tenant_id)
        return 0
    send_mail(_subject(tenant, revokes), _body(tenant, revokes), None, recipients)
    return len(recipients)


def revoke_decision_notify(*, revoke_id: int) -> str:
    """Mail the requester that an admin approved or denied their request, and who; says
    what happened. At most once per request."""
    revoke = (
        RevokeRequest.objects.select_related("tenant", "client", "requested_by", "decided_by")
        .filter(pk=revoke_id, decided_by__isnull=False, decision_mailed_at__isnull=True)
        .exclude(status__in=[Status.PENDING_APPROVAL, Status.CANCELLED])
        .first()
    )
    if revoke is None:
        return "already sent"
    requester = revoke.requested_by
    if requester is None or not requester.email:
        return "no recipient"
    now = timezone.now()
    claimed = RevokeRequest.objects.filter(pk=revoke.pk, decision_mailed_at__isnull=True).update(
        decision_mailed_at=now
    )
    if not claimed:
        return "already sent"
    try:
        send_mail(_decision_subject(revoke), _decision_body(revoke), None, [requester.email])
    except Exception as exc:
        RevokeRequest.objects.filter(pk=revoke.pk, decision_mailed_at=now).update(
            decision_mailed_at=None, decision_mail_error=failure_text(exc)
        )
        raise
    RevokeRequest.objects.filter(pk=revoke.pk).update(decision_mail_error="")
    return "sent"


def _subject(tenant: Tenant, revokes: list[RevokeRequest]) -> str:
    if len(revokes) == 1:
        revoke = revokes[0]
        action = revoke.get_action_display()
        subject = (
            f"{action} request in {tenant.name}: {revoke.value} of {revoke.client.display_name}"
        )
    else:
        subject = f"{len(revokes)} revoke requests in {tenant.name}"
    return plain(subject)


def _body(tenant: Tenant, revokes: list[RevokeRequest]) -> str:
    requester = revokes[0].requested_by
    # A grant of a missing permission is asked for alone, a revoke alone or in bulk.
    verb = "grant" if revokes[0].action == RevokeRequest.Action.GRANT else "revoke"
    lines = [
        plain(f"{_name(requester, 'A reader')} asks to {verb} these permissions in {tenant.name}:")
    ]
    # What a revoke would break; a grant breaks nothing.
    impacts = revoke_impacts(revokes) if verb == "revoke" else {}
    for revoke in revokes:
        impact = _impact_lines(impacts.get(revoke.pk)) if verb == "revoke" else []
        lines += ["", f"- {plain(target(revoke))}", *impact]
        if revoke.reason:
            lines.append(f"  Why: {plain(revoke.reason)}")
        lines.append(f"  {_application_url(revoke)}")
    lines += ["", "Approve or deny each request on the application's page."]
    return "\n".join(lines)


def _impact_lines(grant: GrantDetail | None) -> list[str]:
    """What approving would do, in the words of the pending request's card."""
    if grant is None:
        return ["  The application no longer holds it."]
    lines = [f"  Verdict: {grant.verdict}"]
    if grant.breaks:
        lines.append("  Revoking it breaks these enabled features:")
        lines += [
            f"    * {plain(requirement.feature.name)}: {plain(requirement.reason)}"
            for requirement in grant.breaks
        ]
    return lines


def _decision_subject(revoke: RevokeRequest) -> str:
    decision = "denied" if revoke.status == Status.DENIED else "approved"
    return plain(
        f"Your revoke request in {revoke.tenant.name} was {decision}: "
        f"{revoke.value} of {revoke.client.display_name}"
    )


def _decision_body(revoke: RevokeRequest) -> str:
    by = _name(revoke.decided_by, "An admin")
    if revoke.status == Status.DENIED:
        outcome = f"{by} denied your request to revoke {target(revoke)}: it stays granted."
    elif revoke.status == Status.MANUAL:
        outcome = (
            f"{by} approved your request to revoke {target(revoke)}. The portal may not change "
            "grants in this tenant, so an admin removes it by hand; the next sync confirms it."
        )
    else:
        outcome = f"{by} approved your request to revoke {target(revoke)}; the portal revokes it."
    lines = [plain(outcome)]
    if revoke.reason:
        lines += ["", f"You asked because: {plain(revoke.reason)}"]
    lines += ["", _application_url(revoke)]
    return "\n".join(lines)


def _name(person: User | None, nobody: str) -> str:
    return (person.get_full_name() or person.get_username()) if person else nobody


def _application_url(revoke: RevokeRequest) -> str:
    path = reverse(
        "tenants:application",
        kwargs={"tenant_id": revoke.tenant.tenant_id, "app_id": revoke.client.app_id},
    )
    return f"{settings.PORTAL_URL}{path}"
