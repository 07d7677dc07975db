"""The read phase of a consent sync (tenants.sync): every Graph collection a snapshot
needs, read completely into plain records before anything is written. A re-sync reads
service principals and delegated grants as what changed since the last one, merged into
what it had (tenants.delta); the snapshot is then built as from a full read.

A read that comes back short must not become a removal: the delegated-grant listing is
checked against Graph's count and, when short, the clients' own grant lists are merged in;
what could not be read is recorded in :class:`~tenants.snapshot.Unread` with a note.
"""

import datetime as dt
import itertools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from permissions.models import PermissionKind
from tenants.consenting_users import consenting_users_known, consenting_users_read
from tenants.delta import Listings, Raw, collections_read, stored_delta
from tenants.facts import facts_read
from tenants.graph import BATCH_ERROR, GraphClient, GraphError, Organization, organization_read
from tenants.memberships import role_holders_read
from tenants.models import Grant, Tenant, TenantDelta
from tenants.portal_app import DELEGATED_READ_NEEDS, READ_NEEDS
from tenants.provenance import consent_events_read
from tenants.signins import sign_ins_read
from tenants.snapshot import (
    GrantRecord,
    Snapshot,
    assignment_record,
    catalog_entries,
    delegated_records,
    graph_guid,
    has_application_roles,
    quoted,
    role_values,
    sp_record,
)

logger = logging.getLogger(__name__)

SP_FIELDS = (
    "id,appId,displayName,appOwnerOrganizationId,servicePrincipalType,accountEnabled,"
    "verifiedPublisher,appRoles"
)
CATALOG_FIELDS = "id,appId,displayName,appRoles,oauth2PermissionScopes"
ASSIGNMENT_FIELDS = "id,appRoleId,principalId,principalType,resourceId,createdDateTime"
DELEGATED_FIELDS = "id,clientId,consentType,principalId,resourceId,scope"


@dataclass(frozen=True)
class Previous:
    """What a read needs to know of the tenant's last snapshot."""

    # Whether the tenant has a snapshot at all (no: this is its first sync).
    synced: bool
    # Its current delegated grants: Graph object id -> client object id. A callable: it is
    # a query of every delegated grant, and needed only when the listing is short.
    delegated: Callable[[], dict[str, str]] = dict
    # The newest directory audit event kept (tenants.provenance): the next read starts there.
    consent_history_through: dt.datetime | None = None
    # Where its delta queries stand (tenants.delta); None: the next read is a full one.
    delta: TenantDelta | None = None
    # The consenting users already named (object ids): their names are not read again.
    named_users: Callable[[], set[str]] = set


def previous_of(tenant: Tenant) -> Previous:
    def delegated() -> dict[str, str]:
        rows = (
            Grant.objects.filter(
                tenant=tenant, removed_in_run__isnull=True, kind=PermissionKind.DELEGATED
            )
            .values_list("graph_object_id", "client__object_id")
            .distinct()
        )
        return {grant_id: str(client_id) for grant_id, client_id in rows}

    synced = tenant.last_good_sync_id is not None
    return Previous(
        synced=synced,
        delegated=delegated,
        delta=stored_delta(tenant) if synced else None,
        consent_history_through=tenant.consent_history_through,
        named_users=lambda: consenting_users_known(tenant),
    )


