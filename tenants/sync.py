"""Consent sync: read a tenant's grants from Graph and record them as a new snapshot.

Two phases, so that a failure can never look like a removal:

1. read: every Graph collection is read completely into memory as plain tuples, not
   model instances; delegated grants (the most numerous) not even as raw JSON: each page
   becomes tuples as it arrives. Nothing is written but the run's progress.
2. apply: one transaction upserts the catalog entries Graph returned, the service
   principals and the grant history, and closes the run. Only grants that are new or gone
   are written, so an unchanged re-sync writes no grant rows.

A read that fails leaves the previous snapshot untouched and the run failed, with the
error in words an admin can act on.
"""

import gc
import logging
from collections.abc import Iterable, Iterator, KeysView
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from uuid import UUID

from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from digests.tasks import after_sync
from permissions.catalog import GraphPermission, catalog_apply_graph
from permissions.models import PermissionKind
from tenants.audit import audit_record
from tenants.graph import GraphClient, GraphError, Organization, organization_read
from tenants.memberships import RoleHolders, role_holders_apply, role_holders_read
from tenants.models import AuditEvent, Grant, ServicePrincipal, SyncRun, Tenant
from tenants.portal_app import DELEGATED_READ_NEEDS, READ_NEEDS
from tenants.revokes import revokes_after_sync
from tenants.services import tenant_names

logger = logging.getLogger(__name__)

SP_FIELDS = (
    "id,appId,displayName,appOwnerOrganizationId,servicePrincipalType,accountEnabled,"
    "verifiedPublisher,appRoles"
)
CATALOG_FIELDS = "id,appId,displayName,appRoles,oauth2PermissionScopes"
ASSIGNMENT_FIELDS = "id,appRoleId,principalId,principalType,resourceId,createdDateTime"
DELEGATED_FIELDS = "id,clientId,consentType,principalId,resourceId,scope"
BULK_BATCH = 2000


@dataclass(frozen=True)
class SpRecord:
    object_id: str
    app_id: str
    display_name: str
    publisher: str
    app_owner_tenant_id: str | None
    service_principal_type: str
    account_enabled: bool


class GrantRecord(NamedTuple):
    """One grant as read from Graph, before it is matched against the stored history.

    A tuple rather than a dataclass: it is made 100,000+ times for a large tenant, and
    creating a frozen dataclass costs several times as much."""

    identity: str
    client_object_id: str
    resource_object_id: str
    kind: str
    value: str
    permission_id: str | None
    consent: str
    principal_id: str | None
    graph_object_id: str
    # As Graph gives it; parsed only for grants that are new to the history.
    granted_at: str | None


@dataclass
class Snapshot:
    # The organization's display name and default domain, for the tenant's record.
    organization: Organization = field(default_factory=Organization)
    service_principals: list[SpRecord] = field(default_factory=list)
    grants: list[GrantRecord] = field(default_factory=list)
    catalog: list[GraphPermission] = field(default_factory=list)
    # Who holds the portal's roles (tenants.memberships); None: not read, nobody changes.
    role_holders: RoleHolders | None = None


def sync_run_execute(*, run_id: int, client: GraphClient | None = None) -> SyncRun:
    """Claim a queued run and carry it out. A run already claimed elsewhere is left alone."""
    claimed = SyncRun.objects.filter(pk=run_id, status=SyncRun.Status.QUEUED).update(
        status=SyncRun.Status.RUNNING, started_at=timezone.now(), progress="Starting"
    )
    run = SyncRun.objects.select_related("tenant").get(pk=run_id)
    if not claimed:
        return run
    client = client or GraphClient(tenant_id=str(run.tenant.tenant_id))
    try:
        with _collector_paused():
            snapshot = read_snapshot(
                client=client, progress=lambda text: _progress(run, text, client)
            )
            apply_snapshot(run=run, snapshot=snapshot, client=client)
    except Exception as exc:
        _fail(run, exc, client)
        raise
    run.refresh_from_db()
    return run


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
    message = str(exc) if isinstance(exc, GraphError) else f"{exc.__class__.__name__}: {exc}"
    logger.warning("Sync %s of tenant %s failed: %s", run.pk, run.tenant.tenant_id, message)
    SyncRun.objects.filter(pk=run.pk).update(
        status=SyncRun.Status.FAILED,
        finished_at=timezone.now(),
        progress="",
        error=message,
        graph_requests=client.stats.requests,
        throttled_waits=client.stats.throttled_waits,
        throttled_seconds=client.stats.throttled_seconds,
    )
    audit_record(
        action=AuditEvent.Action.SYNC_FAILED,
        tenant=run.tenant,
        target=f"Sync {run.pk}",
        details={"sync_run": run.pk, "error": message},
    )


