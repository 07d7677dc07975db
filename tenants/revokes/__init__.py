"""Revoke requests: taking one permission away from one application, giving it back, and
granting one it misses (action GRANT, whose undo is a revoke).

A request names a grant as (tenant, client, :class:`~tenants.slots.GrantSlot`). An
admin's click queues it; a reader's waits for an admin's approval. The Celery task
(``tenants.tasks.execute_revoke``) carries it out in Graph. Where the portal may not
write (its app lacks AppRoleAssignment.ReadWrite.All and
DelegatedPermissionGrant.ReadWrite.All), a request goes to MANUAL with the steps for an
admin; the sync that no longer finds the grant completes it. That hook also marks revoked
permissions that come back (re-consent) as re-granted.

The modules, each importing only those above it:

- ``_shared``: the grant rows a request names, Graph's spellings, the audit events
- ``manual``: what the portal may do in a tenant, and the steps for an admin where not
- ``missing``: what granting a missing permission writes, with the real ids, and the
  steps for an admin where the portal may not write
- ``guard``: what a revoke never touches (the portal's read rights; in bulk, the portal,
  Microsoft's apps, managed identities) and what needs an explicit acknowledgement
- ``decisions``: creating requests, approving, denying, cancelling, undoing
- ``grant``: asking for a missing permission to be granted, and taking it back
- ``bulk``: every grant that nothing needs, one request each
- ``execution``: carrying a request out in Graph, the dead-worker sweep, the resync
- ``after_sync``: what a sync tells the requests
"""

from tenants.portal_app import WRITE_PERMISSIONS, portal_can_write
from tenants.revokes.after_sync import revokes_after_sync
from tenants.revokes.bulk import (
    BulkPlan,
    BulkResult,
    GrantCandidate,
    LeftOut,
    bulk_token_parse,
    revoke_bulk_candidates,
    revoke_bulk_create,
    revoke_bulk_plan,
)
from tenants.revokes.decisions import (
    revoke_grants,
    revoke_request_approve,
    revoke_request_cancel,
    revoke_request_create,
    revoke_request_deny,
    revoke_restore,
)
from tenants.revokes.execution import (
    revoke_request_execute,
    revoke_request_give_up,
    revoke_request_resync,
    revoke_requests_resume_abandoned,
)
from tenants.revokes.grant import grant_request_create, grant_undo, undoable_grant_ids
from tenants.revokes.guard import RevokeRefused, portal_grant
from tenants.revokes.manual import manual_steps
from tenants.revokes.missing import GrantPlan, grant_plans, grant_slot, grant_steps
from tenants.slots import GrantSlot

__all__ = [
    "WRITE_PERMISSIONS",
    "BulkPlan",
    "BulkResult",
    "GrantCandidate",
    "GrantPlan",
    "GrantSlot",
    "LeftOut",
    "RevokeRefused",
    "bulk_token_parse",
    "grant_plans",
    "grant_request_create",
    "grant_slot",
    "grant_steps",
    "grant_undo",
    "manual_steps",
    "portal_can_write",
    "portal_grant",
    "revoke_bulk_candidates",
    "revoke_bulk_create",
    "revoke_bulk_plan",
    "revoke_grants",
    "revoke_request_approve",
    "revoke_request_cancel",
    "revoke_request_create",
    "revoke_request_deny",
    "revoke_request_execute",
    "revoke_request_give_up",
    "revoke_request_resync",
    "revoke_requests_resume_abandoned",
    "revoke_restore",
    "revokes_after_sync",
    "undoable_grant_ids",
]
