"""Consent sync: read a tenant's grants from Graph and record them as a new snapshot.

Two phases, so that a failure can never look like a removal:

1. read: every Graph collection is read completely into memory as plain tuples, not
   model instances. A re-sync reads service principals and delegated grants as Graph's
   delta queries give them (only what changed) merged into what the last applied
   snapshot had; a full read every SYNC_FULL_READ_DAYS, or when the delta state is gone
   or a sync failed (tenants.delta). Nothing is written but the run's progress.
2. apply: one transaction upserts the catalog entries Graph returned, the service
   principals and the grant history, keeps where the delta queries stand, and closes the
   run. Only grants that are new or gone are written, so an unchanged re-sync writes no
   grant rows; a delta round is applied in that one transaction or not at all.

A read that fails leaves the previous snapshot untouched and the run failed, with the
error in words an admin can act on.

Graph is eventually consistent and not always complete (DESIGN.md), so a read that
comes back short must not become a removal either:

- the delegated-grant listing is checked against Graph's count of grants; when it is
  short, the clients' own grant lists are read and merged in (:func:`_read_delegated`);
- what could not be read (a principal that answers 404 a moment after it was listed, a
  principal or grant whose fields are unusable) is recorded in :class:`Unread`, and the
  grants it covers stay as they were, neither removed nor re-added; the run's ``notes``
  say what was skipped;
- as a second line, a snapshot that would remove an unusual share of the tenant's grants
  is held (:data:`SyncRun.Status.HELD`) for an admin to apply or discard.
"""

import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from digests.tasks import after_sync
from permissions.catalog import catalog_apply_graph
from permissions.models import PermissionKind
from portal.celery import send_on_commit
from portal.models import User
from tenants.audit import audit_record
from tenants.consenting_users import consenting_users_apply
from tenants.delta import delta_state_apply, delta_state_distrust
from tenants.facts import facts_apply
from tenants.findings import findings_after_sync, sync_inputs
from tenants.graph import GraphClient, GraphError
from tenants.memberships import role_holders_apply
from tenants.models import AuditEvent, Grant, HeldSnapshot, ServicePrincipal, SyncRun, Tenant
from tenants.provenance import consent_events_apply
from tenants.revokes import revokes_after_sync
from tenants.services import next_sync_slot, tenant_names
from tenants.signins import sign_ins_apply
from tenants.snapshot import (
    GrantRecord,
    Snapshot,
    SpRecord,
    Unread,
    snapshot_dump,
    snapshot_load,
)
from tenants.sync_read import previous_of, read_snapshot
from tenants.tasks import SYNC_MAX_RETRIES

logger = logging.getLogger(__name__)

BULK_BATCH = 2000
# The removed grants a held run's page can list.
HELD_REMOVED_LISTED = 500
# What the first sync after onboarding says when Graph refuses the new token: the roles
# granted at consent take a while to reach tokens (microsoft-graph-docs#10907).
FIRST_SYNC_DENIED = (
    "the permissions granted at consent are not in the token yet; retrying in a few minutes"
)


def sync_run_execute(
    *, run_id: int, client: GraphClient | None = None, final_attempt: bool | None = None
) -> SyncRun:
    """Claim a queued run and carry it out. A run already claimed elsewhere is left alone.

    Until a tenant's first sync succeeds, one that Graph refuses (403) fails as retryable
    unless this is the ``final_attempt``: the roles granted at consent may not be in the
    portal's tokens yet. By default the sync task's retries decide it: each of its
    attempts is a run, so the tenant's failed runs count them (the task retries a
    retryable failure while it has retries left: SYNC_MAX_RETRIES).
    """
    claimed = SyncRun.objects.filter(pk=run_id, status=SyncRun.Status.QUEUED).update(
        status=SyncRun.Status.RUNNING, started_at=timezone.now(), progress="Starting"
    )
    run = SyncRun.objects.select_related("tenant", "requested_by").get(pk=run_id)
    if not claimed:
        return run
    client = client or GraphClient(tenant_id=str(run.tenant.tenant_id))
    try:
        with _collector_paused():
            snapshot = read_snapshot(
                client=client,
                progress=lambda text: _progress(run, text, client),
                previous=previous_of(run.tenant),
            )
            apply_snapshot(run=run, snapshot=snapshot, client=client)
    except GraphError as exc:
        last = _last_attempt(run.tenant) if final_attempt is None else final_attempt
        later = None if last else _first_sync_denied(run.tenant, exc)
        _fail(run, later or exc, client)
        if later is not None:
            raise later from exc
        raise
    except Exception as exc:
        _fail(run, exc, client)
        raise
    run.refresh_from_db()
    return run