def read_snapshot(
    *,
    client: GraphClient,
    progress: Callable[[str], None] = lambda text: None,
    previous: Previous | None = None,
) -> Snapshot:
    previous = previous or Previous(synced=False)
    snapshot = Snapshot()
    progress("Reading the organization")
    snapshot.organization = _read_organization(client)
    collections = collections_read(
        client=client,
        stored=previous.delta,
        listings=Listings(
            service_principals=lambda: _list_service_principals(client, snapshot),
            grants=lambda listed: _read_delegated(client, listed, previous, snapshot),
            sp_delta=f"/servicePrincipals/delta?$select={SP_FIELDS}",
            grant_delta=f"/oauth2PermissionGrants/delta?$select={DELEGATED_FIELDS}",
        ),
        progress=progress,
    )
    for text in collections.notes:
        snapshot.note(text)
    snapshot.collections = collections
    by_object_id: dict[str, dict[str, Any]] = {}
    for sp in collections.service_principals.values():
        record = sp_record(sp, snapshot)
        if record is not None and record.object_id not in by_object_id:
            snapshot.service_principals.append(record)
            by_object_id[record.object_id] = sp
    known = by_object_id.keys()

    # Application grants are read per resource (appRoleAssignedTo), not per client
    # (appRoleAssignments): a tenant has a handful of APIs that define app roles and
    # thousands of clients, so this is one call per resource instead of one per client.
    # Only APIs with a role that applications may hold: an SSO app's roles are for users,
    # and its thousands of user and group assignments are not permissions. Graph has no
    # delta for them: they are read at every sync, a delta one too.
    resources = {
        object_id: sp for object_id, sp in by_object_id.items() if has_application_roles(sp)
    }
    roles = {
        (object_id, role_id): value
        for object_id, sp in resources.items()
        for role_id, value in role_values(sp)
    }
    progress(f"Reading application grants on {len(resources)} APIs")
    assignments = _read_assignments(client, sorted(resources), roles, snapshot)

    delegated, named_resources = _delegated_records(collections.grants.values(), known, snapshot)

    # Catalogs: app roles came with the list; scopes only for APIs that delegated grants
    # name, one read each (batched), since the list does not carry them. A delta read
    # reads them only for APIs that changed (the catalog keeps what it was told before).
    delegated_resources = sorted(named_resources & known)
    changed = collections.changed_principals
    to_describe = [r for r in delegated_resources if changed is None or r in changed]
    progress(f"Reading the permission catalogs of {len(to_describe)} APIs")
    scopes_by_resource = _read_scopes(client, to_describe, snapshot)

    granted_resources = {record.resource_object_id for record in assignments}
    for object_id in sorted((granted_resources | set(delegated_resources)) & known):
        snapshot.catalog.extend(
            catalog_entries(by_object_id[object_id], scopes_by_resource.get(object_id, []))
        )
    snapshot.grants = [record for record in assignments if record.client_object_id in known]
    snapshot.grants += delegated
    collections.seal()
    progress("Reading who holds the portal's roles")
    snapshot.role_holders = role_holders_read(client)
    progress("Reading sign-in activity")
    snapshot.sign_ins = sign_ins_read(client, snapshot.note)
    # Owners are no property of a principal, so no delta shows them changing: a delta
    # read reads the facts of the principals its round reported (a new app's owners, a
    # changed one's credentials); the rest keep theirs until the next full read.
    reported = collections.reported_principals
    if reported is None or reported:
        progress("Reading owners and credentials")
        snapshot.facts = facts_read(client, snapshot, only=reported)
    progress("Reading consent history")
    snapshot.consent_events = consent_events_read(
        client, snapshot, previous.consent_history_through
    )
    progress("Reading the names of users who consented")
    snapshot.user_names = consenting_users_read(client, snapshot, known=previous.named_users())
    return snapshot


def _list_service_principals(client: GraphClient, snapshot: Snapshot) -> Raw:
    """Every service principal by id, as listed (the first of a repeated id kept)."""
    listed: Raw = {}
    for page in client.pages(f"/servicePrincipals?$select={SP_FIELDS}&$top=999", needs=READ_NEEDS):
        for sp in page:
            object_id = sp.get("id") if isinstance(sp, dict) else None
            if isinstance(object_id, str):
                listed.setdefault(object_id, sp)
            else:
                sp_record(sp, snapshot)  # skipped, with a note
    return listed


def _read_organization(client: GraphClient) -> Organization:
    """The tenant's name and default domain; optional, since a portal app granted only
    what the grants need (no Directory.Read.All) may not read the organization."""
    try:
        return organization_read(client)
    except GraphError as exc:
        if exc.status != 403:
            raise
        return Organization()


