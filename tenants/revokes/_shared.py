"""What the revoke modules share: the grant rows a request names, Graph's spelling of
consent types and delegated grants, and the request's audit events."""

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from django.db.models import Q, QuerySet

from permissions.models import PermissionKind
from portal.models import User
from tenants.audit import actor_name, audit_record
from tenants.models import AuditEvent, Grant, RevokeRequest, ServicePrincipal, Tenant
from tenants.slots import GrantSlot

Status = RevokeRequest.Status
Action = RevokeRequest.Action

# The audit event of a request that ended, by its action and final status.
OUTCOMES: dict[tuple[str, str], str] = {
    (Action.REVOKE, Status.SUCCEEDED): AuditEvent.Action.REVOKE_SUCCEEDED,
    (Action.REVOKE, Status.FAILED): AuditEvent.Action.REVOKE_FAILED,
    (Action.RESTORE, Status.SUCCEEDED): AuditEvent.Action.RESTORE_SUCCEEDED,
    (Action.RESTORE, Status.FAILED): AuditEvent.Action.RESTORE_FAILED,
    (Action.GRANT, Status.SUCCEEDED): AuditEvent.Action.GRANT_SUCCEEDED,
    (Action.GRANT, Status.FAILED): AuditEvent.Action.GRANT_FAILED,
}

# A grant request goes through the same decisions as a revoke (approval, denial, manual
# steps); its trail names them as a grant's.
GRANT_EVENTS: dict[str, str] = {
    AuditEvent.Action.REVOKE_REQUESTED: AuditEvent.Action.GRANT_REQUESTED,
    AuditEvent.Action.REVOKE_APPROVED: AuditEvent.Action.GRANT_APPROVED,
    AuditEvent.Action.REVOKE_DENIED: AuditEvent.Action.GRANT_DENIED,
    AuditEvent.Action.REVOKE_CANCELLED: AuditEvent.Action.GRANT_CANCELLED,
    AuditEvent.Action.REVOKE_MANUAL: AuditEvent.Action.GRANT_MANUAL,
}


def grant_rows(revoke: RevokeRequest) -> QuerySet[Grant]:
    return grant_rows_for(
        tenant=revoke.tenant_id, client=revoke.client_id, slot=GrantSlot.from_request(revoke)
    )


def grant_rows_for(
    *, tenant: Tenant | int, client: ServicePrincipal | int, slot: GrantSlot
) -> QuerySet[Grant]:
    """Every grant row, current or past, of the permission a request names."""
    return Grant.objects.filter(
        named(slot.kind, slot.value),
        tenant=tenant,
        client=client,
        resource_app_id=slot.resource_app_id,
        kind=slot.kind,
        consent=slot.consent,
    )


def named(kind: str, value: str) -> Q:
    """The grant rows of a permission value (exactly as the request spells it)."""
    rows = Q(value=value)
    if kind == PermissionKind.APPLICATION:
        try:
            # An app role the resource does not publish is named by its id, as in the report.
            rows |= Q(value="", permission_id=UUID(value))
        except ValueError:
            pass  # a name, not an id
    return rows


def restore_targets(revoke: RevokeRequest) -> list[dict[str, Any]]:
    """What a restore puts back: the Graph objects its revoke removed."""
    return list(revoke.restores.removed) if revoke.restores else []


def without(scopes: Iterable[str], value: str) -> list[str]:
    # Scopes are case-insensitive in Entra; every other scope stays exactly as it was.
    return [scope for scope in scopes if scope.lower() != value.lower()]


def consent_type(consent: str) -> str:
    """Graph's consentType of a grant row's consent."""
    return "Principal" if consent == Grant.Consent.USER else "AllPrincipals"


def new_grant_body(entry: dict[str, Any], value: str) -> dict[str, Any]:
    """The body that creates a delegated grant again, holding only ``value``."""
    body = {
        "clientId": entry["clientId"],
        "consentType": entry["consentType"],
        "resourceId": entry["resourceId"],
        "scope": value,
    }
    if entry["consentType"] == "Principal":
        body["principalId"] = entry["principalId"]
    return body


def audit(revoke: RevokeRequest, action: str, *, actor: User | None = None, **details: Any) -> None:
    """One audit event about a request, named and numbered the same way every time."""
    if revoke.action == Action.GRANT:
        action = GRANT_EVENTS.get(action, action)
    audit_record(
        action=action,
        tenant=revoke.tenant,
        actor=actor,
        target=target(revoke),
        details={"revoke_request": revoke.pk, **details},
    )


def request_finished(revoke: RevokeRequest, status: str, **details: Any) -> None:
    """What follows a request's end, inside the transaction that ends it: its outcome
    event, and for a revoke that succeeded (verified in Graph, or confirmed by a sync) the
    end of the grant's justification, since no grant is left to keep.

    The outcome is the portal's act (no actor), but it acted on someone's decision: the
    event names them (``decided_by``), the decider or else the requester."""
    from tenants.justifications import justification_end  # it refreshes findings

    decided_by = actor_name(revoke.decided_by or revoke.requested_by)
    if decided_by:
        details["decided_by"] = decided_by
    audit(revoke, OUTCOMES[(revoke.action, status)], **details)
    if revoke.action == Action.REVOKE and status == Status.SUCCEEDED:
        justification_end(
            tenant=revoke.tenant,
            app_id=revoke.client.app_id,
            slot=GrantSlot.from_request(revoke),
            revoke_id=revoke.pk,
        )


def target(revoke: RevokeRequest) -> str:
    """A request in words: "Restore Mail.Read (application) of Teams Rooms"."""
    consent = ", user consents" if revoke.consent == Grant.Consent.USER else ""
    verbs: dict[str, str] = {Action.RESTORE: "Restore ", Action.GRANT: "Grant "}
    verb = verbs.get(revoke.action, "")
    return f"{verb}{revoke.value} ({revoke.kind}{consent}) of {revoke.client.display_name}"


def removed_entries(
    revoke: RevokeRequest, rows: QuerySet[Grant], *, with_scope: bool
) -> list[dict[str, Any]]:
    """The Graph objects the grant rows stand for, as a request's ``removed`` records them;
    a delegated grant's scope is the row's own ``with_scope``, else left for Graph to say."""
    rows = rows.order_by("pk")
    client_id = str(revoke.client.object_id)
    if revoke.kind == PermissionKind.APPLICATION:
        return [
            {
                "type": "appRoleAssignment",
                "id": row.graph_object_id,
                "principalId": client_id,
                "resourceId": str(row.resource_object_id),
                "appRoleId": str(row.permission_id),
            }
            for row in rows
        ]
    return [
        {
            "type": "oauth2PermissionGrant",
            "id": row.graph_object_id,
            "clientId": client_id,
            "consentType": consent_type(row.consent),
            "principalId": str(row.principal_id) if row.principal_id else None,
            "resourceId": str(row.resource_object_id),
            "scope": row.value if with_scope else "",
        }
        for row in rows
    ]
