"""The e-mail that tells a tenant's portal admins that readers ask for revokes (or for a
missing permission to be granted).

Sent by a task (``tenants.tasks.notify_revoke_requests``) once the requests are committed,
never inside the request that made them: a mail server's error, or a name that a mail
library refuses, cannot undo a request or fail a reader's click. The recipients are read
when it goes out, so an admin whose role ended meanwhile gets nothing; the requests
wait on the tenant's page (and in digests) whether or not anyone was mailed.
"""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse

from portal.models import User
from portal.text import plain
from tenants.access import Role, role_in
from tenants.models import RevokeRequest, Tenant
from tenants.revokes._shared import target

logger = logging.getLogger(__name__)


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
        .filter(pk__in=revoke_ids, status=RevokeRequest.Status.PENDING_APPROVAL)
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
    who = (requester.get_full_name() or requester.get_username()) if requester else "A reader"
    # A grant of a missing permission is asked for alone, a revoke alone or in bulk.
    verb = "grant" if revokes[0].action == RevokeRequest.Action.GRANT else "revoke"
    lines = [plain(f"{who} asks to {verb} these permissions in {tenant.name}:"), ""]
    for revoke in revokes:
        lines += [f"- {plain(target(revoke))}", f"  {_application_url(revoke)}"]
    lines += ["", "Approve or deny each request on the application's page."]
    return "\n".join(lines)


def _application_url(revoke: RevokeRequest) -> str:
    path = reverse(
        "tenants:application",
        kwargs={"tenant_id": revoke.tenant.tenant_id, "app_id": revoke.client.app_id},
    )
    return f"{settings.PORTAL_URL}{path}"
