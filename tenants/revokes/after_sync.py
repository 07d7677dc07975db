"""What a sync tells the revoke requests, in the sync's transaction.

A MANUAL request is complete once the new snapshot no longer shows its grant (or, for a
restore or a grant of a missing permission, shows it); a revoke that succeeded is marked re-granted when the grant
comes back (re-consenting to an app brings back every permission it asks for).

"Granted again" must never be a replica that is behind, showing what was just removed.
So an application permission is granted again only when the sync sees an assignment id
the revoke did not remove (Graph gives every new assignment a new id; a stale read shows
the old one); a delegated scope only when the sync started after the revoke's lag window
(``REVOKE_LAG_SECONDS`` after it finished), since a grant keeps its id when a scope is
added back to it.
"""

from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from permissions.models import PermissionKind
from tenants.models import AuditEvent, Grant, RevokeRequest, SyncRun, Tenant
from tenants.revokes._shared import (
    Action,
    Status,
    audit,
    grant_rows,
    removed_entries,
    request_finished,
)
from tenants.slots import GrantSlot

# A grant of one client, as the re-grant check compares them.
_ClientSlot = tuple[int, GrantSlot]


def revokes_after_sync(*, tenant: Tenant, run: SyncRun) -> None:
    """In the sync's transaction: complete manual requests the new snapshot confirms, and
    mark revoked permissions that are granted again."""
    manual = list(
        RevokeRequest.objects.filter(tenant=tenant, status=Status.MANUAL).select_related(
            "client", "restores"
        )
    )
    succeeded = list(_unrestored_revokes(tenant, run).select_related("client"))
    if not manual and not succeeded:
        return
    current = _current_slots(tenant, [*manual, *succeeded])
    for revoke in manual:
        # A revoke is done once the grant is gone; a restore or a grant once it is there.
        done = (_slot_of(revoke) in current) == (revoke.action != Action.REVOKE)
        if done:
            _complete_manual(revoke, run)
    for revoke in succeeded:
        if _granted_again(revoke, current.get(_slot_of(revoke), set()), run):
            _mark_regranted(revoke, run)


def _granted_again(revoke: RevokeRequest, object_ids: set[str], run: SyncRun) -> bool:
    """Whether the Graph objects this run found for the revoked grant mean it is back."""
    if not object_ids:
        return False
    removed = {entry.get("id") for entry in revoke.removed}
    if revoke.kind == PermissionKind.APPLICATION and removed:
        return bool(object_ids - removed)
    if revoke.finished_at is None or run.started_at is None:
        return False  # _unrestored_revokes only passes revokes that finished before the run
    lag_over = revoke.finished_at + timedelta(seconds=settings.REVOKE_LAG_SECONDS)
    return run.started_at >= lag_over


def _unrestored_revokes(tenant: Tenant, run: SyncRun) -> QuerySet[RevokeRequest]:
    """Revokes that succeeded before this run began reading, were not undone, and are not
    yet known to be re-granted: if this run sees their permission, it came back."""
    undoing = RevokeRequest.objects.filter(
        tenant=tenant,
        action=Action.RESTORE,
        status__in=[Status.SUCCEEDED, *RevokeRequest.OPEN_STATUSES],
    ).values("restores_id")
    return RevokeRequest.objects.filter(
        tenant=tenant,
        action=Action.REVOKE,
        status=Status.SUCCEEDED,
        regranted_in_run__isnull=True,
        finished_at__lt=run.started_at,
    ).exclude(pk__in=undoing)


def _current_slots(tenant: Tenant, revokes: list[RevokeRequest]) -> dict[_ClientSlot, set[str]]:
    """The grants the tenant's clients named in ``revokes`` hold now, each with the ids
    of the Graph objects (assignments, delegated grants) that hold it."""
    rows = Grant.objects.filter(
        tenant=tenant,
        removed_in_run__isnull=True,
        client_id__in={r.client_id for r in revokes},
    ).only(
        "client", "resource_app_id", "kind", "value", "permission_id", "consent", "graph_object_id"
    )
    current: dict[_ClientSlot, set[str]] = defaultdict(set)
    for row in rows:
        current[(row.client_id, GrantSlot.from_grant(row))].add(row.graph_object_id)
    return current


def _slot_of(revoke: RevokeRequest) -> _ClientSlot:
    return (revoke.client_id, GrantSlot.from_request(revoke))


def _complete_manual(revoke: RevokeRequest, run: SyncRun) -> None:
    fields: dict[str, Any] = {"status": Status.SUCCEEDED, "finished_at": timezone.now()}
    if revoke.action == Action.REVOKE and not revoke.removed:
        # What the admin removed by hand, as the grant rows knew it, so it can be undone.
        fields["removed"] = removed_entries(
            revoke, grant_rows(revoke).filter(removed_in_run=run), with_scope=True
        )
    RevokeRequest.objects.filter(pk=revoke.pk, status=Status.MANUAL).update(**fields)
    request_finished(revoke, Status.SUCCEEDED, confirmed_by_sync=run.pk)


def _mark_regranted(revoke: RevokeRequest, run: SyncRun) -> None:
    RevokeRequest.objects.filter(pk=revoke.pk).update(regranted_in_run=run)
    audit(revoke, AuditEvent.Action.REGRANTED, sync_run=run.pk)
