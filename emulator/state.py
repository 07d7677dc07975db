"""The emulated directory, in memory: tenants, users, service principals and grants.

One re-entrant lock guards everything; handlers hold it only while they read or change
the model. Each object's JSON is cached per `$select`, so a 999-item page is a join of
ready bytes rather than 999 `json.dumps` calls.

Graph's imperfections (see `behaviour.py`) live here too: a write made while a
replication lag is set leaves a `Stale` record with the object as it was, and reads
show that until the lag has passed; each write is appended to a per-collection change
log that delta queries serve; app role changes are logged with their time so tokens
can be issued as if they had not happened yet.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import threading
import uuid
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from emulator import evidence
from emulator.behaviour import Behaviour, Clock
from emulator.scenario import (
    ADD_GRANT,
    ADD_ROLE,
    CONSENT,
    REMOVE_GRANT,
    REMOVE_ROLE,
    Application,
    AuditSpec,
    Credential,
    Grant,
    Group,
    Moment,
    Permission,
    Scenario,
    SignIns,
    Tenant,
    TenantApp,
    User,
    object_id,
)

# Microsoft's own tenant owns the first-party resource apps such as Microsoft Graph.
MICROSOFT_TENANT_ID = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
# Directory role template ids (Microsoft Entra built-in roles): the same in every tenant.
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
# Entra lists the default User role in every member's wids.
DEFAULT_USER_ROLE = "b79fbf4d-3ef9-4689-8143-76b194e85509"
USER_DEFAULT_FIELDS = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
# Every property Graph v1.0 returns for these types, in its order; ids and names are
# filled in per object.
SP_TEMPLATE: dict[str, Any] = {
    "id": None,
    "deletedDateTime": None,
    "accountEnabled": True,
    "alternativeNames": [],
    "appDescription": None,
    "appDisplayName": None,
    "appId": None,
    "applicationTemplateId": None,
    "appOwnerOrganizationId": None,
    "appRoleAssignmentRequired": False,
    # Not in Graph's documented v1.0 schema, yet its REST API returns it and takes it in
    # $select (msgraph-sdk-java#2246, msgraph-sdk-dotnet#3062): treat it as optional.
    "createdDateTime": None,
    "description": None,
    "disabledByMicrosoftStatus": None,
    "displayName": None,
    "homepage": None,
    "loginUrl": None,
    "logoutUrl": None,
    "notes": None,
    "notificationEmailAddresses": [],
    "preferredSingleSignOnMode": None,
    "preferredTokenSigningKeyThumbprint": None,
    "replyUrls": [],
    "servicePrincipalNames": [],
    "servicePrincipalType": "Application",
    "signInAudience": "AzureADMultipleOrgs",
    "tags": [],
    "tokenEncryptionKeyId": None,
    "info": {
        "logoUrl": None,
        "marketingUrl": None,
        "privacyStatementUrl": None,
        "supportUrl": None,
        "termsOfServiceUrl": None,
    },
    "samlSingleSignOnSettings": None,
    "verifiedPublisher": None,
    "addIns": [],
    "appRoles": [],
    "keyCredentials": [],
    "oauth2PermissionScopes": [],
    "passwordCredentials": [],
    "resourceSpecificApplicationPermissions": [],
}
USER_TEMPLATE: dict[str, Any] = {
    "id": None,
    "businessPhones": [],
    "displayName": None,
    "givenName": None,
    "jobTitle": None,
    "mail": None,
    "mobilePhone": None,
    "officeLocation": None,
    "preferredLanguage": "en-US",
    "surname": None,
    "userPrincipalName": None,
    "accountEnabled": True,
    "companyName": None,
    "mailNickname": None,
    "userType": "Member",
}
ASSIGNMENT_FIELDS = (
    "id",
    "deletedDateTime",
    "appRoleId",
    "createdDateTime",
    "principalDisplayName",
    "principalId",
    "principalType",
    "resourceDisplayName",
    "resourceId",
)
GRANT_FIELDS = ("clientId", "consentType", "id", "principalId", "resourceId", "scope")
ALL_FIELDS = ("*",)  # Entity.json: every field the object has, in order
_SELECT_CACHE_LIMIT = 4  # distinct $select variants cached per object
# The two collections that keep a change log for delta queries.
SP_LOG, GRANT_LOG = "servicePrincipals", "oauth2PermissionGrants"
# An application object's fields (v1.0 application resource), those this emulator keeps.
APPLICATION_TEMPLATE: dict[str, Any] = {
    "id": None,
    "deletedDateTime": None,
    "appId": None,
    "applicationTemplateId": None,
    "createdDateTime": None,
    "description": None,
    "disabledByMicrosoftStatus": None,
    "displayName": None,
    "identifierUris": [],
    "notes": None,
    "publisherDomain": None,
    "signInAudience": "AzureADMultipleOrgs",
    "tags": [],
    "verifiedPublisher": None,
    "appRoles": [],
    "keyCredentials": [],
    "passwordCredentials": [],
    "requiredResourceAccess": [],
    "web": None,
}
# Owners as /owners lists them: a directoryObject's type, then the object's fields.
OWNER_TYPES = {"user": "#microsoft.graph.user", "sp": "#microsoft.graph.servicePrincipal"}
# Audit events are kept 7 days on Entra ID Free, 30 with P1 (data retention policies).
RETENTION_DAYS = {False: 7, True: 30}
_NO_EXPIRY = dt.datetime(2299, 12, 31, tzinfo=dt.UTC).timestamp()
_CLIENT_TO_RESOURCE = (("app_client", "app_resource"), ("delegated_client", "delegated_resource"))
# Service principal fields a PATCH may change here.
SP_WRITABLE = frozenset(
    {"accountEnabled", "displayName", "tags", "notes", "description", "appRoleAssignmentRequired"}
)


class GraphError(Exception):
    """A failure Graph reports with its error envelope."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def not_found(object_id: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{object_id}' does not exist or one of its queried reference-property "
        "objects are not present.",
    )


class Entity:
    """One directory object: its Graph JSON fields, in Graph's order."""

    __slots__ = ("seq", "data", "_json")

    def __init__(self, seq: int, data: dict[str, Any]) -> None:
        self.seq = seq  # creation order: what skip tokens resume after
        self.data = data
        self._json: dict[tuple[str, ...], bytes] = {}

    @property
    def id(self) -> str:
        return self.data["id"]

    def json(self, fields: tuple[str, ...]) -> bytes:
        cached = self._json.get(fields)
        if cached is None:
            chosen = self.data if fields == ALL_FIELDS else {n: self.data[n] for n in fields}
            cached = json.dumps(chosen, separators=(",", ":")).encode()
            if len(self._json) < _SELECT_CACHE_LIMIT:
                self._json[fields] = cached
        return cached

    def update(self, **changes: Any) -> None:
        self.data = {**self.data, **changes}
        self._json = {}


