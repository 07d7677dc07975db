"""Grant requests: giving an application exactly a permission it misses, and taking it back.

A grant is a request of action GRANT on the revoke flow, so it gets the same decisions
(an admin's click queues it, a reader's waits for an admin's approval, MANUAL with the
steps where the portal may not write), the same audit trail (``grant.*`` events), the
same worker (``execute_revoke``, which writes what :mod:`tenants.revokes.missing` plans
and verifies it by id) and the same verification sync. Its undo is a revoke of the
permission (``restores`` naming the grant), once a sync has recorded the grant: a revoke
works from the Graph objects a sync saw, never from a listing read a moment ago.
"""

from collections.abc import Iterable

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from permissions.verdicts import PermissionKey
from portal.models import User
from tenants.access import Role
from tenants.models import AuditEvent, Grant, RevokeRequest, ServicePrincipal, Tenant
from tenants.portal_app import portal_can_write
from tenants.revokes._shared import Action, Status, audit, grant_rows, named
from tenants.revokes.decisions import (
    _after_decision,
    _insert_or_open,
    _require_admin,
    notify_admins,
    request_create,
)
from tenants.revokes.guard import RevokeRefused
from tenants.revokes.missing import GrantPlan, grant_plans
from tenants.selectors import application_in_tenant
from tenants.slots import GrantSlot

# An undo in one of these has not taken the grant away, nor will it.
UNDO_GAVE_UP = (Status.FAILED, Status.DENIED, Status.CANCELLED)


def missing_grant_plan(
    *, tenant: Tenant, client: ServicePrincipal, permission: PermissionKey
) -> GrantPlan:
    """The plan for a permission the client misses now; RevokeRefused when it is not
    missing (granted meanwhile, or its feature switched off)."""
    detail = application_in_tenant(tenant=tenant, service_principal=client)
    found = next((m for m in detail.missing if m.finding.permission == permission), None)
    if found is None:
        raise RevokeRefused(
            f"{client.display_name} does not miss {permission} in {tenant.name}: no enabled "
            "feature lists it, or it holds it already"
        )
    graph_id = found.permission.graph_id if found.permission else None
    return grant_plans(tenant=tenant, client=client, missing=[(permission, graph_id)])[0]


def grant_request_create(
    *,
    tenant: Tenant,
    client: ServicePrincipal,
    permission: PermissionKey,
    actor: User | None,
    role: Role,
    queue: bool = True,
) -> tuple[RevokeRequest, bool]:
    """Ask for a missing permission to be granted, as a revoke is asked for: queued (or
    MANUAL) for an admin, waiting for approval (and mailed to the admins) for a reader.
    An open request for the same slot wins: returned with False. Raises RevokeRefused
    (a ValueError) for what the portal cannot grant."""
    plan = missing_grant_plan(tenant=tenant, client=client, permission=permission)
    if plan.problem:
        raise RevokeRefused(plan.problem)
    if role == Role.ADMIN:
        status = Status.QUEUED if portal_can_write(tenant) else Status.MANUAL
        decided = {"decided_by": actor, "decided_at": timezone.now()}
    else:
        status, decided = Status.PENDING_APPROVAL, {}
    with transaction.atomic():
        grant, created = _insert_or_open(
            tenant,
            client,
            plan.slot,
            action=Action.GRANT,
            status=status,
            requested_by=actor,
            **decided,
        )
        if created:
            audit(grant, AuditEvent.Action.GRANT_REQUESTED, actor=actor, status=grant.status)
            _after_decision(grant, actor=actor, queue=queue)
            if grant.status == Status.PENDING_APPROVAL:
                notify_admins(tenant, [grant])
    return grant, created


def grant_undo(*, revoke: RevokeRequest, actor: User | None) -> RevokeRequest:
    """Take back a grant that succeeded: a revoke of the permission, which names the grant
    it undoes. Only once a sync recorded the grant (the verification sync after it)."""
    _require_admin(actor, revoke.tenant)
    if revoke.action != Action.GRANT or revoke.status != Status.SUCCEEDED:
        raise ValueError(f"only a grant that succeeded can be undone (this one is {revoke.status})")
    if _undo_requests(revoke.tenant, [revoke.pk]).exists():
        raise ValueError(f"{revoke.value} of {revoke.client.display_name} is already taken back")
    if not grant_rows(revoke).filter(removed_in_run__isnull=True).exists():
        raise ValueError(
            f"No sync has recorded {revoke.value} of {revoke.client.display_name} yet; "
            "undo it once the sync after the grant has run"
        )
    undo, _created = request_create(
        tenant=revoke.tenant,
        client=revoke.client,
        slot=GrantSlot.from_request(revoke),
        actor=actor,
        role=Role.ADMIN,
        queue=True,
        undoes=revoke,
    )
    return undo


def undoable_grant_ids(revokes: Iterable[RevokeRequest]) -> set[int]:
    """Of ``revokes``, the succeeded grants an undo can take back now: held as the last
    sync saw them, and no undo under way or done. Two queries."""
    grants = [
        revoke
        for revoke in revokes
        if revoke.action == Action.GRANT and revoke.status == Status.SUCCEEDED
    ]
    if not grants:
        return set()
    undone = set(
        _undo_requests(grants[0].tenant_id, [g.pk for g in grants]).values_list(
            "restores_id", flat=True
        )
    )
    held_rows = Q()
    for grant in grants:
        held_rows |= Q(named(grant.kind, grant.value), client=grant.client_id, kind=grant.kind)
    rows = Grant.objects.filter(
        held_rows, tenant=grants[0].tenant_id, removed_in_run__isnull=True
    ).only("client", "resource_app_id", "kind", "value", "permission_id", "consent")
    held = {(row.client_id, GrantSlot.from_grant(row)) for row in rows}
    return {
        grant.pk
        for grant in grants
        if grant.pk not in undone and (grant.client_id, GrantSlot.from_request(grant)) in held
    }


def _undo_requests(tenant: Tenant | int, grant_ids: list[int]) -> QuerySet[RevokeRequest]:
    """The revokes that take back these grants, but for those that gave up."""
    return RevokeRequest.objects.filter(
        tenant=tenant, action=Action.REVOKE, restores_id__in=grant_ids
    ).exclude(status__in=UNDO_GAVE_UP)