def _last_attempt(tenant: Tenant) -> bool:
    """Whether the sync task would not try a tenant's first sync again: as many attempts
    have failed already as it retries."""
    failed = SyncRun.objects.filter(tenant=tenant, status=SyncRun.Status.FAILED).count()
    return failed >= SYNC_MAX_RETRIES


def _first_sync_denied(tenant: Tenant, exc: GraphError) -> GraphError | None:
    """For a tenant's first sync that Graph refused (403), the error that says the roles
    are on their way and is retried, instead of telling the admin to connect again."""
    if exc.status != 403 or tenant.last_good_sync_id is not None:
        return None
    return GraphError(
        f"{FIRST_SYNC_DENIED[0].upper()}{FIRST_SYNC_DENIED[1:]} "
        f"(Graph answered 403 {exc.code or 'Forbidden'})",
        retryable=True,
        status=403,
        code=exc.code,
        request_id=exc.request_id,
        client_request_id=exc.client_request_id,
    )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pauses CPython's cycle collector for a sync, then restores it as it was.

    A large tenant's sync makes a few hundred thousand small objects that form no
    cycles. As they pile up, the collector walks them and the rest of the heap again and
    again: a quarter to a third of a large re-sync's time. Reference counting still frees them all; the
    peak memory does not change."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _progress(run: SyncRun, text: str, client: GraphClient) -> None:
    SyncRun.objects.filter(pk=run.pk).update(progress=text, graph_requests=client.stats.requests)


def _fail(run: SyncRun, exc: Exception, client: GraphClient) -> None:
    if isinstance(exc, GraphError):
        # The ids are what Microsoft's support asks for.
        message = f"{exc} {exc.ids}".strip()
    else:
        message = f"{exc.__class__.__name__}: {exc}"
    logger.warning("Sync %s of tenant %s failed: %s", run.pk, run.tenant.tenant_id, message)
    # Whatever failed, a delta round may have been part-read: the next sync reads it all.
    delta_state_distrust(tenant=run.tenant, why=f"the last sync ({run.pk}) failed")
    SyncRun.objects.filter(pk=run.pk).update(
        status=SyncRun.Status.FAILED,
        finished_at=timezone.now(),
        progress="",
        error=message,
        graph_requests=client.stats.requests,
        throttled_waits=client.stats.throttled_waits,
        throttled_seconds=client.stats.throttled_seconds,
    )
    _audit_run(run, AuditEvent.Action.SYNC_FAILED, error=message)


# -- apply -----------------------------------------------------------------------------------


