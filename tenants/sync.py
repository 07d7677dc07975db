"""Consent sync: read a tenant's grants from Graph and record them as a new snapshot.

Two phases, so that a failure can never look like a removal:

1. read: every Graph collection is read completely into memory (plain tuples, not model
   instances). Nothing is written but the run's progress.
2. apply: one transaction upserts the catalog entries Graph returned, the service
   principals and the grant history, and closes the run.

A read that fails leaves the previous snapshot untouched and the run failed, with the
error in words an admin can act on.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from permissions.catalog import GraphPermission, catalog_apply_graph
from permissions.models import PermissionKind
from tenants.graph import GraphClient, GraphError
from tenants.models import Grant, ServicePrincipal, SyncRun, Tenant

logger = logging.getLogger(__name__)

SP_FIELDS = (
    "id,appId,displayName,appOwnerOrganizationId,servicePrincipalType,accountEnabled,"
    "verifiedPublisher,appRoles"
)
CATALOG_FIELDS = "id,appId,displayName,appRoles,oauth2PermissionScopes"
ASSIGNMENT_FIELDS = "id,appRoleId,principalId,principalType,resourceId,createdDateTime"
DELEGATED_FIELDS = "id,clientId,consentType,principalId,resourceId,scope"
READ_NEEDS = "Application.Read.All (or Directory.Read.All)"
DELEGATED_NEEDS = "DelegatedPermissionGrant.Read.All (or Directory.Read.All)"
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


@dataclass(frozen=True)
class GrantRecord:
    """One grant as read from Graph, before it is matched against the stored history."""

    identity: str
    client_object_id: str
    resource_object_id: str
    kind: str
    value: str
    permission_id: str | None
    consent: str
    principal_id: str | None
    graph_object_id: str
    granted_at: datetime | None


@dataclass
class Snapshot:
    service_principals: list[SpRecord] = field(default_factory=list)
    grants: list[GrantRecord] = field(default_factory=list)
    catalog: list[GraphPermission] = field(default_factory=list)


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
        snapshot = read_snapshot(client=client, progress=lambda text: _progress(run, text, client))
        apply_snapshot(run=run, snapshot=snapshot, client=client)
    except Exception as exc:
        _fail(run, exc, client)
        raise
    run.refresh_from_db()
    return run


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


# -- read ------------------------------------------------------------------------------------


def read_snapshot(*, client: GraphClient, progress: Any = lambda text: None) -> Snapshot:
    snapshot = Snapshot()
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
    delegated = [
        grant
        for page in client.pages(
            f"/oauth2PermissionGrants?$select={DELEGATED_FIELDS}&$top=999", needs=DELEGATED_NEEDS
        )
        for grant in page
    ]

    # Catalogs: app roles came with the list; scopes only for APIs that delegated grants
    # name, one read each (batched), since the list does not carry them.
    delegated_resources = sorted({grant["resourceId"] for grant in delegated} & by_object_id.keys())
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
    app_ids = {sp["id"]: sp["appId"] for sp in raw_sps}
    snapshot.grants = [
        _assignment_record(a, roles) for a in assignments if a["principalId"] in app_ids
    ] + [
        record
        for grant in delegated
        if grant["clientId"] in app_ids and grant["resourceId"] in app_ids
        for record in _delegated_records(grant)
    ]
    return snapshot


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
        granted_at=parse_datetime(assignment["createdDateTime"])
        if assignment.get("createdDateTime")
        else None,
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
    catalog_apply_graph(entries=snapshot.catalog)
    sp_ids = _apply_service_principals(tenant, snapshot.service_principals)
    added, removed, unchanged = _apply_grants(tenant, run, snapshot, sp_ids)
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
        last_good_sync=run, next_sync_at=now + tenant.sync_interval
    )


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
        Grant(
            tenant=tenant,
            client_id=sp_ids[record.client_object_id],
            resource_app_id=UUID(app_ids[record.resource_object_id]),
            resource_object_id=UUID(record.resource_object_id),
            kind=record.kind,
            value=record.value,
            permission_id=UUID(record.permission_id) if record.permission_id else None,
            consent=record.consent,
            principal_id=UUID(record.principal_id) if record.principal_id else None,
            graph_object_id=record.graph_object_id,
            identity=record.identity,
            granted_at=record.granted_at,
            first_seen_run=run,
        )
        for identity, record in seen.items()
        if identity not in current
    ]
    Grant.objects.bulk_create(new, batch_size=BULK_BATCH)
    gone = [pk for identity, pk in current.items() if identity not in seen]
    for start in range(0, len(gone), BULK_BATCH):
        Grant.objects.filter(pk__in=gone[start : start + BULK_BATCH]).update(removed_in_run=run)
    return len(new), len(gone), len(current) - len(gone)