def _read_assignments(
    client: GraphClient,
    resource_ids: list[str],
    roles: dict[tuple[str, str], str],
    snapshot: Snapshot,
) -> list[GrantRecord]:
    """All app-role assignments on the given resources that go to service principals, as
    records; ``roles`` names each (resource, app role id)."""
    first_pages = client.batch(
        [
            {
                "id": str(index),
                "method": "GET",
                "url": f"/servicePrincipals/{object_id}/appRoleAssignedTo?$select={ASSIGNMENT_FIELDS}&$top=999",
            }
            for index, object_id in enumerate(resource_ids)
        ],
        needs=READ_NEEDS,
        tolerate=frozenset({404}),
    )
    records: list[GrantRecord] = []
    for index, object_id in enumerate(resource_ids):
        body = first_pages.get(str(index), {})
        if BATCH_ERROR in body:
            _vanished(snapshot, object_id, "its application grants", snapshot.unread.app_resources)
            continue
        pages: Iterable[list[dict[str, Any]]] = [body.get("value") or []]
        next_link = body.get("@odata.nextLink")
        if next_link:
            pages = itertools.chain(pages, client.pages(next_link, needs=READ_NEEDS))
        try:
            for page in pages:
                for assignment in page:
                    # Assignments to users and groups let people into an app; they are not
                    # permissions an application holds.
                    if isinstance(assignment, dict) and (
                        assignment.get("principalType") == "ServicePrincipal"
                    ):
                        record = assignment_record(assignment, roles, snapshot)
                        if record is not None:
                            records.append(record)
        except GraphError as exc:
            if exc.status != 404:
                raise
            _vanished(snapshot, object_id, "its application grants", snapshot.unread.app_resources)
    return records


def _read_delegated(
    client: GraphClient, listed_principals: Raw, previous: Previous, snapshot: Snapshot
) -> Raw:
    """Every delegated grant by id, as listed.

    The plain listing has been seen to leave grants out (msgraph-sdk-powershell#2469), so
    it is checked against Graph's count (an advanced query, which sees them all). When it
    is short, the clients' own grant lists fill it in, merged by grant id: first the
    clients whose grants the last snapshot had and the listing did not (what would
    otherwise be removals), then, if the count is still not reached, every other client
    (what would otherwise be missed: on a first sync, all of them), among the listed
    service principals.

    The raw grants are kept (tenants.delta merges the next round's changes into them);
    the records are made from them afterwards (:func:`_delegated_records`)."""
    grants: Raw = {}

    def take(grant: Any) -> None:
        grant_id = grant.get("id") if isinstance(grant, dict) else None
        if isinstance(grant_id, str):
            grants.setdefault(grant_id, grant)

    for page in client.pages(
        f"/oauth2PermissionGrants?$select={DELEGATED_FIELDS}&$top=999", needs=DELEGATED_READ_NEEDS
    ):
        for grant in page:
            take(grant)
    listed = len(grants)
    total = _count_grants(client, snapshot)
    if total is not None and listed >= total:
        return grants

    known = {guid for object_id in listed_principals if (guid := graph_guid(object_id))}
    earlier = previous.delegated() if previous.synced else {}
    would_go = sorted({c for g, c in earlier.items() if g not in grants and c in known})
    _read_client_grants(client, would_go, take, snapshot)
    if total is None and previous.synced:
        snapshot.note(
            "Delegated grants: the listing could not be checked against Graph's count, so "
            f"each grant it did not show was looked up by its client ({len(would_go)} "
            "clients) before being recorded as removed."
        )
        return grants
    if total is None or len(grants) < total:
        rest = sorted(known - set(would_go))
        _read_client_grants(client, rest, take, snapshot)
    found = len(grants) - listed
    if total is None:
        snapshot.note(
            "Delegated grants: the listing could not be checked against Graph's count, so "
            f"every client's own grants were read as well ({found} more found)."
        )
    elif len(grants) < total:
        snapshot.note(
            f"Delegated grants: Graph counts {total}, the listing showed {listed}; every "
            f"client's own grants were read and {found} more found, {total - len(grants)} "
            "still unaccounted for (Graph's count may lag behind)."
        )
    else:
        snapshot.note(
            f"Delegated grants: the listing showed {listed} of the {total} Graph counts; "
            f"the other {found} were read from their clients' own grants."
        )
    return grants


