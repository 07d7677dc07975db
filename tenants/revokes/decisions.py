"""Revoke requests and the decisions on them.

An admin's click queues a request (or sends it to MANUAL where the portal may not write);
a reader's waits for an admin's approval and is mailed to the tenant's admins. An admin
approves or denies; the requester or an admin cancels one that has not started; a revoke
that succeeded can be undone by a RESTORE request.
"""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from permissions.verdicts import PermissionKey
from portal.celery import send_on_commit
from portal.models import User
from tenants.access import Role, role_in
from tenants.models import (
    REASON_MAX_LENGTH,
    AuditEvent,
    Grant,
    RevokeRequest,
    ServicePrincipal,
    Tenant,
)
from tenants.portal_app import portal_can_write
from tenants.revokes._shared import Action, Status, audit, grant_rows_for, named
from tenants.revokes.guard import self_revoke_check
from tenants.revokes.manual import audit_manual
from tenants.slots import GrantSlot
from tenants.tasks import execute_revoke as execute_revoke_task
from tenants.tasks import notify_revoke_decision as notify_revoke_decision_task
from tenants.tasks import notify_revoke_requests as notify_revoke_requests_task


def revoke_grants(
    *, tenant: Tenant, client: ServicePrincipal, permission: PermissionKey
) -> QuerySet[Grant]:
    """The current grant rows of a permission, all consent types: what a revoke would take."""
    return Grant.objects.filter(
        named(permission.kind, permission.value),
        tenant=tenant,
        client=client,
        resource_app_id=permission.resource_app_id,
        kind=permission.kind,
        removed_in_run__isnull=True,
    )


def revoke_request_create(
    *,
    tenant: Tenant,
    client: ServicePrincipal,
    slot: GrantSlot,
    actor: User | None,
    role: Role,
    queue: bool = True,
    acknowledge_self: bool = False,
    reason: str = "",
) -> tuple[RevokeRequest, bool]:
    """Ask for a grant to be revoked: queued (or MANUAL) for an admin, waiting for
    approval for a reader, whose request (with ``reason``, why they ask) is mailed to the
    tenant's admins.

    An open request for the same grant wins: it is returned with False. ``queue=False``
    leaves a queued request for the caller to execute (the ``revoke`` command). The
    portal's own permissions are refused, or need ``acknowledge_self``
    (:mod:`tenants.revokes.guard`); raises :class:`RevokeRefused` (a ValueError).
    """
    with transaction.atomic():
        revoke, created = request_create(
            tenant=tenant,
            client=client,
            slot=slot,
            actor=actor,
            role=role,
            queue=queue,
            acknowledge_self=acknowledge_self,
            reason=reason,
        )
        if created and revoke.status == Status.PENDING_APPROVAL:
            notify_admins(tenant, [revoke])
    return revoke, created


def request_create(
    *,
    tenant: Tenant,
    client: ServicePrincipal,
    slot: GrantSlot,
    actor: User | None,
    role: Role,
    queue: bool,
    acknowledge_self: bool = False,
    reason: str = "",
    undoes: RevokeRequest | None = None,
) -> tuple[RevokeRequest, bool]:
    """:func:`revoke_request_create` without the admins' e-mail, which a bulk request
    sends once for all its requests. ``undoes``: the grant request this revoke takes back."""
    if (
        not grant_rows_for(tenant=tenant, client=client, slot=slot)
        .filter(removed_in_run__isnull=True)
        .exists()
    ):
        raise ValueError(f"{client.display_name} does not hold {slot} in {tenant.name}")
    self_revoke_check(
        tenant=tenant,
        client=client,
        slot=slot,
        admin=role == Role.ADMIN,
        acknowledged=acknowledge_self,
    )
    done = revoked_since_sync(tenant=tenant, client=client, slot=slot)
    if done is not None:
        raise ValueError(
            f"{slot.value} of {client.display_name} was revoked by request {done.pk} after "
            "the last sync; the next sync shows it gone"
        )
    if role == Role.ADMIN:
        status = Status.QUEUED if portal_can_write(tenant) else Status.MANUAL
        decided = {"decided_by": actor, "decided_at": timezone.now()}
    else:
        status, decided = Status.PENDING_APPROVAL, {}
    revoke, created = _insert_or_open(
        tenant,
        client,
        slot,
        action=Action.REVOKE,
        status=status,
        requested_by=actor,
        reason=reason.strip()[:REASON_MAX_LENGTH],
        restores=undoes,
        **decided,
    )
    if created:
        said = {"reason": revoke.reason} if revoke.reason else {}
        audit(revoke, AuditEvent.Action.REVOKE_REQUESTED, actor=actor, status=revoke.status, **said)
        _after_decision(revoke, actor=actor, queue=queue)
    return revoke, created