def apply_snapshot(
    *,
    run: SyncRun,
    snapshot: Snapshot,
    client: GraphClient | None = None,
    held: bool = False,
) -> bool:
    """Record the snapshot as the tenant's current one, in one transaction; or, when it
    would remove an unusual share of the tenant's grants, keep it for an admin instead
    (the run ends HELD) and change nothing else. Returns whether it was applied.

    ``held``: the snapshot was held and an admin applies it now (it is not held again; the
    run keeps the time it was read). ``client`` None keeps the run's request counts."""
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=run.tenant_id)
        current = dict(
            Grant.objects.filter(tenant=tenant, removed_in_run__isnull=True).values_list(
                "identity", "pk"
            )
        )
        seen = {record.identity: record for record in snapshot.grants}
        kept = _kept_identities(tenant, snapshot.unread)
        gone = [current[identity] for identity in current.keys() - seen.keys() - kept]
        if not held and removal_is_unusual(removed=len(gone), current=len(current)):
            _hold(run, tenant, snapshot, client, current=current, seen=seen, gone=gone)
            return False
        if client is not None:
            _progress(run, "Saving", client)
        findings_inputs = sync_inputs(tenant)
        catalog = catalog_apply_graph(entries=snapshot.catalog, tenant=tenant)
        sp_ids = _apply_service_principals(tenant, snapshot.service_principals, snapshot.unread)
        added = _apply_grants(tenant, run, snapshot, sp_ids, current=current, seen=seen, gone=gone)
        # In the same transaction: a manual revoke is done, or a revoked permission is back,
        # exactly when the snapshot that shows it is saved.
        revokes_after_sync(tenant=tenant, run=run)
        role_holders_apply(tenant=tenant, holders=snapshot.role_holders)
        sign_ins_apply(tenant=tenant, sign_ins=snapshot.sign_ins)
        facts_apply(tenant=tenant, facts=snapshot.facts, sp_ids=sp_ids)
        consent_events_apply(tenant=tenant, events=snapshot.consent_events)
        if snapshot.collections is not None:
            delta_state_apply(tenant=tenant, collections=snapshot.collections)
        consenting_users_apply(tenant=tenant, names=snapshot.user_names)
        _succeed(
            run,
            tenant,
            snapshot,
            client,
            counts=(added, len(gone), len(current) - len(gone)),
            applying_held=held,
        )
        # The verdicts of the snapshot now in force, stored with it: those of the clients
        # it changed; every client's when a held snapshot (read before the current
        # findings were written) is applied or the catalog gained a permission.
        findings_after_sync(
            tenant=tenant,
            run=run,
            before=findings_inputs,
            full=held or catalog.permissions_added > 0,
        )
        _supersede_held(tenant, newer=run)
    return True


def removal_is_unusual(*, removed: int, current: int) -> bool:
    """Whether a snapshot removes more of the tenant's grants than syncs normally do: more
    than SYNC_HOLD_REMOVED_PERCENT of them and more than SYNC_HOLD_REMOVED_MIN."""
    return (
        removed > settings.SYNC_HOLD_REMOVED_MIN
        and removed * 100 > settings.SYNC_HOLD_REMOVED_PERCENT * current
    )


def _kept_identities(tenant: Tenant, unread: Unread) -> set[str]:
    """The current grants that what the run could not read covers: they stay as they were."""
    if not unread:
        return set()
    covered = Q(pk__in=[])
    if unread.app_resources:
        covered |= Q(kind=PermissionKind.APPLICATION, resource_object_id__in=unread.app_resources)
    if unread.delegated_clients:
        covered |= Q(kind=PermissionKind.DELEGATED, client__object_id__in=unread.delegated_clients)
    if unread.principals:
        covered |= Q(client__object_id__in=unread.principals)
        covered |= Q(resource_object_id__in=unread.principals)
    if unread.grant_objects:
        covered |= Q(graph_object_id__in=unread.grant_objects)
    return set(
        Grant.objects.filter(tenant=tenant, removed_in_run__isnull=True)
        .filter(covered)
        .values_list("identity", flat=True)
    )


