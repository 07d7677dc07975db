"""What a sync reads from Graph: a tenant's snapshot as plain records, made from Graph's
JSON as from hostile input, and kept as compressed JSON while it is held.

Strings and ids from Graph are not trusted: a GUID field that is not a GUID, a name with
NUL or a right-to-left override, a scope longer than any permission, an object where a
string should be. Each is cleaned or skipped with a note on the snapshot, and what is
skipped goes into :class:`Unread`, so that its grants stay as they were: a read the
portal could not use is not a removal.
"""

import json
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import astuple, dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, TypeGuard

from permissions.catalog import GraphPermission
from permissions.models import PermissionKind
from portal.text import HIDDEN_MARK, plain
from tenants.graph import Organization
from tenants.memberships import RoleHolders
from tenants.models import Grant
from tenants.signins import SignIns

if TYPE_CHECKING:
    from tenants.consenting_users import UserName
    from tenants.delta import Collections
    from tenants.facts import Facts
    from tenants.provenance import ConsentEvents

# A run's notes are for people: past this many, one line says how many more there were.
MAX_NOTES = 100
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Graph's ids of assignments and grants are opaque base64url strings; anything else in
# one is not an id the portal will store or send back.
_OPAQUE_ID = re.compile(r"^[A-Za-z0-9_\-]{1,200}$")
# Bidirectional overrides and isolates: they make a name read differently from what it is.


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
class Unread:
    """What a run could not read. The grants each entry covers stay as the last snapshot
    had them: a read that did not happen is not a removal (nor an addition)."""

    # Resources whose application grants (appRoleAssignedTo) answered 404.
    app_resources: set[str] = field(default_factory=set)
    # Clients whose own delegated grants answered 404 while the listing was short.
    delegated_clients: set[str] = field(default_factory=set)
    # Listed principals skipped for fields the portal cannot store (no usable appId):
    # kept as they were, with every grant they hold or are the resource of.
    principals: set[str] = field(default_factory=set)
    # Assignments and delegated grants (Graph object ids) skipped for unusable fields.
    grant_objects: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(
            self.app_resources or self.delegated_clients or self.principals or self.grant_objects
        )


@dataclass
class Snapshot:
    # The organization's display name and default domain, for the tenant's record.
    organization: Organization = field(default_factory=Organization)
    service_principals: list[SpRecord] = field(default_factory=list)
    grants: list[GrantRecord] = field(default_factory=list)
    catalog: list[GraphPermission] = field(default_factory=list)
    unread: Unread = field(default_factory=Unread)
    notes: list[str] = field(default_factory=list)
    notes_left_off: int = 0
    # Who holds the portal's roles (tenants.memberships); None: not read, nobody's roles
    # change. Not kept with a held snapshot: roles are applied only as fresh as a read.
    role_holders: RoleHolders | None = None
    # Entra's sign-in activity (tenants.signins); None: not read. Not kept with a held
    # snapshot either: it is evidence as fresh as its read, not part of the grants.
    sign_ins: "SignIns | None" = None
    # Owners, credentials and the like (tenants.facts); None: not read. Not held either.
    facts: "Facts | None" = None
    # Directory audit events about consents (tenants.provenance); None: not read. Not held:
    # a later sync reads them again from where the kept ones end.
    consent_events: "ConsentEvents | None" = None
    # The raw service principals and delegated grants and where their delta queries stand
    # (tenants.delta), kept when the snapshot is applied. None for a held snapshot applied
    # later: the delta state stays where it was, and its next round still covers all since.
    collections: "Collections | None" = None
    # The names of users newly seen consenting (tenants.consenting_users), by object id;
    # None: not read. Not held either.
    user_names: "dict[str, UserName] | None" = None

    def note(self, text: str) -> None:
        """Something the run skipped or worked around, in words for the run's page."""
        if len(self.notes) < MAX_NOTES:
            self.notes.append(text)
        else:
            self.notes_left_off += 1

    def run_notes(self) -> list[str]:
        more = [f"... and {self.notes_left_off} more"] if self.notes_left_off else []
        return [*self.notes, *more]


def sp_record(sp: Any, snapshot: Snapshot) -> SpRecord | None:
    """A listed service principal, or None (with a note) for one the portal cannot store."""
    if not isinstance(sp, dict):
        snapshot.note(
            "The service principal listing held something that is not an object; skipped."
        )
        return None
    object_id = graph_guid(sp.get("id"))
    if object_id is None:
        snapshot.note(
            f"A service principal with an unusable id ({quoted(sp.get('id'))}) was skipped."
        )
        return None
    app_id = graph_guid(sp.get("appId"))
    if app_id is None:
        snapshot.unread.principals.add(object_id)
        snapshot.note(
            f"Service principal {object_id} has no usable appId ({quoted(sp.get('appId'))}): "
            "it and its grants stay as the last sync saw them."
        )
        return None
    name, name_changed = graph_text(sp.get("displayName"), 300)
    if not name:
        snapshot.note(
            f"Service principal {object_id} has no display name; it is shown by its appId."
        )
        name = app_id
    elif name_changed:
        snapshot.note(
            f"Service principal {object_id}: its display name had control characters or was "
            f"too long; it is shown as {name[:80]!r}."
        )
    publisher = sp.get("verifiedPublisher")
    publisher_name = (
        graph_text(publisher.get("displayName"), 300)[0] if isinstance(publisher, dict) else ""
    )
    owner = sp.get("appOwnerOrganizationId")
    owner_id = graph_guid(owner)
    if owner is not None and owner_id is None:
        snapshot.note(
            f"Service principal {object_id}: its owner tenant ({quoted(owner)}) is not a GUID; ignored."
        )
    return SpRecord(
        object_id=object_id,
        app_id=app_id,
        display_name=name,
        publisher=publisher_name,
        app_owner_tenant_id=owner_id,
        service_principal_type=graph_text(sp.get("servicePrincipalType"), 40)[0],
        account_enabled=sp.get("accountEnabled", True) is not False,
    )