# -- read ------------------------------------------------------------------------------------


def read_snapshot(*, client: GraphClient, progress: Any = lambda text: None) -> Snapshot:
    snapshot = Snapshot()
    progress("Reading the organization")
    snapshot.organization = _read_organization(client)
    progress("Reading service principals")
    raw_sps = [
        sp
        for page in client.pages(
            f"/servicePrincipals?$select={SP_FIELDS}&$top=999", needs=READ_NEEDS
        )
        for sp in page
    ]
    snapshot.service_principals = [_sp_record(sp) for sp in raw_sps]
    by_object_id = {sp["id"]: sp for sp in raw_sps}

    # Application grants are read per resource (appRoleAssignedTo), not per client
    # (appRoleAssignments): a tenant has a handful of APIs that define app roles and
    # thousands of clients, so this is one call per resource instead of one per client.
    resources = [sp for sp in raw_sps if sp.get("appRoles")]
    progress(f"Reading application grants on {len(resources)} APIs")
    assignments = _read_assignments(client, resources)

    progress("Reading delegated grants")
    delegated, named_resources = _read_delegated(client, by_object_id.keys())

    # Catalogs: app roles came with the list; scopes only for APIs that delegated grants
    # name, one read each (batched), since the list does not carry them.
    delegated_resources = sorted(named_resources & by_object_id.keys())
    progress(f"Reading the permission catalogs of {len(delegated_resources)} APIs")
    scopes_by_resource = _read_scopes(client, delegated_resources)

    granted_resources = {a["resourceId"] for a in assignments} | set(delegated_resources)
    for object_id in sorted(granted_resources):
        resource = by_object_id.get(object_id)
        if resource:
            snapshot.catalog.extend(
                _catalog_entries(resource, scopes_by_resource.get(object_id, []))
            )

    roles = {
        (sp["id"], role["id"]): role.get("value") or ""
        for sp in resources
        for role in sp.get("appRoles", [])
    }
    snapshot.grants = [
        _assignment_record(a, roles) for a in assignments if a["principalId"] in by_object_id
    ]
    snapshot.grants += delegated
    progress("Reading who holds the portal's roles")
    snapshot.role_holders = role_holders_read(client)
    return snapshot


def _read_organization(client: GraphClient) -> Organization:
    """The tenant's name and default domain; optional, since a portal app granted only
    what the grants need (no Directory.Read.All) may not read the organization."""
    try:
        return organization_read(client)
    except GraphError as exc:
        if exc.status != 403:
            raise
        return Organization()