def _succeed(
    run: SyncRun,
    tenant: Tenant,
    snapshot: Snapshot,
    client: GraphClient | None,
    *,
    counts: tuple[int, int, int],
    applying_held: bool,
) -> None:
    added, removed, unchanged = counts
    now = timezone.now()
    fields: dict[str, Any] = {
        "status": SyncRun.Status.SUCCEEDED,
        "progress": "",
        "service_principals": len(snapshot.service_principals),
        "grants_added": added,
        "grants_removed": removed,
        "grants_unchanged": unchanged,
    }
    if client is not None:
        fields |= {
            "graph_requests": client.stats.requests,
            "throttled_waits": client.stats.throttled_waits,
            "throttled_seconds": client.stats.throttled_seconds,
        }
    if not applying_held:
        # A held snapshot keeps the time it was read: that is the moment it describes.
        fields |= {"finished_at": now, "notes": snapshot.run_notes(), **_read_fields(snapshot)}
    SyncRun.objects.filter(pk=run.pk).update(**fields)
    schedule = {} if applying_held else {"next_sync_at": next_sync_slot(tenant=tenant, after=now)}
    Tenant.objects.filter(pk=tenant.pk).update(
        last_good_sync=run,
        **schedule,
        **tenant_names(tenant=tenant, organization=snapshot.organization),
    )
    _audit_run(
        run, AuditEvent.Action.SYNC_SUCCEEDED, added=added, removed=removed, unchanged=unchanged
    )
    # Once the snapshot is committed: ControlPlane alerts and after-sync digests; a broker
    # that is down then loses them, never the sync.
    send_on_commit(after_sync, run.pk)


def _read_fields(snapshot: Snapshot) -> dict[str, Any]:
    """How the run read Graph, for its record."""
    collections = snapshot.collections
    if collections is None:
        return {}
    return {
        "read_mode": SyncRun.ReadMode.DELTA if collections.delta else SyncRun.ReadMode.FULL,
        "delta_discrepancies": collections.discrepancies,
    }


