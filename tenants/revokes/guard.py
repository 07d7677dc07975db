"""What a revoke must never touch, and what needs an admin's explicit word.

- Bulk revokes (the pages and ``revoke --unused``) leave out the portal itself,
  Microsoft's first-party apps and managed identities. Their grants often show as
  "unexplained" (no manifest describes them), yet stripping them in one go breaks
  Microsoft 365 features or Azure workloads; each can still be revoked on its own.
- The portal never revokes its own read permissions (``READ_PERMISSIONS``): without them
  it cannot sync the tenant, and so could not even see what it had done.
- Its write permissions go only with an explicit acknowledgement (the permission's name
  typed on the page, ``--self`` on the command line), by an admin, and the request runs
  after every other request of the tenant that is queued or running: afterwards the
  portal may not change grants there, so even its own Undo becomes manual steps.
"""

from typing import Literal

from permissions.models import MICROSOFT_GRAPH_APP_ID, PermissionKind
from tenants.models import ServicePrincipal, Tenant
from tenants.portal_app import OWN_PERMISSIONS, READ_PERMISSIONS, is_portal_app
from tenants.slots import GrantSlot

PortalGrant = Literal["read", "write"]


class RevokeRefused(ValueError):
    """A revoke the portal will not make (or not without an acknowledgement); the message
    is one line for the admin."""


def portal_grant(client: ServicePrincipal, slot: GrantSlot) -> PortalGrant | None:
    """Whether ``slot`` is one of the portal's own read or write permissions, held by the
    portal's own service principal; None for every other grant."""
    if not is_portal_app(client.app_id):
        return None
    if slot.kind != PermissionKind.APPLICATION or slot.resource_app_id != MICROSOFT_GRAPH_APP_ID:
        return None
    named = slot.value.casefold()
    for own in OWN_PERMISSIONS:
        # An app role the resource does not publish is named by its id.
        if named in (own.value.casefold(), own.graph_id):
            if own.writes:
                return "write"
            return "read" if own.value in READ_PERMISSIONS else None
    return None


def read_refusal(tenant: Tenant, slot: GrantSlot) -> str:
    return (
        f"The portal never revokes its own {slot.value}: without it, it could no longer "
        f"sync {tenant.name}."
    )


def self_revoke_check(
    *, tenant: Tenant, client: ServicePrincipal, slot: GrantSlot, admin: bool, acknowledged: bool
) -> None:
    """Refuse a revoke of the portal's own read permissions, and of its write permissions
    unless an admin acknowledged it. Raises :class:`RevokeRefused`."""
    kind = portal_grant(client, slot)
    if kind == "read":
        raise RevokeRefused(read_refusal(tenant, slot))
    if kind == "write" and not admin:
        raise RevokeRefused(
            f"Only an admin can revoke the portal's own {slot.value}, by typing its name."
        )
    if kind == "write" and not acknowledged:
        raise RevokeRefused(
            f"Revoking the portal's own {slot.value} needs an explicit acknowledgement "
            f"(--self, or its name typed on the page): afterwards the portal cannot undo it."
        )


def bulk_exclusion(client: ServicePrincipal) -> str | None:
    """Why a bulk revoke leaves this client's grants alone, or None."""
    if is_portal_app(client.app_id):
        return "the portal itself"
    if client.is_first_party:
        return "a Microsoft first-party app"
    if client.is_managed_identity:
        return "a managed identity"
    return None