def revoked_since_sync(
    *, tenant: Tenant, client: ServicePrincipal, slot: GrantSlot
) -> RevokeRequest | None:
    """A revoke of this grant that succeeded after the last good sync began reading, and
    was neither undone nor found granted again: the grant the sync still shows is gone."""
    return (
        _revoked_since_sync(tenant).filter(client=client, **slot.fields()).order_by("-pk").first()
    )


def revoked_since_sync_slots(tenant: Tenant) -> set[tuple[int, GrantSlot]]:
    """(client pk, slot) of every grant :func:`revoked_since_sync` finds, in one query."""
    return {
        (revoke.client_id, GrantSlot.from_request(revoke))
        for revoke in _revoked_since_sync(tenant).only(
            "client", "resource_app_id", "kind", "value", "consent"
        )
    }


def _revoked_since_sync(tenant: Tenant) -> QuerySet[RevokeRequest]:
    last = tenant.last_good_sync
    revokes = RevokeRequest.objects.filter(
        tenant=tenant,
        action=Action.REVOKE,
        status=Status.SUCCEEDED,
        regranted_in_run__isnull=True,
    )
    if last is not None and last.started_at is not None:
        revokes = revokes.filter(finished_at__gte=last.started_at)
    undone = RevokeRequest.objects.filter(
        tenant=tenant, action=Action.RESTORE, restores__in=revokes
    ).exclude(status__in=[Status.FAILED, Status.DENIED, Status.CANCELLED])
    return revokes.exclude(pk__in=undone.values("restores_id"))


def _insert_or_open(
    tenant: Tenant, client: ServicePrincipal, slot: GrantSlot, **fields: Any
) -> tuple[RevokeRequest, bool]:
    """Insert a request, or return the open one for the same grant: the one-open-per-grant
    constraint decides, so two clicks at the same moment cannot both insert."""
    key = {"tenant": tenant, "client": client, **slot.fields()}
    for _attempt in range(3):
        try:
            with transaction.atomic():
                return RevokeRequest.objects.create(**key, **fields), True
        except IntegrityError:
            existing = (
                RevokeRequest.objects.filter(**key, status__in=RevokeRequest.OPEN_STATUSES)
                .select_related("tenant", "client")
                .first()
            )
            if existing is not None:
                return existing, False
            # The open request closed between our insert and this read: insert again.
    raise IntegrityError("revoke request: the open request for this grant kept changing")


def revoke_request_approve(*, revoke: RevokeRequest, actor: User | None) -> RevokeRequest:
    """An admin approves a reader's request: it is queued (or MANUAL), once."""
    _require_admin(actor, revoke.tenant)
    status = Status.QUEUED if portal_can_write(revoke.tenant) else Status.MANUAL
    with transaction.atomic():
        changed = RevokeRequest.objects.filter(pk=revoke.pk, status=Status.PENDING_APPROVAL).update(
            status=status, decided_by=actor, decided_at=timezone.now()
        )
        revoke.refresh_from_db()
        if changed:
            audit(revoke, AuditEvent.Action.REVOKE_APPROVED, actor=actor, status=revoke.status)
            _after_decision(revoke, actor=actor, queue=True)
            _tell_requester(revoke, actor=actor)
    return revoke


def revoke_request_deny(*, revoke: RevokeRequest, actor: User | None) -> RevokeRequest:
    _require_admin(actor, revoke.tenant)
    now = timezone.now()
    denied, changed = _close_by_decision(
        revoke,
        actor=actor,
        from_statuses=[Status.PENDING_APPROVAL],
        status=Status.DENIED,
        audit_action=AuditEvent.Action.REVOKE_DENIED,
        fields={"decided_by": actor, "decided_at": now, "finished_at": now},
    )
    if changed:
        _tell_requester(denied, actor=actor)
    return denied