def _apply_service_principals(
    tenant: Tenant, records: list[SpRecord], unread: Unread
) -> dict[str, int]:
    """Upsert the tenant's service principals; returns primary keys by object id. One the
    run skipped (``unread.principals``) is kept as it was, not marked removed."""
    existing = {str(sp.object_id): sp for sp in ServicePrincipal.objects.filter(tenant=tenant)}
    fields = (
        "app_id",
        "display_name",
        "publisher",
        "app_owner_tenant_id",
        "service_principal_type",
        "account_enabled",
        "removed_at",
    )
    to_create, to_update = [], []
    for record in records:
        values = {
            "app_id": UUID(record.app_id),
            "display_name": record.display_name[:300],
            "publisher": record.publisher[:300],
            "app_owner_tenant_id": UUID(record.app_owner_tenant_id)
            if record.app_owner_tenant_id
            else None,
            "service_principal_type": record.service_principal_type[:40],
            "account_enabled": record.account_enabled,
            "removed_at": None,
        }
        current = existing.pop(record.object_id, None)
        if current is None:
            to_create.append(
                ServicePrincipal(tenant=tenant, object_id=UUID(record.object_id), **values)
            )
        elif any(getattr(current, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(current, name, value)
            to_update.append(current)
    ServicePrincipal.objects.bulk_create(to_create, batch_size=BULK_BATCH)
    ServicePrincipal.objects.bulk_update(to_update, fields, batch_size=BULK_BATCH)
    gone = [
        sp.pk
        for object_id, sp in existing.items()
        if sp.removed_at is None and object_id not in unread.principals
    ]
    ServicePrincipal.objects.filter(pk__in=gone).update(removed_at=timezone.now())
    return {
        str(object_id): pk
        for object_id, pk in ServicePrincipal.objects.filter(tenant=tenant).values_list(
            "object_id", "pk"
        )
    }


# The fields of a new grant row, in the order _apply_grants builds them. GUIDs stay the
# strings Graph sent: both COPY and the UUID field parse them.
NEW_GRANT_FIELDS = (
    "tenant_id",
    "client_id",
    "resource_app_id",
    "resource_object_id",
    "kind",
    "value",
    "permission_id",
    "consent",
    "principal_id",
    "graph_object_id",
    "identity",
    "granted_at",
    "first_seen_run_id",
)


def _apply_grants(
    tenant: Tenant,
    run: SyncRun,
    snapshot: Snapshot,
    sp_ids: dict[str, int],
    *,
    current: dict[str, int],
    seen: dict[str, GrantRecord],
    gone: list[int],
) -> int:
    """Insert the grants new to the history and close those gone; returns how many were
    new. A grant whose client or resource is not among the snapshot's principals is left
    out (it cannot be stored against them)."""
    app_ids = {record.object_id: record.app_id for record in snapshot.service_principals}
    new = [
        (
            tenant.pk,
            sp_ids[record.client_object_id],
            app_ids[record.resource_object_id],
            record.resource_object_id,
            record.kind,
            record.value,
            record.permission_id,
            record.consent,
            record.principal_id,
            record.graph_object_id,
            identity,
            _granted_at(record.granted_at),
            run.pk,
        )
        for identity, record in seen.items()
        if identity not in current
        and record.client_object_id in sp_ids
        and record.resource_object_id in app_ids
    ]
    _insert_grants(new)
    for start in range(0, len(gone), BULK_BATCH):
        Grant.objects.filter(pk__in=gone[start : start + BULK_BATCH]).update(removed_in_run=run)
    return len(new)


def _granted_at(text: str | None) -> Any:
    if not text:
        return None
    try:
        return parse_datetime(text)
    except ValueError:  # well-formed but impossible, e.g. month 13
        return None


def _insert_grants(rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    if connection.vendor != "postgresql":
        Grant.objects.bulk_create(
            [Grant(**dict(zip(NEW_GRANT_FIELDS, row, strict=True))) for row in rows],
            batch_size=BULK_BATCH,
        )
        return
    # COPY: a first sync of a large tenant inserts 100,000+ rows, and bulk_create spends
    # several times PostgreSQL's own time building model instances and parameters.
    column_of = {field.attname: field.column for field in Grant._meta.concrete_fields}
    # A concrete field always has a column (the stubs type it str | None for the others).
    columns = ", ".join(
        connection.ops.quote_name(str(column_of[name])) for name in NEW_GRANT_FIELDS
    )
    table = connection.ops.quote_name(Grant._meta.db_table)
    with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


# -- held snapshots ------------------------------------------------------------------------------


def _hold(
    run: SyncRun,
    tenant: Tenant,
    snapshot: Snapshot,
    client: GraphClient | None,
    *,
    current: dict[str, int],
    seen: dict[str, GrantRecord],
    gone: list[int],
) -> None:
    """Keeps a snapshot that would remove too much for an admin to judge; the previous
    snapshot stays in force. The run's grant counts say what applying it would do."""
    added = len(seen.keys() - current.keys())
    HeldSnapshot.objects.create(
        run=run,
        data=snapshot_dump(snapshot),
        current_grants=len(current),
        removed_grants=sorted(gone)[:HELD_REMOVED_LISTED],
    )
    _supersede_held(tenant, newer=run)
    notes = [
        f"Held: this snapshot would remove {len(gone)} of the tenant's {len(current)} grants, "
        f"more than a sync normally does (over {settings.SYNC_HOLD_REMOVED_PERCENT}% and over "
        f"{settings.SYNC_HOLD_REMOVED_MIN}). Nothing was applied; an admin applies or discards "
        "it on the tenant's page.",
        *snapshot.run_notes(),
    ]
    fields: dict[str, Any] = {
        "status": SyncRun.Status.HELD,
        "finished_at": timezone.now(),
        "progress": "",
        "service_principals": len(snapshot.service_principals),
        "grants_added": added,
        "grants_removed": len(gone),
        "grants_unchanged": len(current) - len(gone),
        "notes": notes,
        **_read_fields(snapshot),
    }
    if client is not None:
        fields |= {
            "graph_requests": client.stats.requests,
            "throttled_waits": client.stats.throttled_waits,
            "throttled_seconds": client.stats.throttled_seconds,
        }
    SyncRun.objects.filter(pk=run.pk).update(**fields)
    logger.warning(
        "Sync %s of tenant %s held: it would remove %s of %s grants",
        run.pk,
        tenant.tenant_id,
        len(gone),
        len(current),
    )
    _audit_run(
        run, AuditEvent.Action.SYNC_HELD, would_remove=len(gone), of=len(current), added=added
    )


def _audit_run(run: SyncRun, action: str, **details: Any) -> None:
    """A sync's event, recorded with whoever started it (None: the schedule or a command)
    and what started it, so the trail says "alice (revoke)" rather than "The portal"."""
    audit_record(
        action=action,
        tenant=run.tenant,
        actor=run.requested_by,
        target=f"Sync {run.pk}",
        details={"sync_run": run.pk, "started_by": run.get_trigger_display(), **details},
    )


def _supersede_held(tenant: Tenant, *, newer: SyncRun) -> None:
    """Discards the tenant's held runs older than ``newer``: a newer read replaces them."""
    for older in SyncRun.objects.filter(
        tenant=tenant, status=SyncRun.Status.HELD, pk__lt=newer.pk
    ).select_for_update():
        _discard(older, tenant, actor=None, why=f"superseded by sync {newer.pk}")


def _discard(run: SyncRun, tenant: Tenant, *, actor: User | None, why: str) -> None:
    HeldSnapshot.objects.filter(run=run).delete()
    SyncRun.objects.filter(pk=run.pk).update(
        status=SyncRun.Status.DISCARDED, notes=[*run.notes, f"Discarded: {why}."]
    )
    audit_record(
        action=AuditEvent.Action.SYNC_HELD_DISCARDED,
        tenant=tenant,
        actor=actor,
        target=f"Sync {run.pk}",
        details={"sync_run": run.pk, "why": why},
    )


class HeldSyncError(ValueError):
    """A held run cannot be applied or discarded; the message is one line for the admin."""


def sync_run_apply_held(*, run: SyncRun, actor: User) -> SyncRun:
    """Apply exactly the snapshot a held run read, in one transaction, as if the sync had
    applied it then. Refused once a newer sync has succeeded: its snapshot is newer."""
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=run.tenant_id)
        held = _held_run(run)
        newer = (
            SyncRun.objects.filter(tenant=tenant, status=SyncRun.Status.SUCCEEDED, pk__gt=held.pk)
            .order_by("-pk")
            .first()
        )
        if newer is not None:
            raise HeldSyncError(
                f"Sync {newer.pk} has succeeded since sync {held.pk} was held: its snapshot is "
                "newer. Discard this one."
            )
        try:
            snapshot = snapshot_load(bytes(held.held.data))
        except ValueError as exc:
            raise HeldSyncError(f"Sync {held.pk} cannot be applied: {exc}.") from exc
        apply_snapshot(run=held, snapshot=snapshot, held=True)
        HeldSnapshot.objects.filter(run=held).delete()
        who = actor.get_username()
        SyncRun.objects.filter(pk=held.pk).update(
            notes=[*held.notes, f"Applied by {who} on {timezone.now():%Y-%m-%d %H:%M} UTC."]
        )
        audit_record(
            action=AuditEvent.Action.SYNC_HELD_APPLIED,
            tenant=tenant,
            actor=actor,
            target=f"Sync {held.pk}",
            details={
                "sync_run": held.pk,
                "added": held.grants_added,
                "removed": held.grants_removed,
            },
        )
    held.refresh_from_db()
    return held


def sync_run_discard_held(*, run: SyncRun, actor: User) -> SyncRun:
    """Close a held run without applying it; the tenant keeps its previous snapshot."""
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=run.tenant_id)
        held = _held_run(run)
        _discard(held, tenant, actor=actor, why=f"by {actor.get_username()}")
    held.refresh_from_db()
    return held


def _held_run(run: SyncRun) -> SyncRun:
    # of=self: PostgreSQL cannot lock the nullable side of the join to the snapshot.
    held = SyncRun.objects.select_for_update(of=("self",)).select_related("held").get(pk=run.pk)
    if held.status != SyncRun.Status.HELD:
        raise HeldSyncError(
            f"Sync {held.pk} is not held for review (it is {held.get_status_display().lower()})."
        )
    return held