class Collection:
    """Objects in creation order, addressable by id, paged by creation order."""

    def __init__(self) -> None:
        self._by_id: dict[str, Entity] = {}
        self._ordered: list[Entity] | None = []

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Entity]:
        return iter(self._by_id.values())

    def get(self, object_id: str) -> Entity | None:
        return self._by_id.get(object_id)

    def add(self, entity: Entity) -> None:
        self._by_id[entity.id] = entity
        if self._ordered is not None:
            self._ordered.append(entity)  # seqs only grow, so order holds

    def remove(self, object_id: str) -> Entity | None:
        entity = self._by_id.pop(object_id, None)
        if entity is not None:
            self._ordered = None  # rebuilt on the next page
        return entity

    def page(
        self,
        after_seq: int,
        top: int,
        match: Callable[[Entity], bool] | None,
        overlay: Mapping[str, Entity | None] | None = None,
    ) -> tuple[list[Entity], bool]:
        """Up to `top` objects created after `after_seq`, and whether more follow.
        `overlay` shows other versions of some objects: by id, the object as a lagging
        replica has it, or None where the replica does not have it."""
        ordered = self._view(overlay)
        start = bisect_right(ordered, after_seq, key=lambda e: e.seq)
        if match is None:
            found = ordered[start : start + top + 1]
        else:
            found = []
            for entity in itertools.islice(ordered, start, None):
                if match(entity):
                    found.append(entity)
                    if len(found) > top:
                        break
        return found[:top], len(found) > top

    def count(
        self,
        match: Callable[[Entity], bool] | None,
        overlay: Mapping[str, Entity | None] | None = None,
    ) -> int:
        ordered = self._view(overlay)
        return len(ordered) if match is None else sum(1 for e in ordered if match(e))

    def _view(self, overlay: Mapping[str, Entity | None] | None) -> list[Entity]:
        if self._ordered is None:
            self._ordered = list(self._by_id.values())
        if not overlay:
            return self._ordered
        shown = [overlay.get(e.id, e) if e.id in overlay else e for e in self._ordered]
        ghosts = [e for i, e in overlay.items() if e is not None and i not in self._by_id]
        return sorted((e for e in shown + ghosts if e is not None), key=lambda e: e.seq)


@dataclass
class Stale:
    """What lagging replicas still show of an object written a moment ago."""

    old: Entity | None  # None: it did not exist before the write
    collections_until: float
    by_id_until: float


@dataclass
class TenantState:
    id: str
    name: str
    domain: str
    created: str
    users: Collection = field(default_factory=Collection)
    service_principals: Collection = field(default_factory=Collection)
    grants: Collection = field(default_factory=Collection)
    assignments: dict[str, Entity] = field(default_factory=dict)
    assigned_to: dict[str, Collection] = field(default_factory=dict)  # by resource SP id
    assigned_by: dict[str, Collection] = field(default_factory=dict)  # by principal id
    sp_by_app_id: dict[str, Entity] = field(default_factory=dict)
    user_by_upn: dict[str, Entity] = field(default_factory=dict)
    groups: Collection = field(default_factory=Collection)
    # Group id -> its direct members' object ids (users and groups), in scenario order.
    group_members: dict[str, tuple[str, ...]] = field(default_factory=dict)
    grants_by_client: dict[str, Collection] = field(default_factory=dict)
    # Replication lag: per kind ("grants", "assignments"), object id -> what replicas show.
    stale: dict[str, dict[str, Stale]] = field(
        default_factory=lambda: {"grants": {}, "assignments": {}}
    )
    # Delta queries: per collection, (visible from, object id) in the order of writes.
    log: dict[str, list[tuple[float, str]]] = field(
        default_factory=lambda: {SP_LOG: [], GRANT_LOG: []}
    )
    # Tokens: (when, principal, resource, appRoleId, added) for app role changes.
    role_changes: list[tuple[float, str, str, str, bool]] = field(default_factory=list)
    premium: bool = False
    # Directory audit events, oldest first, with their times (epoch seconds) beside them.
    audit: list[Entity] = field(default_factory=list)
    audit_times: list[float] = field(default_factory=list)
    # Events written while `audit_latency` was on: event id -> when they show up.
    audit_shown_from: dict[str, float] = field(default_factory=dict)
    # The sign-in activity report: one entry per app with a sign-in on record.
    sign_ins: Collection = field(default_factory=Collection)
    sign_in_kinds: dict[str, dict[str, tuple[float, str]]] = field(default_factory=dict)
    owners: dict[str, list[str]] = field(default_factory=dict)  # sp id -> owners' ids
    # Certificates' `key`, by object id and keyId: only a read of one object shows them.
    keys: dict[str, dict[str, str]] = field(default_factory=dict)
    applications: Collection = field(default_factory=Collection)  # homed here
    application_by_app_id: dict[str, Entity] = field(default_factory=dict)

    def sp(self, object_id: str) -> Entity:
        found = self.service_principals.get(object_id)
        if found is None:
            raise not_found(object_id)
        return found

    def sp_by_app(self, app_id: str) -> Entity:
        found = self.sp_by_app_id.get(app_id.lower())
        if found is None:
            raise not_found(app_id)
        return found

    def user(self, key: str) -> Entity:
        found = self.users.get(key) or self.user_by_upn.get(key.lower())
        if found is None:
            raise not_found(key)
        return found

    def retention_start(self, now: float) -> float:
        """The oldest audit event Entra still returns."""
        return now - RETENTION_DAYS[self.premium] * 86400

    def with_keys(self, entity: Entity, fields: tuple[str, ...]) -> bytes:
        """One object's JSON where `keyCredentials` was selected: with each `key`."""
        keys = self.keys.get(entity.id)
        if not keys or "keyCredentials" not in fields:
            return entity.json(fields)
        chosen = {n: entity.data[n] for n in fields}
        chosen["keyCredentials"] = [
            {**c, "key": keys.get(c["keyId"])} for c in entity.data["keyCredentials"]
        ]
        return json.dumps(chosen, separators=(",", ":")).encode()

    def assignments_to(self, resource_id: str) -> Collection:
        return self.assigned_to.setdefault(resource_id, Collection())

    def assignments_by(self, principal_id: str) -> Collection:
        return self.assigned_by.setdefault(principal_id, Collection())

    def grants_of(self, client_id: str) -> Collection:
        return self.grants_by_client.setdefault(client_id, Collection())

    def transitive_members(self, group_id: str) -> list[Entity]:
        """Every user and group inside a group, through nested groups, each once."""
        found: dict[str, Entity] = {}
        pending = list(self.group_members.get(group_id, ()))
        while pending:
            member_id = pending.pop(0)
            if member_id in found or member_id == group_id:
                continue
            member = self.users.get(member_id) or self.groups.get(member_id)
            if member is None:
                continue
            found[member_id] = member
            pending.extend(self.group_members.get(member_id, ()))
        return sorted(found.values(), key=lambda e: e.seq)

    def groups_holding(self, principal_id: str) -> set[str]:
        """The groups a principal is in, directly or through nested groups."""
        return {
            group.id
            for group in self.groups
            if any(m.id == principal_id for m in self.transitive_members(group.id))
        }

    def role_values(
        self, principal_id: str, resource_id: str, as_of: float | None = None
    ) -> list[str]:
        """The values of the app roles a principal holds on a resource (a token's roles),
        its own and those of the groups it is in, as Entra puts both in tokens; with
        `as_of`, as they were then: changes made since are undone, newest first."""
        resource = self.sp(resource_id).data
        names = {role["id"]: role["value"] for role in resource["appRoles"]}
        holders = {principal_id, *self.groups_holding(principal_id)}
        held: set[str] = set()
        for holder in holders:
            held.update(
                a.data["appRoleId"]
                for a in self.assignments_by(holder)
                if a.data["resourceId"] == resource_id
            )
        if as_of is not None:
            for moment, principal, resource_of, role, added in reversed(self.role_changes):
                if moment <= as_of:
                    break
                if principal in holders and resource_of == resource_id:
                    (held.discard if added else held.add)(role)
        return sorted(names[r] for r in held if names.get(r))

    def overlay(
        self, kind: str, now: float, *, by_id: bool, belongs: Callable[[Entity], bool]
    ) -> dict[str, Entity | None] | None:
        """For reads of one collection: the objects a lagging replica shows otherwise."""
        pending = self.stale[kind]
        if not pending:
            return None
        shown: dict[str, Entity | None] = {}
        for key, stale in list(pending.items()):
            if max(stale.collections_until, stale.by_id_until) <= now:
                del pending[key]
                continue
            until = stale.by_id_until if by_id else stale.collections_until
            if until > now:
                old = stale.old
                shown[key] = old if old is not None and belongs(old) else None
        return shown or None

    def visible(
        self, kind: str, object_id: str, current: Entity | None, now: float
    ) -> Entity | None:
        """An object as a read by id sees it (None: not found)."""
        stale = self.stale[kind].get(object_id)
        if stale is not None and stale.by_id_until > now:
            return stale.old
        return current

    def dump(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "displayName": self.name,
            "domain": self.domain,
            "users": [u.data for u in self.users],
            "servicePrincipals": [
                {k: sp.data[k] for k in ("id", "appId", "displayName")}
                for sp in self.service_principals
            ],
            "appRoleAssignments": [a.data for a in self.assignments.values()],
            "oauth2PermissionGrants": [g.data for g in self.grants],
            "groups": [g.data for g in self.groups],
            "premium": self.premium,
            # Every audit event, those past retention too (Graph no longer returns them).
            "directoryAudits": [e.data for e in self.audit],
            "servicePrincipalSignInActivities": [e.data for e in self.sign_ins],
        }