def revoke_request_cancel(*, revoke: RevokeRequest, actor: User | None) -> RevokeRequest:
    """An admin withdraws a request that has not started; a requester who is not an admin
    only one still waiting for approval: once approved, the revoke is an admin's decision."""
    from_statuses: list[str] = [Status.PENDING_APPROVAL, Status.QUEUED, Status.MANUAL]
    if actor is not None and role_in(actor, revoke.tenant) != Role.ADMIN:
        if revoke.requested_by_id != actor.pk or revoke.status != Status.PENDING_APPROVAL:
            raise PermissionDenied("Only the tenant's admins can cancel this request")
        from_statuses = [Status.PENDING_APPROVAL]
    cancelled, _changed = _close_by_decision(
        revoke,
        actor=actor,
        from_statuses=from_statuses,
        status=Status.CANCELLED,
        audit_action=AuditEvent.Action.REVOKE_CANCELLED,
        fields={"finished_at": timezone.now()},
    )
    return cancelled


def _close_by_decision(
    revoke: RevokeRequest,
    *,
    actor: User | None,
    from_statuses: list[str],
    status: str,
    audit_action: str,
    fields: dict[str, Any],
) -> tuple[RevokeRequest, bool]:
    """The request moved to ``status`` if it was in one of ``from_statuses``, and whether
    this call moved it."""
    with transaction.atomic():
        changed = RevokeRequest.objects.filter(pk=revoke.pk, status__in=from_statuses).update(
            status=status, **fields
        )
        revoke.refresh_from_db()
        if changed:
            audit(revoke, audit_action, actor=actor)
    return revoke, bool(changed)


def revoke_restore(*, revoke: RevokeRequest, actor: User | None) -> RevokeRequest:
    """Undo a revoke that succeeded: a new RESTORE request that puts back what it removed."""
    _require_admin(actor, revoke.tenant)
    if revoke.action != Action.REVOKE or revoke.status != Status.SUCCEEDED:
        raise ValueError(
            f"only a revoke that succeeded can be undone (this one is {revoke.status})"
        )
    if RevokeRequest.objects.filter(restores=revoke, status=Status.SUCCEEDED).exists():
        raise ValueError(f"{revoke.value} of {revoke.client.display_name} is already restored")
    if not revoke.removed:
        raise ValueError("the revoke recorded nothing it removed, so there is nothing to restore")
    status = Status.QUEUED if portal_can_write(revoke.tenant) else Status.MANUAL
    with transaction.atomic():
        restore, created = _insert_or_open(
            revoke.tenant,
            revoke.client,
            GrantSlot.from_request(revoke),
            action=Action.RESTORE,
            restores=revoke,
            status=status,
            requested_by=actor,
            decided_by=actor,
            decided_at=timezone.now(),
        )
        if created:
            audit(restore, AuditEvent.Action.RESTORE_REQUESTED, actor=actor, restores=revoke.pk)
            _after_decision(restore, actor=actor, queue=True)
    return restore


def _after_decision(revoke: RevokeRequest, *, actor: User | None, queue: bool) -> None:
    if revoke.status == Status.QUEUED and queue:
        send_on_commit(execute_revoke_task, revoke.pk)
    elif revoke.status == Status.MANUAL:
        audit_manual(revoke, actor=actor, reason="the portal may not write in this tenant")


def _tell_requester(revoke: RevokeRequest, *, actor: User | None) -> None:
    """Mail the requester the decision on their request, from a task once committed
    (tenants.notifications); an admin deciding on their own request needs no e-mail."""
    if revoke.requested_by_id is not None and revoke.requested_by_id != getattr(actor, "pk", None):
        send_on_commit(notify_revoke_decision_task, revoke.pk)


def _require_admin(actor: User | None, tenant: Tenant) -> None:
    # None is the command line, run by whoever operates the portal.
    if actor is not None and role_in(actor, tenant) != Role.ADMIN:
        raise PermissionDenied("Only the tenant's admins can decide on revokes")


def notify_admins(tenant: Tenant, revokes: list[RevokeRequest]) -> None:
    """Mail the tenant's portal admins that readers ask for revokes, from a task once
    committed (tenants.notifications): no mail error can undo or fail the request."""
    send_on_commit(notify_revoke_requests_task, [revoke.pk for revoke in revokes])