def _app_roles(sp: dict[str, Any]) -> list[dict[str, Any]]:
    roles = sp.get("appRoles")
    return [role for role in roles if isinstance(role, dict)] if isinstance(roles, list) else []


def _allows_applications(role: dict[str, Any]) -> bool:
    # Graph always sends allowedMemberTypes; where it is missing the role is read rather
    # than assumed to be for users, so that no application permission goes unseen.
    members = role.get("allowedMemberTypes", ["Application"])
    return isinstance(members, list) and "Application" in members


def has_application_roles(sp: dict[str, Any]) -> bool:
    return any(_allows_applications(role) for role in _app_roles(sp))


def role_values(sp: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(role id, value) of a resource's roles; an unusable value is "" (shown as unknown)."""
    for role in _app_roles(sp):
        role_id = graph_guid(role.get("id"))
        if role_id is not None:
            yield role_id, permission_value(role.get("value"))


def assignment_record(
    assignment: dict[str, Any], roles: dict[tuple[str, str], str], snapshot: Snapshot
) -> GrantRecord | None:
    """An app-role assignment as a grant record, named from ``roles`` ((resource, role id)
    -> value); None (with a note, the grant kept as it was) when its fields are unusable."""
    assignment_id = assignment.get("id")
    if not _opaque_id(assignment_id):
        snapshot.note(
            f"An application grant with an unusable id ({quoted(assignment_id)}) was skipped."
        )
        return None
    principal_id = graph_guid(assignment.get("principalId"))
    resource_id = graph_guid(assignment.get("resourceId"))
    role_id = graph_guid(assignment.get("appRoleId"))
    if principal_id is None or resource_id is None or role_id is None:
        snapshot.unread.grant_objects.add(assignment_id)
        snapshot.note(
            f"Application grant {assignment_id} names a principal, resource or role that is "
            "not a GUID: it stays as the last sync saw it."
        )
        return None
    granted_at = assignment.get("createdDateTime")
    return GrantRecord(
        identity=f"a:{assignment_id}",
        client_object_id=principal_id,
        resource_object_id=resource_id,
        kind=PermissionKind.APPLICATION,
        # An id the resource no longer defines (or never published) stays visible as
        # unknown rather than being dropped.
        value=roles.get((resource_id, role_id), ""),
        permission_id=role_id,
        consent=Grant.Consent.ADMIN,
        principal_id=None,
        graph_object_id=assignment_id,
        granted_at=granted_at if isinstance(granted_at, str) else None,
    )


def delegated_records(
    grant: dict[str, Any], snapshot: Snapshot
) -> tuple[str, str, list[GrantRecord]] | None:
    """The client, the resource and one record per scope of a delegated grant; None (with
    a note, the grant kept as it was) for one whose fields the portal cannot use."""
    grant_id = grant["id"]
    client_id = graph_guid(grant.get("clientId"))
    resource_id = graph_guid(grant.get("resourceId"))
    user_consent = grant.get("consentType") == "Principal"
    principal_id = graph_guid(grant.get("principalId")) if user_consent else None
    scope = grant.get("scope")
    if (
        not _opaque_id(grant_id)
        or client_id is None
        or resource_id is None
        or (user_consent and principal_id is None)
        or not isinstance(scope, str | None)
    ):
        if isinstance(grant_id, str) and _opaque_id(grant_id):
            snapshot.unread.grant_objects.add(grant_id)
        snapshot.note(
            f"Delegated grant {quoted(grant_id)} has a client, resource, user or scope the "
            "portal cannot use: it stays as the last sync saw it."
        )
        return None
    records = []
    # Scope strings are space-separated and may carry extra spaces at the ends.
    for value in dict.fromkeys((scope or "").split()):
        if permission_value(value) != value:
            snapshot.unread.grant_objects.add(grant_id)
            snapshot.note(
                f"Delegated grant {grant_id} has a scope the portal cannot store "
                f"({quoted(value)}): the grant's scopes stay as the last sync saw them."
            )
            continue
        records.append(
            GrantRecord(
                identity=f"d:{grant_id}:{value.lower()}",
                client_object_id=client_id,
                resource_object_id=resource_id,
                kind=PermissionKind.DELEGATED,
                value=value,
                permission_id=None,
                consent=Grant.Consent.USER if user_consent else Grant.Consent.ADMIN,
                principal_id=principal_id,
                graph_object_id=grant_id,
                granted_at=None,
            )
        )
    return client_id, resource_id, records


def catalog_entries(
    resource: dict[str, Any], scopes: list[dict[str, Any]]
) -> Iterable[GraphPermission]:
    """The permissions a resource defines, as far as Graph described them usably."""
    app_id = graph_guid(resource.get("appId"))
    if app_id is None:  # pragma: no cover - such a principal is skipped when listed
        return
    common = {
        "resource_app_id": app_id,
        "resource_name": graph_text(resource.get("displayName"), 200)[0] or app_id,
    }
    for role in _app_roles(resource):
        value, role_id = permission_value(role.get("value")), graph_guid(role.get("id"))
        if _allows_applications(role) and value and role_id:
            yield GraphPermission(
                **common,
                kind=PermissionKind.APPLICATION,
                value=value,
                graph_id=role_id,
                display_name=graph_text(role.get("displayName"), 300)[0],
                description=graph_text(role.get("description"), 4000)[0],
                admin_consent_required=True,  # application permissions always need an admin
                enabled=role.get("isEnabled", True) is not False,
            )
    for scope in scopes:
        value, scope_id = permission_value(scope.get("value")), graph_guid(scope.get("id"))
        if value and scope_id:
            yield GraphPermission(
                **common,
                kind=PermissionKind.DELEGATED,
                value=value,
                graph_id=scope_id,
                display_name=graph_text(scope.get("adminConsentDisplayName"), 300)[0],
                description=graph_text(scope.get("adminConsentDescription"), 4000)[0],
                admin_consent_required=scope.get("type") == "Admin",
                enabled=scope.get("isEnabled", True) is not False,
            )


def graph_guid(value: Any) -> str | None:
    """A GUID from Graph in one spelling (lower case), or None for anything else: every
    id the readers (this module, tenants.facts, tenants.provenance) take from Graph goes
    through it, so that ids compare equal however Graph spelled them."""
    if isinstance(value, str) and _GUID.match(value):
        return value.lower()
    return None


def _opaque_id(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and bool(_OPAQUE_ID.match(value))


def permission_value(value: Any) -> str:
    """A permission's value (an app role's or a scope), or "" when it is not one the portal
    can store and show: too long for a grant's identity, or with characters no
    permission name has."""
    if not isinstance(value, str) or not value or len(value) > 190:
        return ""
    # isprintable() is False for control, format (bidi overrides among them) and
    # surrogate characters and every space but " ": one C-level pass per value.
    # HIDDEN_MARK: graph_json's stand-in for a NUL, which no permission name has either.
    if not value.isprintable() or " " in value or HIDDEN_MARK in value:
        return ""
    return value


def graph_text(value: Any, limit: int) -> tuple[str, bool]:
    """A name or description from Graph, fit to store and show: each hidden character
    (control, bidi override, zero-width; PostgreSQL refuses NUL, an override makes a name
    read differently from what it is) made visible as portal.text's mark, which the pages
    flag; whitespace runs made one space; at most ``limit`` characters. Returns the text
    and whether anything had to change."""
    if not isinstance(value, str):
        return "", False
    cleaned = " ".join(plain(value).split())
    shortened = cleaned[:limit]
    return shortened, shortened != value.strip()


def quoted(value: Any) -> str:
    """A value from Graph as a note may quote it: short and printable."""
    text = repr(value) if not isinstance(value, str) else repr(graph_text(value, 60)[0])
    return text[:80]


SNAPSHOT_FORMAT = 1


def snapshot_dump(snapshot: Snapshot) -> bytes:
    """A snapshot as compressed JSON, to keep while it is held."""
    data = {
        "format": SNAPSHOT_FORMAT,
        "organization": [snapshot.organization.name, snapshot.organization.default_domain],
        "service_principals": [astuple(record) for record in snapshot.service_principals],
        "grants": [list(record) for record in snapshot.grants],
        "catalog": [astuple(entry) for entry in snapshot.catalog],
        "unread": {
            "app_resources": sorted(snapshot.unread.app_resources),
            "delegated_clients": sorted(snapshot.unread.delegated_clients),
            "principals": sorted(snapshot.unread.principals),
            "grant_objects": sorted(snapshot.unread.grant_objects),
        },
        "notes": snapshot.run_notes(),
    }
    return zlib.compress(json.dumps(data, separators=(",", ":")).encode())


def snapshot_load(blob: bytes) -> Snapshot:
    data = json.loads(zlib.decompress(blob))
    if data.get("format") != SNAPSHOT_FORMAT:
        raise ValueError("this held snapshot was kept by another version of the portal")
    unread = data["unread"]
    return Snapshot(
        organization=Organization(*data["organization"]),
        service_principals=[SpRecord(*row) for row in data["service_principals"]],
        grants=[GrantRecord(*row) for row in data["grants"]],
        catalog=[GraphPermission(*row) for row in data["catalog"]],
        unread=Unread(**{name: set(ids) for name, ids in unread.items()}),
        notes=list(data["notes"]),
    )