@dataclass
class AuthCode:
    client_id: str
    tenant_id: str
    user_id: str
    redirect_uri: str
    scope: tuple[str, ...]
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str
    expires: float


class State:
    def __init__(self, scenario: Scenario) -> None:
        self.lock = threading.RLock()
        self._seq = itertools.count(1)
        self.token_generation = 0  # bumped to expire every token issued so far
        self.delta_generation = 0  # bumped to expire every delta token issued so far
        self.codes: dict[str, AuthCode] = {}
        self.clock = Clock()
        self.load(scenario)

    def load(self, scenario: Scenario) -> None:
        with self.lock:
            self.scenario = scenario
            self.behaviour: Behaviour = scenario.behaviour
            self.applications: Mapping[str, Application] = scenario.applications
            self.tenants: dict[str, TenantState] = {}
            self.codes.clear()
            self.clock.reset()
            self.delta_generation += 1  # the change logs start again
            self._live = False
            for tenant in scenario.tenants:
                self.tenants[tenant.id] = self._build_tenant(scenario, tenant)
            self._live = True

    def expire_tokens(self) -> None:
        with self.lock:
            self.token_generation += 1

    def expire_delta_tokens(self) -> None:
        with self.lock:
            self.delta_generation += 1

    def roles_as_of(self) -> float | None:
        """For tokens: the moment whose app roles they carry (None: now)."""
        lag = self.behaviour.token_role_lag
        return self.clock.now() - lag if lag > 0 else None

    def is_vanished(self, sp: Entity) -> bool:
        vanished = self.behaviour.vanished_principals
        return bool(vanished) and (sp.id in vanished or sp.data["appId"] in vanished)

    def is_tenant_admin(self, tenant: TenantState, user_id: str) -> bool:
        """Whether a user holds an admin role (for the reports: Reports Reader or more)."""
        spec = next(t for t in self.scenario.tenants if t.id == tenant.id)
        return any(u.id == user_id and u.tenant_admin for u in spec.users)

    def directory_roles(self, tenant: TenantState, user_id: str) -> list[str]:
        """The role template ids of a user's directory roles, as the ``wids`` claim lists
        them: every member holds the default User role; a tenant admin is a Global
        Administrator."""
        spec = next(t for t in self.scenario.tenants if t.id == tenant.id)
        user = next((u for u in spec.users if u.id == user_id), None)
        if user is None:
            return [DEFAULT_USER_ROLE]
        admin = [GLOBAL_ADMINISTRATOR] if user.tenant_admin else []
        return [*admin, *user.directory_roles, DEFAULT_USER_ROLE]

    def client_app_id(self, tenant: TenantState, client_id: str) -> str | None:
        client = tenant.service_principals.get(client_id)
        return client.data["appId"] if client else None

    def tenant(self, key: str) -> TenantState | None:
        """A tenant by id or by domain name, as Entra accepts both in its URLs."""
        key = key.lower()
        found = self.tenants.get(key)
        if found is None:
            found = next((t for t in self.tenants.values() if t.domain == key), None)
        return found

    def _entity(self, data: dict[str, Any]) -> Entity:
        return Entity(next(self._seq), data)

    def _build_tenant(self, scenario: Scenario, spec: Tenant) -> TenantState:
        created = _timestamp(scenario.created)
        tenant = TenantState(spec.id, spec.name, spec.domain, created, premium=spec.premium)
        for user in spec.users:
            self._add_user(tenant, user)
        for group in spec.groups:
            self._add_group(tenant, group)
        for resource in scenario.resources.values():
            if resource.tenants and spec.id not in resource.tenants:
                continue
            self._add_sp(
                tenant,
                sp_id=object_id("sp", tenant.id, resource.app_id),
                app_id=resource.app_id,
                name=resource.name,
                owner=MICROSOFT_TENANT_ID,
                publisher="Microsoft Services",
                names=[resource.app_id, *resource.identifier_uris],
                app_roles=[_app_role(p, "Application") for p in resource.app_roles],
                scopes=[_scope(p) for p in resource.scopes],
            ).update(createdDateTime=evidence.iso_seconds(scenario.created.timestamp()))
        for app in spec.apps:
            entity = self._add_app_sp(tenant, self.applications[app.app_id], app.sp_id, app)
            when = app.created.at(self.clock.now()) if app.created else scenario.created.timestamp()
            entity.update(createdDateTime=evidence.iso_seconds(when))
        moments = (scenario.created + dt.timedelta(minutes=i) for i in itertools.count())
        for app in spec.apps:
            for grant in app.grants:
                self._apply(tenant, app.sp_id, grant, moments)
        for app in spec.apps:
            sp = tenant.sp(app.sp_id)
            for members in app.members:
                principals = [tenant.users.get(u) for u in members.users]
                principals += [tenant.groups.get(g) for g in members.groups]
                for principal in principals:
                    assert principal is not None
                    self._add_assignment(
                        tenant,
                        principal,
                        sp,
                        members.role_id,
                        _timestamp(next(moments)),
                        _assignment_id(principal.id, sp.id, members.role_id),
                    )
        if scenario.portal_app_id in tenant.sp_by_app_id:
            portal_sp = tenant.sp_by_app_id[scenario.portal_app_id]
            role_ids = {r["value"]: r["id"] for r in portal_sp.data["appRoles"]}
            for user in spec.users:
                for role in user.roles:
                    self._add_assignment(
                        tenant,
                        tenant.user(user.id),
                        portal_sp,
                        role_ids[role],
                        _timestamp(next(moments)),
                        _assignment_id(user.id, portal_sp.id, role_ids[role]),
                    )
        self._build_evidence(scenario, spec, tenant)
        return tenant

    # -- evidence: owners, credentials, sign-in activity, audit events -----------------

    def _build_evidence(self, scenario: Scenario, spec: Tenant, tenant: TenantState) -> None:
        loaded = self.clock.now()
        for app in spec.apps:
            sp = tenant.sp(app.sp_id)
            tenant.owners[sp.id] = [self._owner(tenant, owner).id for owner in app.owners]
            if app.credentials:
                self._set_credentials(tenant, sp, app.credentials, f"sp/{sp.id}", loaded)
        for application in scenario.applications.values():
            if application.owner_tenant_id == tenant.id:
                self._add_application(scenario, tenant, application, loaded)
        self._build_sign_ins(spec, tenant, loaded)
        for number, audit in enumerate(spec.audit):
            self._seed_audit(tenant, audit, loaded, number)

    def _owner(self, tenant: TenantState, key: str) -> Entity:
        return tenant.sp_by_app_id.get(key.lower()) or tenant.user(key)

    def _set_credentials(
        self,
        tenant: TenantState,
        entity: Entity,
        credentials: Iterable[Credential],
        seed: str,
        loaded: float,
        *,
        passwords: list[dict[str, Any]] | None = None,
        certificates: Sequence[tuple[Any, str | None]] = (),
    ) -> None:
        """passwordCredentials and keyCredentials from the scenario's (display-only)
        credentials, after any real ones given."""
        password_list = list(passwords or [])
        key_list = []
        keys = tenant.keys.setdefault(entity.id, {})
        for number, (cert, name) in enumerate(certificates):
            key_id = evidence.derived_guid(seed, "certificate", str(number))
            key_list.append(evidence.key_credential(key_id, name, cert, "Verify"))
            keys[key_id] = evidence.certificate_key(cert)
        for number, credential in enumerate(credentials):
            key_id = evidence.derived_guid(seed, "credential", str(number))
            start, end = credential.start.at(loaded), credential.expires.at(loaded)
            if credential.type == "password":
                hint = evidence.derived_guid(seed, "hint", str(number))[:3]
                password_list.append(
                    evidence.password_credential(key_id, credential.name, start, end, hint)
                )
                continue
            name = credential.name or entity.data.get("displayName") or key_id
            common_name = name.removeprefix("CN=")
            # One certificate per name and validity: a SAML key's Sign and Verify entries
            # share it (and its thumbprint), as on Graph.
            same = f"{seed}/{common_name}/{start}/{end}"
            cert = evidence.display_certificate(same, common_name, start, end)
            key_list.append(
                evidence.key_credential(key_id, credential.name, cert, credential.usage)
            )
            keys[key_id] = evidence.certificate_key(cert)
        entity.update(passwordCredentials=password_list, keyCredentials=key_list)

    def _add_application(
        self, scenario: Scenario, tenant: TenantState, app: Application, loaded: float
    ) -> None:
        """The app registration, in its home tenant only (as on Graph: elsewhere there is
        just its service principal)."""
        created = app.created.at(loaded) if app.created else scenario.created.timestamp()
        verified = None
        if app.verified_publisher_id:
            verified = _timestamp(dt.datetime.fromtimestamp(created, dt.UTC))
        entity = self._entity(
            {
                **APPLICATION_TEMPLATE,
                "id": object_id("application", tenant.id, app.app_id),
                "appId": app.app_id,
                "createdDateTime": evidence.iso_seconds(created),
                "displayName": app.name,
                "publisherDomain": tenant.domain,
                "verifiedPublisher": {
                    "displayName": app.publisher if verified else None,
                    "verifiedPublisherId": app.verified_publisher_id,
                    "addedDateTime": verified,
                },
                "appRoles": [_app_role(p, "User") for p in app.app_roles],
                "requiredResourceAccess": _required_access(scenario, app),
                "web": {"redirectUris": list(app.redirect_uris), "homePageUrl": None},
            }
        )
        seed = f"application/{tenant.id}/{app.app_id}"
        passwords = []
        for number, secret in enumerate(app.secrets):
            end = secret.expires.timestamp() if secret.expires else _NO_EXPIRY
            key_id = evidence.derived_guid(seed, "secret", str(number))
            start = min(created, end - 365 * 86400)  # a secret starts before it ends
            passwords.append(
                evidence.password_credential(key_id, secret.name, start, end, secret.value[:3])
            )
        certificates = [(c.cert, None) for c in app.certificates]
        self._set_credentials(
            tenant,
            entity,
            app.credentials,
            seed,
            loaded,
            passwords=passwords,
            certificates=certificates,
        )
        tenant.applications.add(entity)
        tenant.application_by_app_id[app.app_id] = entity

    def _build_sign_ins(self, spec: Tenant, tenant: TenantState, loaded: float) -> None:
        """The scenario's sign-ins; a resource's follow from its clients' (an app-only
        sign-in of a client holding Graph roles is an app-only sign-in to Graph)."""
        kinds: dict[str, dict[str, float]] = {}
        for app in spec.apps:
            given = app.sign_ins or SignIns()
            for kind in ("app_client", "app_resource", "delegated_client", "delegated_resource"):
                moment: Moment | None = getattr(given, kind)
                if moment is not None:
                    kinds.setdefault(app.app_id, {})[kind] = moment.at(loaded)
        for app in spec.apps:
            client = kinds.get(app.app_id, {})
            sp = tenant.sp(app.sp_id)
            resources: dict[str, set[str]] = {"app_client": set(), "delegated_client": set()}
            for assignment in tenant.assignments_by(sp.id):
                resources["app_client"].add(assignment.data["resourceId"])
            for grant in tenant.grants_of(sp.id):
                resources["delegated_client"].add(grant.data["resourceId"])
            for kind, resource_kind in _CLIENT_TO_RESOURCE:
                if kind not in client:
                    continue
                for resource_id in resources[kind]:
                    resource = kinds.setdefault(tenant.sp(resource_id).data["appId"], {})
                    resource[resource_kind] = max(resource.get(resource_kind, 0), client[kind])
        for sp in tenant.service_principals:
            found = kinds.get(sp.data["appId"])
            if found:
                for kind, when in found.items():
                    self._sign_in(tenant, sp.data["appId"], kind, when, f"{sp.id}/{kind}")

    def _sign_in(
        self, tenant: TenantState, app_id: str, kind: str, when: float, seed: str | None = None
    ) -> None:
        kinds = tenant.sign_in_kinds.setdefault(app_id, {})
        if kind in kinds and kinds[kind][0] >= when:
            return
        request_id = evidence.derived_guid(seed, str(when)) if seed else str(uuid.uuid4())
        kinds[kind] = (when, request_id)
        data = evidence.sign_in_item(app_id, kinds)
        current = tenant.sign_ins.get(data["id"])
        if current is None:
            tenant.sign_ins.add(self._entity(data))
        else:
            current.update(**data)

    def set_premium(self, tenant: TenantState, premium: bool) -> None:
        if not isinstance(premium, bool):
            raise ValueError("premium: expected true or false")
        with self.lock:
            tenant.premium = premium

    def record_sign_in(
        self, tenant: TenantState, client_app_id: str, resource_app_id: str, *, delegated: bool
    ) -> None:
        """A token was issued: the client signed in, and the resource was signed in to."""
        with self.lock:
            now = self.clock.now()
            side = "delegated" if delegated else "app"
            self._sign_in(tenant, client_app_id, f"{side}_client", now)
            self._sign_in(tenant, resource_app_id, f"{side}_resource", now)

    # -- directory audit events ------------------------------------------------------

    def _audit(
        self,
        tenant: TenantState,
        activity: str,
        at: float,
        initiated_by: dict[str, Any],
        target: dict[str, Any],
        app_id: str | None,
        correlation_id: str,
        *,
        result: str = "success",
        details: list[dict[str, str]] | None = None,
    ) -> None:
        seq = next(self._seq)
        data = evidence.event(
            seq=seq,
            correlation_id=correlation_id,
            activity=activity,
            at=at,
            initiated_by=initiated_by,
            target=target,
            app_id=app_id,
            result=result,
            extra_details=details,
        )
        position = bisect_right(tenant.audit_times, at)
        tenant.audit_times.insert(position, at)
        tenant.audit.insert(position, Entity(seq, data))
        if self.behaviour.audit_latency:
            tenant.audit_shown_from[data["id"]] = self.clock.now() + self.behaviour.audit_latency

    def audit_shown(self, tenant: TenantState, event: Entity, now: float) -> bool:
        """Whether the audit log returns the event yet (see `audit_latency`)."""
        return tenant.audit_shown_from.get(event.data["id"], 0.0) <= now

    def initiator(
        self, tenant: TenantState, claims: Mapping[str, Any], app_only: bool
    ) -> dict[str, Any]:
        """initiatedBy for a write made with this token: the app, or the signed-in user."""
        if app_only:
            sp = tenant.service_principals.get(claims.get("oid", ""))
            data = sp.data if sp else {"id": claims.get("oid"), "displayName": None}
            return evidence.app_initiator(data)
        user = tenant.users.get(claims.get("oid", ""))
        return evidence.user_initiator(user.data if user else {"id": claims.get("oid")})

    def _role_event(
        self,
        tenant: TenantState,
        assignment: Entity,
        by: dict[str, Any],
        correlation_id: str,
        *,
        removed: bool,
        at: float | None = None,
        result: str = "success",
    ) -> None:
        data = assignment.data
        resource = tenant.sp(data["resourceId"]).data
        client = tenant.service_principals.get(data["principalId"])
        if client is None:  # only service principals' assignments are logged as these
            return
        role = next(
            (r for r in resource["appRoles"] if r["id"] == data["appRoleId"]),
            {"id": data["appRoleId"]},
        )
        properties = evidence.role_properties(
            client.data, resource, role, data["createdDateTime"], removed=removed
        )
        self._audit(
            tenant,
            REMOVE_ROLE if removed else ADD_ROLE,
            self.clock.now() if at is None else at,
            by,
            evidence.sp_target(resource, properties),
            resource["appId"],
            correlation_id,
            result=result,
        )

    def _grant_event(
        self,
        tenant: TenantState,
        grant: dict[str, Any],
        old_scope: str | None,
        new_scope: str | None,
        by: dict[str, Any],
        correlation_id: str,
        *,
        activity: str,
        at: float | None = None,
        result: str = "success",
    ) -> None:
        resource = tenant.sp(grant["resourceId"]).data
        client = tenant.service_principals.get(grant["clientId"])
        client_data = client.data if client else {"id": grant["clientId"]}
        properties = evidence.grant_properties(
            client_data, grant["consentType"], grant.get("principalId"), old_scope, new_scope
        )
        self._audit(
            tenant,
            activity,
            self.clock.now() if at is None else at,
            by,
            evidence.sp_target(resource, properties),
            resource["appId"],
            correlation_id,
            result=result,
        )

    def _consent_event(
        self,
        tenant: TenantState,
        client: Entity,
        grants: list[dict[str, Any]],
        by: dict[str, Any],
        correlation_id: str,
        *,
        admin: bool,
        app_only: bool,
        at: float | None = None,
        result: str = "success",
    ) -> None:
        properties = evidence.consent_properties(
            client.data,
            admin=admin,
            app_only=app_only,
            on_behalf_of_all=admin,
            grants=grants,
        )
        self._audit(
            tenant,
            CONSENT,
            self.clock.now() if at is None else at,
            by,
            evidence.sp_target(client.data, properties),
            client.data["appId"],
            correlation_id,
            result=result,
            details=list(evidence.CONSENT_DETAILS),
        )

    def _seed_audit(self, tenant: TenantState, spec: AuditSpec, loaded: float, number: int) -> None:
        """An event of the scenario's history, built as the write would have logged it."""
        at = spec.at.at(loaded)
        seed = f"audit/{tenant.id}/{number}"
        correlation = evidence.derived_guid(seed)
        client = tenant.sp_by_app_id.get(spec.app) or self._gone_sp(tenant, spec.app)
        resource = tenant.sp_by_app_id[spec.resource]
        actor = tenant.sp_by_app_id.get(spec.by.lower())
        if actor is not None:
            by = evidence.app_initiator(actor.data)
        else:
            user = tenant.user(spec.by).data
            by = evidence.user_initiator(user, via_ests=spec.activity in (CONSENT,))
        principal = tenant.user(spec.user).id if spec.user else None
        created = _timestamp(dt.datetime.fromtimestamp(at, dt.UTC))
        if spec.activity in (ADD_ROLE, REMOVE_ROLE):
            role_ids = {r["value"]: r["id"] for r in resource.data["appRoles"]}
            for value in spec.values:
                assignment = Entity(
                    0,
                    {
                        "appRoleId": role_ids[value],
                        "createdDateTime": created,
                        "principalId": client.id,
                        "resourceId": resource.id,
                    },
                )
                self._role_event(
                    tenant,
                    assignment,
                    by,
                    correlation,
                    removed=spec.activity == REMOVE_ROLE,
                    at=at,
                    result=spec.result,
                )
            return
        grant = {
            "id": _grant_id(client.id, resource.id, principal),
            "clientId": client.id,
            "consentType": "Principal" if principal else "AllPrincipals",
            "principalId": principal,
            "resourceId": resource.id,
            "scope": " ".join(spec.values),
        }
        if spec.activity == CONSENT:
            self._consent_event(
                tenant,
                client,
                [grant] if spec.type == "delegated" else [],
                by,
                correlation,
                admin=principal is None,
                app_only=spec.type == "application",
                at=at,
                result=spec.result,
            )
            return
        removed = spec.activity == REMOVE_GRANT
        self._grant_event(
            tenant,
            grant,
            grant["scope"] if removed else None,
            None if removed else grant["scope"],
            by,
            correlation,
            activity=spec.activity,
            at=at,
            result=spec.result,
        )

    def _gone_sp(self, tenant: TenantState, app_id: str) -> Entity:
        """An app the history mentions that has no service principal here any more."""
        app = self.applications[app_id]
        sp_id = object_id("sp", tenant.id, app_id)
        return Entity(0, {"id": sp_id, "appId": app_id, "displayName": app.name})

    def _add_user(self, tenant: TenantState, user: User) -> None:
        given, _, surname = user.name.partition(" ")
        entity = self._entity(
            {
                **USER_TEMPLATE,
                "id": user.id,
                "displayName": user.name,
                "givenName": given,
                "jobTitle": user.job_title,
                "mail": user.upn,
                "surname": surname or None,
                "userPrincipalName": user.upn,
                "companyName": tenant.name,
                "mailNickname": user.upn.split("@")[0],
            }
        )
        tenant.users.add(entity)
        tenant.user_by_upn[user.upn.lower()] = entity

    def _add_group(self, tenant: TenantState, group: Group) -> None:
        tenant.group_members[group.id] = group.members
        tenant.groups.add(
            self._entity(
                {
                    "id": group.id,
                    "displayName": group.name,
                    "mailEnabled": False,
                    "securityEnabled": True,
                    "groupTypes": [],
                }
            )
        )

    def _add_app_sp(
        self, tenant: TenantState, app: Application, sp_id: str, spec: TenantApp | None = None
    ) -> Entity:
        entity = self._add_sp(
            tenant,
            sp_id=sp_id,
            app_id=app.app_id,
            name=app.name,
            owner=app.owner_tenant_id,
            publisher=app.publisher,
            names=[app.app_id],
            app_roles=[_app_role(p, "User") for p in app.app_roles],
            scopes=[_scope(p) for p in app.scopes],
            reply_urls=list(app.redirect_uris),
        )
        if spec is not None and spec.properties:
            entity.update(**spec.properties)
        return entity

    def _add_sp(
        self,
        tenant: TenantState,
        *,
        sp_id: str,
        app_id: str,
        name: str,
        owner: str | None,
        publisher: str,
        names: list[str],
        app_roles: list[dict[str, Any]],
        scopes: list[dict[str, Any]],
        reply_urls: list[str] | None = None,
    ) -> Entity:
        entity = self._entity(
            {
                **SP_TEMPLATE,
                "id": sp_id,
                "appDisplayName": name,
                "appId": app_id,
                "appOwnerOrganizationId": owner,
                "displayName": name,
                "replyUrls": reply_urls or [],
                "servicePrincipalNames": names,
                "verifiedPublisher": {
                    "displayName": publisher,
                    "verifiedPublisherId": None,
                    "addedDateTime": None,
                },
                "appRoles": app_roles,
                "oauth2PermissionScopes": scopes,
            }
        )
        tenant.service_principals.add(entity)
        tenant.sp_by_app_id[app_id] = entity
        return entity

    def _apply(
        self, tenant: TenantState, client_sp_id: str, grant: Grant, moments: Iterator[dt.datetime]
    ) -> list[tuple[Entity, str | None]]:
        """Records a scenario grant (or an admin consent), skipping what already exists.
        Returns what changed: new assignments (with None), and grants with their scope
        before (None: new)."""
        client = tenant.sp(client_sp_id)
        resource = tenant.sp_by_app_id[grant.resource]
        changed: list[tuple[Entity, str | None]] = []
        if grant.type == "application":
            role_ids = {r["value"]: r["id"] for r in resource.data["appRoles"]}
            held = {a.data["appRoleId"] for a in tenant.assignments_by(client.id)}
            for value in grant.values:
                if role_ids[value] not in held:
                    added = self._add_assignment(
                        tenant,
                        client,
                        resource,
                        role_ids[value],
                        _timestamp(next(moments)),
                        _assignment_id(client.id, resource.id, role_ids[value]),
                    )
                    changed.append((added, None))
            return changed
        principals = [tenant.user(upn).id for upn in grant.users] or [None]
        for principal in principals:
            grant_id = _grant_id(client.id, resource.id, principal)
            existing = tenant.grants.get(grant_id)
            if existing is None:
                created = self._add_grant(
                    tenant,
                    {
                        "clientId": client.id,
                        "consentType": "Principal" if principal else "AllPrincipals",
                        "id": grant_id,
                        "principalId": principal,
                        "resourceId": resource.id,
                        "scope": grant.scope,
                    },
                )
                changed.append((created, None))
            else:
                before = existing.data["scope"]
                current = before.split()
                more = [v for v in grant.values if v not in current]
                if more:
                    self._set_scope(tenant, existing, " ".join([*current, *more]))
                    changed.append((existing, before))
        return changed

    # -- every change goes through these, so lag, delta logs and tokens follow it --------

    def _add_assignment(
        self,
        tenant: TenantState,
        principal: Entity,
        resource: Entity,
        app_role_id: str,
        created: str,
        assignment_id: str,
    ) -> Entity:
        if "userPrincipalName" in principal.data:
            principal_type = "User"
        elif "appId" in principal.data:
            principal_type = "ServicePrincipal"
        else:
            principal_type = "Group"
        entity = self._entity(
            {
                "id": assignment_id,
                "deletedDateTime": None,
                "appRoleId": app_role_id,
                "createdDateTime": created,
                "principalDisplayName": principal.data["displayName"],
                "principalId": principal.id,
                "principalType": principal_type,
                "resourceDisplayName": resource.data["displayName"],
                "resourceId": resource.id,
            }
        )
        tenant.assignments[assignment_id] = entity
        tenant.assignments_to(resource.id).add(entity)
        tenant.assignments_by(principal.id).add(entity)
        self._changed(tenant, "assignments", entity, None)
        return entity

    def _remove_assignment(self, tenant: TenantState, entity: Entity) -> None:
        del tenant.assignments[entity.id]
        tenant.assignments_to(entity.data["resourceId"]).remove(entity.id)
        tenant.assignments_by(entity.data["principalId"]).remove(entity.id)
        self._changed(tenant, "assignments", entity, entity, removed=True)

    def _add_grant(self, tenant: TenantState, data: dict[str, Any]) -> Entity:
        entity = self._entity(data)
        tenant.grants.add(entity)
        tenant.grants_of(data["clientId"]).add(entity)
        self._changed(tenant, "grants", entity, None)
        return entity

    def _set_scope(self, tenant: TenantState, entity: Entity, scope: str) -> None:
        before = Entity(entity.seq, entity.data)  # update() replaces data, so this stays
        entity.update(scope=scope)
        self._changed(tenant, "grants", entity, before)

    def _remove_grant(self, tenant: TenantState, entity: Entity) -> None:
        tenant.grants.remove(entity.id)
        tenant.grants_of(entity.data["clientId"]).remove(entity.id)
        self._changed(tenant, "grants", entity, entity, removed=True)

    def _changed(
        self,
        tenant: TenantState,
        kind: str,
        entity: Entity,
        old: Entity | None,
        *,
        removed: bool = False,
    ) -> None:
        if not self._live:
            return  # building the scenario: that is the state before any write
        now = self.clock.now()
        lag = self.behaviour.replication_lag
        if lag.active:
            pending = tenant.stale[kind].get(entity.id)
            if pending is not None and max(pending.collections_until, pending.by_id_until) > now:
                old = pending.old  # replicas still show the state before the first write
            tenant.stale[kind][entity.id] = Stale(old, now + lag.collections, now + lag.by_id)
        if kind == "grants":
            tenant.log[GRANT_LOG].append((now + lag.collections, entity.id))
        else:
            data = entity.data
            tenant.role_changes.append(
                (now, data["principalId"], data["resourceId"], data["appRoleId"], not removed)
            )
            keep_after = now - self.behaviour.token_role_lag - 1
            while tenant.role_changes and tenant.role_changes[0][0] < keep_after:
                tenant.role_changes.pop(0)

    def _sp_changed(self, tenant: TenantState, entity: Entity) -> None:
        if self._live:
            lag = self.behaviour.replication_lag
            tenant.log[SP_LOG].append((self.clock.now() + lag.collections, entity.id))

    # -- Graph writes ----------------------------------------------------------------

    def create_assignment(
        self, tenant: TenantState, resource_id: str, body: Any, by: dict[str, Any] | None = None
    ) -> Entity:
        fields = _body_fields(body, required={"principalId", "resourceId", "appRoleId"})
        if fields["resourceId"].lower() != resource_id.lower():
            raise GraphError(
                400,
                "Request_BadRequest",
                "The resourceId must be the service principal in the URL.",
            )
        with self.lock:
            resource = tenant.sp(resource_id)
            principal_id = fields["principalId"].lower()
            principal = (
                tenant.service_principals.get(principal_id)
                or tenant.users.get(principal_id)
                or tenant.groups.get(principal_id)
            )
            if principal is None:
                raise not_found(fields["principalId"])
            role_id = fields["appRoleId"].lower()
            if all(r["id"] != role_id for r in resource.data["appRoles"]):
                raise GraphError(
                    400,
                    "Request_BadRequest",
                    "Permission being assigned was not found on application",
                )
            if any(
                a.data["appRoleId"] == role_id and a.data["resourceId"] == resource.id
                for a in tenant.assignments_by(principal.id)
            ):
                raise GraphError(
                    400,
                    "Request_BadRequest",
                    "Permission being assigned already exists on the object",
                )
            created = self._add_assignment(
                tenant,
                principal,
                resource,
                role_id,
                _timestamp(dt.datetime.now(dt.UTC)),
                _assignment_id(principal.id, resource.id, str(uuid.uuid4())),
            )
            if by is not None:
                self._role_event(tenant, created, by, str(uuid.uuid4()), removed=False)
            return created

    def delete_assignment(
        self,
        tenant: TenantState,
        resource_id: str,
        assignment_id: str,
        by: dict[str, Any] | None = None,
    ) -> None:
        with self.lock:
            tenant.sp(resource_id)
            entity = tenant.assignments.get(assignment_id)
            if entity is None or entity.data["resourceId"] != resource_id:
                raise not_found(assignment_id)
            self._remove_assignment(tenant, entity)
            if by is not None:
                self._role_event(tenant, entity, by, str(uuid.uuid4()), removed=True)

    def create_grant(
        self, tenant: TenantState, body: Any, by: dict[str, Any] | None = None
    ) -> Entity:
        fields = _body_fields(
            body,
            required={"clientId", "consentType", "resourceId", "scope"},
            optional={"principalId"},
        )
        consent = fields["consentType"]
        principal = fields.get("principalId")
        if consent not in ("AllPrincipals", "Principal") or (consent == "Principal") != bool(
            principal
        ):
            raise GraphError(
                400,
                "Request_BadRequest",
                "consentType must be AllPrincipals (without principalId) or Principal (with one).",
            )
        with self.lock:
            client = tenant.sp(fields["clientId"].lower())
            resource = tenant.sp(fields["resourceId"].lower())
            if principal is not None:
                principal = tenant.user(principal).id
            _check_scope(resource, fields["scope"])
            grant_id = _grant_id(client.id, resource.id, principal)
            if tenant.grants.get(grant_id) is not None:
                raise GraphError(
                    409,
                    "Request_MultipleObjectsWithSameKeyValue",
                    "Permission entry already exists.",
                )
            created = self._add_grant(
                tenant,
                {
                    "clientId": client.id,
                    "consentType": consent,
                    "id": grant_id,
                    "principalId": principal,
                    "resourceId": resource.id,
                    "scope": fields["scope"],
                },
            )
            if by is not None:
                correlation = str(uuid.uuid4())
                scope = fields["scope"]
                self._grant_event(
                    tenant, created.data, None, scope, by, correlation, activity=ADD_GRANT
                )
            return created

    def update_grant(
        self, tenant: TenantState, grant_id: str, body: Any, by: dict[str, Any] | None = None
    ) -> None:
        fields = _body_fields(body, required={"scope"})
        with self.lock:
            entity = tenant.grants.get(grant_id)
            if entity is None:
                raise not_found(grant_id)
            _check_scope(tenant.sp(entity.data["resourceId"]), fields["scope"])
            before = entity.data["scope"]
            self._set_scope(tenant, entity, fields["scope"])
            if by is not None:
                self._scope_change_events(tenant, entity.data, before, by, str(uuid.uuid4()))

    def _scope_change_events(
        self,
        tenant: TenantState,
        grant: dict[str, Any],
        before: str,
        by: dict[str, Any],
        correlation: str,
    ) -> None:
        # Entra has no "update" activity for a grant: a changed scope is logged as an
        # Add and a Remove, both from the old scope to the new (as captured in 2026).
        after = grant["scope"]
        for activity in (ADD_GRANT, REMOVE_GRANT):
            self._grant_event(tenant, grant, before, after, by, correlation, activity=activity)

    def delete_grant(
        self, tenant: TenantState, grant_id: str, by: dict[str, Any] | None = None
    ) -> None:
        with self.lock:
            entity = tenant.grants.get(grant_id)
            if entity is None:
                raise not_found(grant_id)
            self._remove_grant(tenant, entity)
            if by is not None:
                scope = entity.data["scope"]
                correlation = str(uuid.uuid4())
                self._grant_event(
                    tenant, entity.data, scope, None, by, correlation, activity=REMOVE_GRANT
                )

    def update_service_principal(self, tenant: TenantState, sp_id: str, body: Any) -> None:
        if not isinstance(body, dict) or not body:
            raise GraphError(400, "BadRequest", "The request body must be a JSON object.")
        for name in body:
            if name not in SP_WRITABLE:
                raise GraphError(
                    400,
                    "Request_BadRequest",
                    f"Property '{name}' is read-only or not allowed here by this emulator.",
                )
        with self.lock:
            entity = tenant.sp(sp_id)
            entity.update(**body)
            self._sp_changed(tenant, entity)

    def delete_service_principal(self, tenant: TenantState, sp_id: str) -> None:
        """As in Entra: the principal goes (to deleted items), with its grants and the
        app role assignments it holds or that are granted on it."""
        with self.lock:
            entity = tenant.sp(sp_id)
            for assignment in [
                *tenant.assignments_by(entity.id),
                *tenant.assignments_to(entity.id),
            ]:
                if assignment.id in tenant.assignments:
                    self._remove_assignment(tenant, assignment)
            for grant in list(tenant.grants):
                if entity.id in (grant.data["clientId"], grant.data["resourceId"]):
                    self._remove_grant(tenant, grant)
            tenant.service_principals.remove(entity.id)
            if tenant.sp_by_app_id.get(entity.data["appId"]) is entity:
                del tenant.sp_by_app_id[entity.data["appId"]]
            self._sp_changed(tenant, entity)

    # -- admin consent ---------------------------------------------------------------

    def consent(
        self,
        tenant: TenantState,
        app: Application,
        grants: Iterable[Grant],
        user: Entity | None = None,
    ) -> None:
        """What an admin's consent does: the app gets a service principal in the tenant
        if it has none, and every requested permission is granted tenant-wide. With the
        consenting `user`, the audit log gets what Entra logs: each role and grant added,
        then "Consent to application", under one correlation id."""
        with self.lock:
            client = tenant.sp_by_app_id.get(app.app_id)
            if client is None:
                client = self._add_app_sp(tenant, app, object_id("sp", tenant.id, app.app_id))
                client.update(createdDateTime=evidence.iso_seconds(self.clock.now()))
                self._sp_changed(tenant, client)
            now = dt.datetime.now(dt.UTC)
            changed: list[tuple[Entity, str | None]] = []
            for grant in grants:
                if grant.resource in tenant.sp_by_app_id:
                    changed += self._apply(tenant, client.id, grant, itertools.repeat(now))
            if user is None:
                return
            by = evidence.user_initiator(user.data, via_ests=True)
            correlation = str(uuid.uuid4())
            delegated = []
            for entity, before in changed:
                if "appRoleId" in entity.data:
                    self._role_event(tenant, entity, by, correlation, removed=False)
                    continue
                delegated.append(entity.data)
                if before is None:
                    self._grant_event(
                        tenant, entity.data, None, entity.data["scope"], by, correlation,
                        activity=ADD_GRANT,
                    )  # fmt: skip
                else:
                    self._scope_change_events(tenant, entity.data, before, by, correlation)
            app_only = not any(g.type == "delegated" for g in grants)
            self._consent_event(
                tenant, client, delegated, by, correlation, admin=True, app_only=app_only
            )