def _delegated_records(
    grants: Iterable[Any], known: Iterable[str], snapshot: Snapshot
) -> tuple[list[GrantRecord], set[str]]:
    """Delegated grants between known service principals, one record per scope, and every
    resource that delegated grants name."""
    known = set(known)
    records: list[GrantRecord] = []
    resources: set[str] = set()
    for grant in grants:
        parsed = delegated_records(grant, snapshot)
        if parsed is None:
            continue
        client_id, resource_id, grant_records = parsed
        resources.add(resource_id)
        if client_id in known and resource_id in known:
            records.extend(grant_records)
    return records, resources


def _count_grants(client: GraphClient, snapshot: Snapshot) -> int | None:
    """Graph's count of every delegated grant, or None where Graph will not count.

    ``/oauth2PermissionGrants/$count`` rather than ``?$count=true&$top=1``: the same one
    request, answered with a number rather than a grant as well. Counting is an advanced
    query: without ``ConsistencyLevel: eventual`` Graph refuses it (400)."""
    try:
        response = client.request(
            "GET",
            "/oauth2PermissionGrants/$count",
            needs=DELEGATED_READ_NEEDS,
            headers={"ConsistencyLevel": "eventual", "Accept": "text/plain"},
        )
    except GraphError as exc:
        if exc.retryable or exc.status is None:
            raise
        snapshot.note(
            f"Graph would not count the delegated grants (HTTP {exc.status} "
            f"{exc.code or 'error'}); the listing was checked client by client instead."
        )
        return None
    text = response.text.strip()
    if not text.isdigit():
        snapshot.note(
            f"Graph's count of delegated grants was not a number ({quoted(text)}); the "
            "listing was checked client by client instead."
        )
        return None
    return int(text)


def _read_client_grants(
    client: GraphClient, client_ids: list[str], take: Callable[[Any], None], snapshot: Snapshot
) -> None:
    """Each client's own delegated grants (``/servicePrincipals/{id}/oauth2PermissionGrants``),
    batched, passed to ``take`` one by one."""
    if not client_ids:
        return
    bodies = client.batch(
        [
            {
                "id": str(index),
                "method": "GET",
                "url": f"/servicePrincipals/{object_id}/oauth2PermissionGrants"
                f"?$select={DELEGATED_FIELDS}&$top=999",
            }
            for index, object_id in enumerate(client_ids)
        ],
        needs=DELEGATED_READ_NEEDS,
        tolerate=frozenset({404}),
    )
    for index, object_id in enumerate(client_ids):
        body = bodies.get(str(index), {})
        if BATCH_ERROR in body:
            _vanished(
                snapshot, object_id, "its delegated grants", snapshot.unread.delegated_clients
            )
            continue
        for grant in body.get("value") or []:
            take(grant)
        next_link = body.get("@odata.nextLink")
        if not next_link:
            continue
        try:
            for page in client.pages(next_link, needs=DELEGATED_READ_NEEDS):
                for grant in page:
                    take(grant)
        except GraphError as exc:
            if exc.status != 404:
                raise
            _vanished(
                snapshot, object_id, "its delegated grants", snapshot.unread.delegated_clients
            )


def _read_scopes(
    client: GraphClient, resource_ids: list[str], snapshot: Snapshot
) -> dict[str, list[dict[str, Any]]]:
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
        tolerate=frozenset({404}),
    )
    scopes: dict[str, list[dict[str, Any]]] = {}
    for object_id, body in bodies.items():
        if BATCH_ERROR in body:
            snapshot.note(
                f"Service principal {object_id} answered 404 (it was listed a moment ago): "
                "its delegated permissions' descriptions were not read."
            )
            continue
        found = body.get("oauth2PermissionScopes")
        scopes[object_id] = (
            [s for s in found if isinstance(s, dict)] if isinstance(found, list) else []
        )
    return scopes


def _vanished(snapshot: Snapshot, object_id: str, what: str, unread: set[str]) -> None:
    unread.add(object_id)
    snapshot.note(
        f"Service principal {object_id} answered 404 (it was listed a moment ago): {what} "
        "were not read and stay as the last sync saw them."
    )