def _read_assignments(client: GraphClient, resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """All app-role assignments on the given resources that go to service principals."""
    first_pages = client.batch(
        [
            {
                "id": str(index),
                "method": "GET",
                "url": f"/servicePrincipals/{sp['id']}/appRoleAssignedTo?$select={ASSIGNMENT_FIELDS}&$top=999",
            }
            for index, sp in enumerate(resources)
        ],
        needs=READ_NEEDS,
    )
    assignments: list[dict[str, Any]] = []
    for index in range(len(resources)):
        body = first_pages.get(str(index), {})
        assignments.extend(body.get("value", []))
        next_link = body.get("@odata.nextLink")
        if next_link:
            for page in client.pages(next_link, needs=READ_NEEDS):
                assignments.extend(page)
    # Assignments to users and groups let people into an app; they are not permissions
    # an application holds.
    return [a for a in assignments if a.get("principalType") == "ServicePrincipal"]


def _read_delegated(
    client: GraphClient, known: KeysView[str]
) -> tuple[list[GrantRecord], set[str]]:
    """Delegated grants between known service principals, one record per scope, and every
    resource that delegated grants name.

    Each page becomes records as it arrives: the raw JSON of 50,000 grants would take
    several times the memory of their records."""
    records: list[GrantRecord] = []
    resources: set[str] = set()
    for page in client.pages(
        f"/oauth2PermissionGrants?$select={DELEGATED_FIELDS}&$top=999", needs=DELEGATED_READ_NEEDS
    ):
        for grant in page:
            resources.add(grant["resourceId"])
            if grant["clientId"] in known and grant["resourceId"] in known:
                records.extend(_delegated_records(grant))
    return records, resources


def _read_scopes(client: GraphClient, resource_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    bodies = client.batch(
        [
            {
                "id": object_id,
                "method": "GET",
                "url": f"/servicePrincipals/{object_id}?$select={CATALOG_FIELDS}",
            }
            for object_id in resource_ids
        ],
        needs=READ_NEEDS,
    )
    return {object_id: body.get("oauth2PermissionScopes", []) for object_id, body in bodies.items()}


def _sp_record(sp: dict[str, Any]) -> SpRecord:
    return SpRecord(
        object_id=sp["id"],
        app_id=sp["appId"],
        display_name=sp.get("displayName") or sp["appId"],
        publisher=(sp.get("verifiedPublisher") or {}).get("displayName") or "",
        app_owner_tenant_id=sp.get("appOwnerOrganizationId"),
        service_principal_type=sp.get("servicePrincipalType") or "",
        account_enabled=sp.get("accountEnabled", True) is not False,
    )


def _catalog_entries(
    resource: dict[str, Any], scopes: list[dict[str, Any]]
) -> Iterable[GraphPermission]:
    common = {
        "resource_app_id": resource["appId"],
        "resource_name": resource.get("displayName") or resource["appId"],
    }
    for role in resource.get("appRoles", []):
        if "Application" in role.get("allowedMemberTypes", ["Application"]) and role.get("value"):
            yield GraphPermission(
                **common,
                kind=PermissionKind.APPLICATION,
                value=role["value"],
                graph_id=role["id"],
                display_name=role.get("displayName") or "",
                description=role.get("description") or "",
                admin_consent_required=True,  # application permissions always need an admin
                enabled=role.get("isEnabled", True) is not False,
            )
    for scope in scopes:
        if scope.get("value"):
            yield GraphPermission(
                **common,
                kind=PermissionKind.DELEGATED,
                value=scope["value"],
                graph_id=scope["id"],
                display_name=scope.get("adminConsentDisplayName") or "",
                description=scope.get("adminConsentDescription") or "",
                admin_consent_required=scope.get("type") == "Admin",
                enabled=scope.get("isEnabled", True) is not False,
            )


def _assignment_record(
    assignment: dict[str, Any], roles: dict[tuple[str, str], str]
) -> GrantRecord:
    resource_id = assignment["resourceId"]
    role_id = assignment["appRoleId"]
    return GrantRecord(
        identity=f"a:{assignment['id']}",
        client_object_id=assignment["principalId"],
        resource_object_id=resource_id,
        kind=PermissionKind.APPLICATION,
        # An id the resource no longer defines (or never published) stays visible as
        # unknown rather than being dropped.
        value=roles.get((resource_id, role_id), ""),
        permission_id=role_id,
        consent=Grant.Consent.ADMIN,
        principal_id=None,
        graph_object_id=assignment["id"],
        granted_at=assignment.get("createdDateTime"),
    )


def _delegated_records(grant: dict[str, Any]) -> Iterable[GrantRecord]:
    user_consent = grant.get("consentType") == "Principal"
    # Scope strings are space-separated and may carry extra spaces at the ends.
    for scope in dict.fromkeys((grant.get("scope") or "").split()):
        yield GrantRecord(
            identity=f"d:{grant['id']}:{scope.lower()}",
            client_object_id=grant["clientId"],
            resource_object_id=grant["resourceId"],
            kind=PermissionKind.DELEGATED,
            value=scope,
            permission_id=None,
            consent=Grant.Consent.USER if user_consent else Grant.Consent.ADMIN,
            principal_id=grant.get("principalId") if user_consent else None,
            graph_object_id=grant["id"],
            granted_at=None,
        )


# -- apply -----------------------------------------------------------------------------------


@transaction.atomic
def apply_snapshot(*, run: SyncRun, snapshot: Snapshot, client: GraphClient) -> None:
    tenant = Tenant.objects.select_for_update().get(pk=run.tenant_id)
    _progress(run, "Saving", client)
    catalog_apply_graph(entries=snapshot.catalog, tenant=tenant)
    sp_ids = _apply_service_principals(tenant, snapshot.service_principals)
    added, removed, unchanged = _apply_grants(tenant, run, snapshot, sp_ids)
    # In the same transaction: a manual revoke is done, or a revoked permission is back,
    # exactly when the snapshot that shows it is saved.
    revokes_after_sync(tenant=tenant, run=run)
    role_holders_apply(tenant=tenant, holders=snapshot.role_holders)
    now = timezone.now()
    SyncRun.objects.filter(pk=run.pk).update(
        status=SyncRun.Status.SUCCEEDED,
        finished_at=now,
        progress="",
        graph_requests=client.stats.requests,
        throttled_waits=client.stats.throttled_waits,
        throttled_seconds=client.stats.throttled_seconds,
        service_principals=len(snapshot.service_principals),
        grants_added=added,
        grants_removed=removed,
        grants_unchanged=unchanged,
    )
    Tenant.objects.filter(pk=tenant.pk).update(
        last_good_sync=run,
        next_sync_at=now + tenant.sync_interval,
        **tenant_names(tenant=tenant, organization=snapshot.organization),
    )
    audit_record(
        action=AuditEvent.Action.SYNC_SUCCEEDED,
        tenant=tenant,
        target=f"Sync {run.pk}",
        details={"sync_run": run.pk, "added": added, "removed": removed, "unchanged": unchanged},
    )
    # Once the snapshot is committed: ControlPlane alerts and after-sync digests.
    after_sync.delay_on_commit(run.pk)


def _apply_service_principals(tenant: Tenant, records: list[SpRecord]) -> dict[str, int]:
    """Upsert the tenant's service principals; returns primary keys by object id."""
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
    gone = [sp.pk for sp in existing.values() if sp.removed_at is None]
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
    tenant: Tenant, run: SyncRun, snapshot: Snapshot, sp_ids: dict[str, int]
) -> tuple[int, int, int]:
    current = dict(
        Grant.objects.filter(tenant=tenant, removed_in_run__isnull=True).values_list(
            "identity", "pk"
        )
    )
    app_ids = {record.object_id: record.app_id for record in snapshot.service_principals}
    seen = {record.identity: record for record in snapshot.grants}
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
            parse_datetime(record.granted_at) if record.granted_at else None,
            run.pk,
        )
        for identity, record in seen.items()
        if identity not in current
    ]
    _insert_grants(new)
    gone = [current[identity] for identity in current.keys() - seen.keys()]
    for start in range(0, len(gone), BULK_BATCH):
        Grant.objects.filter(pk__in=gone[start : start + BULK_BATCH]).update(removed_in_run=run)
    return len(new), len(gone), len(current) - len(gone)


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
    columns = ", ".join(
        connection.ops.quote_name(Grant._meta.get_field(name).column) for name in NEW_GRANT_FIELDS
    )
    table = connection.ops.quote_name(Grant._meta.db_table)
    with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