def _body_fields(
    body: Any, *, required: set[str], optional: frozenset[str] | set[str] = frozenset()
) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "The request body must be a JSON object.")
    for name, value in body.items():
        if name not in required | optional:
            raise GraphError(
                400, "Request_BadRequest", f"Property '{name}' is read-only or not allowed here."
            )
        if value is not None and not isinstance(value, str):
            raise GraphError(400, "BadRequest", f"Property '{name}' must be a string.")
    missing = [name for name in sorted(required) if body.get(name) is None]
    if missing:
        raise GraphError(
            400, "Request_BadRequest", f"A value is required for property '{missing[0]}'."
        )
    return body


def _check_scope(resource: Entity, scope: str) -> None:
    known = {s["value"] for s in resource.data["oauth2PermissionScopes"]}
    unknown = [value for value in scope.split() if value not in known]
    if unknown:
        raise GraphError(
            400,
            "Request_BadRequest",
            f"Invalid value specified for property 'scope' of resource "
            f"'OAuth2PermissionGrant': '{unknown[0]}' is not a scope of the resource.",
        )


def _required_access(scenario: Scenario, app: Application) -> list[dict[str, Any]]:
    """requiredResourceAccess, from what the app's admin consent grants."""
    found: dict[str, list[dict[str, str]]] = {}
    for grant in app.requires:
        resource = scenario.resources.get(grant.resource)
        if resource is None:
            continue
        catalog = resource.app_roles if grant.type == "application" else resource.scopes
        ids = {p.value: p.id for p in catalog}
        kind = "Role" if grant.type == "application" else "Scope"
        found.setdefault(grant.resource, []).extend(
            {"id": ids[value], "type": kind} for value in grant.values if value in ids
        )
    return [{"resourceAppId": r, "resourceAccess": access} for r, access in found.items()]


