"""What the portal may do in a tenant, and what an admin does by hand where it may not.

Where the portal's app lacks the write rights, a request goes to MANUAL with the steps
below. The Entra admin center revokes what an admin consented to for the whole
organization, so those steps name its page alone; it can neither revoke one user's
consent nor put back a revoked permission, so user consents and every restore get the
exact Microsoft Graph calls instead. Every list warns against "Grant admin consent",
which grants again everything the app asks for. The sync that confirms the change
completes the request (:mod:`tenants.revokes.after_sync`).
"""

import json
from typing import Any

from django.conf import settings
from django.db import transaction

from permissions.models import PermissionKind
from portal.models import User
from tenants.models import AuditEvent, Grant, RevokeRequest
from tenants.revokes._shared import (
    Action,
    Status,
    audit,
    grant_rows,
    new_grant_body,
    restore_targets,
    without,
)
from tenants.revokes.missing import grant_plan_for, grant_steps

ENTRA_ADMIN_CENTER = "https://entra.microsoft.com"


def manual_steps(revoke: RevokeRequest) -> list[str]:
    """What an admin does by hand: the Entra admin center page where it can do it, else
    the Graph calls; then the warning and how the portal confirms it."""
    if revoke.action == Action.GRANT:
        return grant_steps(grant_plan_for(revoke))
    client = revoke.client
    if revoke.action == Action.REVOKE and revoke.consent == Grant.Consent.ADMIN:
        steps = [
            f"In the Microsoft Entra admin center ({ENTRA_ADMIN_CENTER}) go to Identity > "
            f"Applications > Enterprise applications > All applications > {client.display_name} "
            f"(application ID {client.app_id}) > Security > Permissions > Admin consent, "
            f"find {revoke.value} ({revoke.get_kind_display()}) and choose Revoke permission."
        ]
    else:
        why = (
            "one user's consent"
            if revoke.action == Action.REVOKE
            else "a revoked permission back (restoring is Graph-only)"
        )
        steps = [
            f"The Entra admin center cannot take {why}, so make these Microsoft Graph calls "
            f"as an admin (Graph Explorer or Microsoft Graph PowerShell's Invoke-MgGraphRequest):",
            *_manual_calls(revoke),
        ]
    steps.append(
        f'Do not use "Grant admin consent" on {client.display_name}\'s Permissions page for '
        "this: it grants again every permission the app asks for, not only this one."
    )
    steps.append("The portal confirms the change at the tenant's next sync.")
    return steps


def to_manual(revoke: RevokeRequest, error: str) -> RevokeRequest:
    """A running request the portal turned out not to be allowed to carry out."""
    with transaction.atomic():
        RevokeRequest.objects.filter(pk=revoke.pk, status=Status.RUNNING).update(
            status=Status.MANUAL, error=error
        )
        revoke.refresh_from_db()
        audit_manual(revoke, actor=None, reason=error)
    return revoke


def audit_manual(revoke: RevokeRequest, *, actor: User | None, reason: str) -> None:
    # A grant's is named as such by audit().
    action = (
        AuditEvent.Action.RESTORE_MANUAL
        if revoke.action == Action.RESTORE
        else AuditEvent.Action.REVOKE_MANUAL
    )
    audit(revoke, action, actor=actor, reason=reason, steps=manual_steps(revoke))


def _manual_calls(revoke: RevokeRequest) -> list[str]:
    base = f"{settings.GRAPH_URL}/v1.0"
    if revoke.action == Action.RESTORE:
        return [_restore_call(base, entry, revoke.value) for entry in restore_targets(revoke)]
    rows = list(grant_rows(revoke).filter(removed_in_run__isnull=True).order_by("pk"))
    if revoke.kind == PermissionKind.APPLICATION:
        return [
            f"DELETE {base}/servicePrincipals/{row.resource_object_id}/appRoleAssignedTo/{row.graph_object_id}"
            for row in rows
        ]
    scopes = _scopes_by_grant(revoke.tenant_id, {row.graph_object_id for row in rows})
    calls = []
    for row in rows:
        remaining = without(scopes.get(row.graph_object_id, []), revoke.value)
        url = f"{base}/oauth2PermissionGrants/{row.graph_object_id}"
        if remaining:
            body = json.dumps({"scope": " ".join(remaining)})
            calls.append(f"PATCH {url} with the body {body}")
        else:
            calls.append(f"DELETE {url}")
    return calls


def _restore_call(base: str, entry: dict[str, Any], value: str) -> str:
    if entry["type"] == "appRoleAssignment":
        body = {key: entry[key] for key in ("principalId", "resourceId", "appRoleId")}
        return f"POST {base}/servicePrincipals/{entry['resourceId']}/appRoleAssignedTo with the body {json.dumps(body)}"
    create = f"POST {base}/oauth2PermissionGrants with the body {json.dumps(new_grant_body(entry, value))}"
    if not without((entry.get("scope") or "").split(), value):
        return create  # the revoke deleted that grant, for it held nothing else
    return (
        f"PATCH {base}/oauth2PermissionGrants/{entry['id']} adding {value} to its scope "
        f"(read it first with GET), or if that grant is gone, {create}"
    )


def _scopes_by_grant(tenant_id: int, grant_ids: set[str]) -> dict[str, list[str]]:
    """Each delegated grant's scopes as the last sync saw them, in Graph's order."""
    scopes: dict[str, list[str]] = {}
    rows = Grant.objects.filter(
        tenant_id=tenant_id, graph_object_id__in=grant_ids, removed_in_run__isnull=True
    ).order_by("pk")
    for grant_id, value in rows.values_list("graph_object_id", "value"):
        scopes.setdefault(grant_id, []).append(value)
    return scopes