def _b64(*guids: str) -> str:
    raw = b"".join(uuid.UUID(g).bytes_le for g in guids)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _assignment_id(principal_id: str, resource_id: str, discriminator: str) -> str:
    # Entra's assignment ids are the principal's id and 16 more bytes, base64url-encoded.
    return _b64(principal_id, str(uuid.uuid5(uuid.UUID(resource_id), discriminator)))


def _grant_id(client_id: str, resource_id: str, principal_id: str | None) -> str:
    # Entra's grant ids are client id + resource id (+ user id), base64url-encoded.
    return _b64(client_id, resource_id, *([principal_id] if principal_id else []))


def _timestamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _app_role(permission: Permission, member_type: str) -> dict[str, Any]:
    return {
        "allowedMemberTypes": list(permission.member_types or (member_type,)),
        "description": permission.description,
        "displayName": permission.description,
        "id": permission.id,
        "isEnabled": True,
        "origin": "Application",
        "value": permission.value,
    }


def _scope(permission: Permission) -> dict[str, Any]:
    return {
        "adminConsentDescription": permission.description,
        "adminConsentDisplayName": permission.description,
        "id": permission.id,
        "isEnabled": True,
        "type": "Admin" if permission.admin_consent else "User",
        "userConsentDescription": permission.description,
        "userConsentDisplayName": permission.description,
        "value": permission.value,
    }
