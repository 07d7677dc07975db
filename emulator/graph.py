"""Microsoft Graph v1.0: the calls the portal makes, with Graph's shapes and errors.

Collections page in creation order. `@odata.nextLink` carries an opaque `$skiptoken`
naming the last object served, bound to the path and `$filter` it was issued for, so
every object is served exactly once even while others are added or deleted.

Where Graph is imperfect the switches in `behaviour.py` make this imperfect too:
lagging reads, an incomplete grant listing, principals that vanish, strict filters.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
import struct
import uuid
import zlib
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlsplit

from emulator import delta, evidence
from emulator.audit_filter import parse as _audit_filter
from emulator.scenario import GRAPH_APP_ID
from emulator.state import (
    ALL_FIELDS,
    APPLICATION_TEMPLATE,
    ASSIGNMENT_FIELDS,
    GRANT_FIELDS,
    GRANT_LOG,
    OWNER_TYPES,
    SP_LOG,
    SP_TEMPLATE,
    USER_DEFAULT_FIELDS,
    USER_TEMPLATE,
    Collection,
    Entity,
    GraphError,
    TenantState,
    not_found,
)
from emulator.tokens import TokenError
from emulator.web import Request, Response, dumps

if TYPE_CHECKING:
    from emulator.app import App

ODATA_JSON = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;"
    "charset=utf-8"
)
MAX_BATCH = 20
_DEFAULT_PAGE = 100
_MAX_PAGE = 999

# Which granted permissions allow which calls (application roles or delegated scopes;
# the names are the same). Each call needs one permission from every set it lists.
READ_APPS = frozenset(
    {
        "Application.Read.All",
        "Application.ReadWrite.All",
        "Application.ReadWrite.OwnedBy",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
READ_GRANTS = frozenset(
    {
        "DelegatedPermissionGrant.Read.All",
        "DelegatedPermissionGrant.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
WRITE_ASSIGNMENTS = frozenset({"AppRoleAssignment.ReadWrite.All", "Application.ReadWrite.All"})
WRITE_APPS = frozenset({"Application.ReadWrite.All"})
# oauth2permissiongrant-delta.md lists no DelegatedPermissionGrant.Read.All.
DELTA_GRANTS = frozenset(
    {"Directory.Read.All", "Directory.ReadWrite.All", "DelegatedPermissionGrant.ReadWrite.All"}
)
WRITE_GRANTS = frozenset({"DelegatedPermissionGrant.ReadWrite.All", "Directory.ReadWrite.All"})
READ_USERS = frozenset(
    {"User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All", "Directory.Read.All"}
)
# directoryobject-getbyids.md: Directory.Read.All, nothing narrower.
GET_BY_IDS = frozenset({"Directory.Read.All", "Directory.ReadWrite.All"})
GET_BY_IDS_LIMIT = 1000
READ_ORGANIZATION = frozenset(
    {
        "Organization.Read.All",
        "Organization.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
        "User.Read.All",
        "User.Read",  # delegated: any signed-in user may read their organization
    }
)
READ_ME = frozenset({"User.Read", "User.ReadWrite", "User.ReadBasic.All", "User.Read.All"})
# The reports: servicePrincipalSignInActivities and directoryAudits. Their docs also list
# Directory.Read.All, yet it alone is refused (microsoft-graph-docs-contrib#8997).
READ_AUDIT = frozenset({"AuditLog.Read.All"})
# Owners that are users come back with their fields only with one of these (else just
# @odata.type and id: "limited information returned for inaccessible member objects").
READ_OWNER_USERS = READ_USERS | frozenset({"Directory.ReadWrite.All", "User.ReadWrite.All"})
_AUDIT_PAGE, _AUDIT_MAX_PAGE = 100, 1000
# $expand on directory objects: 100 a page, 20 related objects each (query-parameters.md).
_EXPAND_PAGE, _EXPANDED_ITEMS = 100, 20
_EXPAND_OWNERS = re.compile(r"owners(?:\(\s*\$select\s*=\s*([\w\s,]+)\))?", re.IGNORECASE)
# group-list-transitivemembers.md: least privileged first.
READ_GROUP_MEMBERS = frozenset(
    {
        "GroupMember.Read.All",
        "Group.Read.All",
        "GroupMember.ReadWrite.All",
        "Group.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)


@dataclass(frozen=True)
class Kind:
    name: str  # Graph's type name, for error messages
    fields: tuple[str, ...]
    default: tuple[str, ...]  # what Graph returns without $select
    filterable: frozenset[str]
    # Graph's own rules, with `strict_filters`: property -> (Edm type, operators).
    strict: dict[str, tuple[str, frozenset[str]]] | None = None
    guids: frozenset[str] = frozenset()  # Edm.Guid properties: unquoted in $filter


SERVICE_PRINCIPAL = Kind(
    "servicePrincipal",
    tuple(SP_TEMPLATE),
    ALL_FIELDS,  # every field the object has, including ones Graph added later
    frozenset(
        {
            "id",
            "appId",
            "displayName",
            "servicePrincipalType",
            "accountEnabled",
            "appOwnerOrganizationId",
        }
    ),
)
USER = Kind(
    "user",
    tuple(USER_TEMPLATE),
    USER_DEFAULT_FIELDS,
    frozenset({"id", "userPrincipalName", "displayName", "mail", "accountEnabled", "userType"}),
)
ASSIGNMENT = Kind(
    "appRoleAssignment",
    ASSIGNMENT_FIELDS,
    ASSIGNMENT_FIELDS,
    frozenset({"principalId", "resourceId", "appRoleId", "principalType", "principalDisplayName"}),
    # approleassignment.md: only resourceId (eq) and principalDisplayName (eq, startswith)
    # support $filter; principalType gives "Invalid filter clause principalType:
    # System.String" (microsoft-graph-docs#12338), Guid ones ": System.Guid" (-contrib#8934).
    strict={
        "resourceId": ("Guid", frozenset({"eq"})),
        "principalDisplayName": ("String", frozenset({"eq", "startswith"})),
    },
    guids=frozenset({"principalId", "resourceId", "appRoleId"}),
)
# A group's members are directoryObjects of several types: each as its type has it, with
# "@odata.type"; $select picks among the fields users and groups share.
MEMBER = Kind(
    "directoryObject",
    ("id", "displayName", "mail"),
    ("id", "displayName", "mail"),
    frozenset({"id"}),
)
GRANT = Kind(
    "oAuth2PermissionGrant",
    GRANT_FIELDS,
    GRANT_FIELDS,
    frozenset({"clientId", "consentType", "principalId", "resourceId"}),
)
SIGN_IN_ACTIVITY = Kind(
    "servicePrincipalSignInActivity",
    evidence.SIGN_IN_ACTIVITY_FIELDS,
    evidence.SIGN_IN_ACTIVITY_FIELDS,
    frozenset({"id", "appId"}),
)
APPLICATION = Kind(
    "application",
    tuple(APPLICATION_TEMPLATE),
    ALL_FIELDS,
    frozenset({"id", "appId", "displayName", "signInAudience"}),
)
AUDIT_FIELDS = (
    "id",
    "category",
    "correlationId",
    "result",
    "resultReason",
    "activityDisplayName",
    "activityDateTime",
    "loggedByService",
    "operationType",
    "initiatedBy",
    "targetResources",
    "additionalDetails",
)


@dataclass(frozen=True)
class Caller:
    tenant: TenantState
    claims: dict[str, Any]
    app_only: bool
    granted: frozenset[str]

    def require(self, *needed: frozenset[str]) -> None:
        if not all(self.granted & alternatives for alternatives in needed):
            raise GraphError(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )

    def require_reports(self, state: Any, *, licence: bool) -> None:
        """The reporting service's own checks and errors: AuditLog.Read.All, a user in an
        admin role when delegated, and (for the sign-in activity report) Entra ID P1."""
        if not self.granted & READ_AUDIT:
            # As Graph answered in microsoft-graph-docs-contrib#8997 and -docs#13632.
            raise GraphError(
                403,
                "Authentication_MSGraphPermissionMissing",
                "Calling principal does not have required MSGraph permissions AuditLog.Read.All",
            )
        if not self.app_only and not state.is_tenant_admin(self.tenant, self.claims["oid"]):
            raise GraphError(
                403,
                "Authentication_RequestFromUnsupportedUserRole",
                "User is not in the allowed roles",
            )
        if licence and not self.tenant.premium:
            # howto-analyze-activity-logs-with-microsoft-graph.md; microsoft-graph-docs#12772.
            raise GraphError(
                403,
                "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                "Neither tenant is B2C or tenant doesn't have premium license",
            )


@dataclass(frozen=True)
class Query:
    fields: tuple[str, ...]
    selected: bool
    match: Callable[[Entity], bool] | None
    top: int
    after: int
    binding: int  # ties a skip token to the path and $filter it was issued for
    count: bool = False  # $count=true


@dataclass(frozen=True)
class Lagged:
    """How a collection read meets replication lag: which kind of object, and which of
    the old versions belong in this collection."""

    kind: str  # "grants" | "assignments"
    belongs: Callable[[Entity], bool]


class GraphApi:
    def __init__(self, app: App) -> None:
        self.app = app
        self.state = app.state
        self.tokens = app.tokens

    def routes(self) -> list[tuple[str, str, Callable[[Request], Response]]]:
        routes: list[tuple[str, str, Callable[[Request], Response]]] = [
            ("GET", "/v1.0/servicePrincipals", self.list_service_principals),
            ("GET", "/v1.0/servicePrincipals/$count", self.count_service_principals),
            ("GET", "/v1.0/servicePrincipals/delta", self.delta_service_principals),
            ("GET", "/v1.0/oauth2PermissionGrants", self.list_grants),
            ("GET", "/v1.0/oauth2PermissionGrants/$count", self.count_grants),
            ("GET", "/v1.0/oauth2PermissionGrants/delta", self.delta_grants),
            ("POST", "/v1.0/oauth2PermissionGrants", self.create_grant),
            ("GET", "/v1.0/oauth2PermissionGrants/{grantId}", self.get_grant),
            ("PATCH", "/v1.0/oauth2PermissionGrants/{grantId}", self.update_grant),
            ("DELETE", "/v1.0/oauth2PermissionGrants/{grantId}", self.delete_grant),
            ("GET", "/v1.0/organization", self.organization),
            ("GET", "/v1.0/me", self.me),
            ("GET", "/v1.0/users", self.list_users),
            ("GET", "/v1.0/users/{userId}", self.get_user),
            ("POST", "/v1.0/directoryObjects/getByIds", self.get_by_ids),
            ("GET", "/v1.0/groups/{groupId}/transitiveMembers", self.list_transitive_members),
            ("POST", "/v1.0/$batch", self.batch),
            ("GET", "/beta/reports/servicePrincipalSignInActivities", self.list_sign_ins),
            (
                "GET",
                "/beta/reports/servicePrincipalSignInActivities/{activityId}",
                self.get_sign_in,
            ),
            ("GET", "/v1.0/auditLogs/directoryAudits", self.list_audits),
            ("GET", "/v1.0/auditLogs/directoryAudits/{auditId}", self.get_audit),
            ("GET", "/v1.0/applications", self.list_applications),
            ("GET", "/v1.0/applications/{applicationId}", self.get_application),
            ("GET", "/v1.0/applications(appId='{appId}')", self.get_application),
        ]
        # A service principal is addressed by its object id or by its appId.
        for sp in ("/v1.0/servicePrincipals/{id}", "/v1.0/servicePrincipals(appId='{appId}')"):
            routes += [
                ("GET", sp, self.get_service_principal),
                ("PATCH", sp, self.update_service_principal),
                ("DELETE", sp, self.delete_service_principal),
                ("GET", f"{sp}/appRoleAssignments", self.list_assignments),
                ("GET", f"{sp}/appRoleAssignments/$count", self.count_assignments),
                ("GET", f"{sp}/oauth2PermissionGrants", self.list_client_grants),
                ("GET", f"{sp}/oauth2PermissionGrants/$count", self.count_client_grants),
                ("GET", f"{sp}/owners", self.list_owners),
                ("GET", f"{sp}/appRoleAssignedTo", self.list_assigned_to),
                ("GET", f"{sp}/appRoleAssignedTo/$count", self.count_assigned_to),
                ("POST", f"{sp}/appRoleAssignedTo", self.create_assignment),
                ("GET", f"{sp}/appRoleAssignedTo/{{assignmentId}}", self.get_assignment),
                ("DELETE", f"{sp}/appRoleAssignedTo/{{assignmentId}}", self.delete_assignment),
            ]
        return routes

    # -- service principals and app role assignments --------------------------------

    def list_service_principals(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(READ_APPS)
        tenant = caller.tenant
        expand = self._owners_expansion(request, caller)
        return self._page(
            request,
            tenant,
            tenant.service_principals,
            SERVICE_PRINCIPAL,
            "servicePrincipals",
            expand=expand,
        )

    def _owners_expansion(
        self, request: Request, caller: Caller
    ) -> Callable[[Entity, bytes], bytes] | None:
        """`$expand=owners` or `$expand=owners($select=...)`: each principal's owners,
        at most 20 of them and without a nextLink, as Graph expands directory objects."""
        text = next((v for k, v in request.query.items() if k.lower() == "$expand"), None)
        if text is None:
            return None
        found = _EXPAND_OWNERS.fullmatch(text.strip())
        if found is None:
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                f"Only $expand=owners (with an optional $select) is supported by this emulator, "
                f"not '{text}'.",
            )
        selected = [f.strip() for f in (found.group(1) or "").split(",") if f.strip()]
        users_visible = bool(caller.granted & READ_OWNER_USERS)
        tenant = caller.tenant

        def expand(entity: Entity, part: bytes) -> bytes:
            owners = tenant.owners.get(entity.id, [])[:_EXPANDED_ITEMS]
            listed = [_owner_json(tenant, o, selected, users_visible) for o in owners]
            return part[:-1] + b',"owners":' + dumps(listed) + b"}"

        return expand

    def count_service_principals(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(READ_APPS)
        tenant = caller.tenant
        return self._count(request, tenant, tenant.service_principals, SERVICE_PRINCIPAL)

    def get_service_principal(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(READ_APPS)
        query = _query(request, SERVICE_PRINCIPAL, collection=False, expandable=True)
        expand = self._owners_expansion(request, caller)
        with self.state.lock:
            sp = self._sp(caller.tenant, request)
            # keyCredentials' `key` comes only with $select on one object (keycredential.md).
            part = (
                caller.tenant.with_keys(sp, query.fields)
                if query.selected
                else sp.json(query.fields)
            )
            if expand is not None:
                part = expand(sp, part)
        return _entity(request, _context("servicePrincipals", query) + "/$entity", part)

    def update_service_principal(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(WRITE_APPS)
        with self.state.lock:
            sp = self._sp(caller.tenant, request)
            self.state.update_service_principal(caller.tenant, sp.id, _body(request))
        return _no_content(request)

    def delete_service_principal(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(WRITE_APPS)
        with self.state.lock:
            sp = self._sp(caller.tenant, request)
            self.state.delete_service_principal(caller.tenant, sp.id)
        return _no_content(request)

    def list_assignments(self, request: Request) -> Response:
        return self._assignments(request, "appRoleAssignments", "principalId", count=False)

    def count_assignments(self, request: Request) -> Response:
        return self._assignments(request, "appRoleAssignments", "principalId", count=True)

    def list_assigned_to(self, request: Request) -> Response:
        return self._assignments(request, "appRoleAssignedTo", "resourceId", count=False)

    def count_assigned_to(self, request: Request) -> Response:
        return self._assignments(request, "appRoleAssignedTo", "resourceId", count=True)

    def _assignments(self, request: Request, relation: str, side: str, *, count: bool) -> Response:
        caller = self._caller(request)
        caller.require(READ_APPS)
        tenant = caller.tenant
        with self.state.lock:
            sp = self._sp(tenant, request)
            by = tenant.assignments_by if side == "principalId" else tenant.assignments_to
            collection = by(sp.id)
        lagged = Lagged("assignments", lambda e: e.data[side] == sp.id)
        if count:
            return self._count(request, tenant, collection, ASSIGNMENT, lagged=lagged)
        name = f"servicePrincipals('{sp.id}')/{relation}"
        return self._page(request, tenant, collection, ASSIGNMENT, name, lagged=lagged)

    def get_assignment(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(READ_APPS)
        query = _query(request, ASSIGNMENT, collection=False)
        assignment_id = request.params["assignmentId"]
        with self.state.lock:
            sp = self._sp(caller.tenant, request)
            current = caller.tenant.assignments_to(sp.id).get(assignment_id)
            found = caller.tenant.visible("assignments", assignment_id, current, self._now())
            if found is None or found.data["resourceId"] != sp.id:
                raise not_found(assignment_id)
            part = found.json(query.fields)
        name = f"servicePrincipals('{sp.id}')/appRoleAssignedTo"
        return _entity(request, _context(name, query) + "/$entity", part)

    def create_assignment(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(WRITE_ASSIGNMENTS, READ_APPS)
        with self.state.lock:
            sp = self._sp(caller.tenant, request)
            created = self.state.create_assignment(
                caller.tenant, sp.id, _body(request), self._initiator(caller)
            )
            part = created.json(ASSIGNMENT.fields)
        context = f"servicePrincipals('{sp.id}')/appRoleAssignedTo/$entity"
        return _entity(request, context, part, status=201)

    def delete_assignment(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(WRITE_ASSIGNMENTS)
        with self.state.lock:
            sp = self._sp(caller.tenant, request)
            self.state.delete_assignment(
                caller.tenant, sp.id, request.params["assignmentId"], self._initiator(caller)
            )
        return _no_content(request)

    # -- delegated permission grants ------------------------------------------------

    def list_grants(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(READ_GRANTS)
        tenant = caller.tenant
        incomplete = self.state.behaviour.incomplete_grants
        omit = None
        if incomplete.active:
            # Without the advanced query parameters the listing has been seen to leave
            # grants out (msgraph-sdk-powershell#2469, microsoft-graph-docs#17247).
            def omit(e: Entity) -> bool:
                app_id = self.state.client_app_id(tenant, e.data["clientId"])
                return incomplete.omits(e.data, app_id)

        lagged = Lagged("grants", _anything)
        name = "oauth2PermissionGrants"
        return self._page(request, tenant, tenant.grants, GRANT, name, lagged=lagged, omit=omit)

    def count_grants(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(READ_GRANTS)
        tenant = caller.tenant
        lagged = Lagged("grants", _anything)
        return self._count(request, tenant, tenant.grants, GRANT, lagged=lagged)

    def list_client_grants(self, request: Request) -> Response:
        return self._client_grants(request, count=False)

    def count_client_grants(self, request: Request) -> Response:
        return self._client_grants(request, count=True)

    def _client_grants(self, request: Request, *, count: bool) -> Response:
        caller = self._caller(request)
        caller.require(READ_GRANTS)
        tenant = caller.tenant
        with self.state.lock:
            sp = self._sp(tenant, request)
            collection = tenant.grants_of(sp.id)
        lagged = Lagged("grants", lambda e: e.data["clientId"] == sp.id)
        if count:
            return self._count(request, tenant, collection, GRANT, lagged=lagged)
        name = f"servicePrincipals('{sp.id}')/oauth2PermissionGrants"
        return self._page(request, tenant, collection, GRANT, name, lagged=lagged)

    def get_grant(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(READ_GRANTS)
        query = _query(request, GRANT, collection=False)
        grant_id = request.params["grantId"]
        with self.state.lock:
            current = caller.tenant.grants.get(grant_id)
            found = caller.tenant.visible("grants", grant_id, current, self._now())
            if found is None:
                raise not_found(grant_id)
            part = found.json(query.fields)
        return _entity(request, _context("oauth2PermissionGrants", query) + "/$entity", part)

    def create_grant(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(WRITE_GRANTS)
        created = self.state.create_grant(caller.tenant, _body(request), self._initiator(caller))
        return _entity(
            request, "oauth2PermissionGrants/$entity", created.json(GRANT.fields), status=201
        )

    def update_grant(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(WRITE_GRANTS)
        self.state.update_grant(
            caller.tenant, request.params["grantId"], _body(request), self._initiator(caller)
        )
        return _no_content(request)

    def delete_grant(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(WRITE_GRANTS)
        self.state.delete_grant(caller.tenant, request.params["grantId"], self._initiator(caller))
        return _no_content(request)

    # -- delta queries ----------------------------------------------------------------

    def delta_service_principals(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(READ_APPS)  # serviceprincipal-delta.md
        return self._delta(request, caller.tenant, SP_LOG)

    def delta_grants(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(DELTA_GRANTS)  # oauth2permissiongrant-delta.md: it is in v1.0
        return self._delta(request, caller.tenant, GRANT_LOG)

    def _delta(self, request: Request, tenant: TenantState, which: str) -> Response:
        """A round of change tracking: the first pages the collection as it is and ends
        with a deltaLink; a deltaLink pages what changed since (delta-query-overview.md)."""
        kind = SERVICE_PRINCIPAL if which == SP_LOG else GRANT
        options = {name.lower(): value for name, value in request.query.items()}
        for name in options:
            if name.startswith("$") and name not in _DELTA_OPTIONS:
                raise GraphError(
                    400,
                    "Request_UnsupportedQuery",
                    f"The query option '{name}' is not supported with delta by this emulator.",
                )
        now = self._now()
        with self.state.lock:
            log = tenant.log[which]
            token = options.get("$skiptoken") or options.get("$deltatoken")
            if token == "latest" and "$deltatoken" in options:  # "sync from now"
                state = self._delta_start(options, kind, which, _visible_end(log, 0, now), now)
                return self._delta_page(request, which, [], replace(state, sync=False), done=True)
            if token is None:
                state = self._delta_start(options, kind, which, _visible_end(log, 0, now), now)
            else:
                state = self._delta_state(token, which, now)
                if options.get("$select", "").strip():
                    # A deltaLink may change what is tracked; a nextLink may not
                    # (delta-query-overview.md: "$select and $skipToken will not be supported").
                    if "$skiptoken" in options:
                        raise GraphError(
                            400,
                            "Request_UnsupportedQuery",
                            "$select is not supported with $skiptoken in a delta query.",
                        )
                    state = replace(
                        state, fields=_select_names(options["$select"], kind.fields, kind.name)
                    )
            fields = state.fields or ALL_FIELDS
            if fields != ALL_FIELDS and "id" not in fields:
                fields = ("id", *fields)  # "The id property is always returned."
            wanted = set(state.ids) if state.ids else None
            if state.sync:
                collection = tenant.service_principals if which == SP_LOG else tenant.grants
                overlay = self._delta_overlay(tenant, which, now)
                match = (lambda e: e.id in wanted) if wanted else None
                found, more = collection.page(state.after, state.top, match, overlay)
                parts = [e.json(fields) for e in found]
                if more:
                    state = replace(state, after=found[-1].seq)
                else:
                    state = replace(state, sync=False, after=0, issued=now)
                return self._delta_page(request, which, parts, state, done=not more)
            end = state.end if state.end is not None else _visible_end(log, state.start, now)
            ids = list(dict.fromkeys(object_id for _, object_id in log[state.start : end]))
            if wanted:
                ids = [i for i in ids if i in wanted]
            chosen = ids[state.after : state.after + state.top]
            overlay = self._delta_overlay(tenant, which, now) or {}
            parts = [self._delta_item(tenant, which, i, fields, overlay) for i in chosen]
            if state.after + state.top < len(ids):
                state = replace(state, after=state.after + state.top, end=end)
                return self._delta_page(request, which, parts, state, done=False)
            state = replace(state, after=0, start=end, end=None, issued=now)
            return self._delta_page(request, which, parts, state, done=True)

    def _delta_start(
        self, options: dict[str, str], kind: Kind, which: str, start: int, now: float
    ) -> delta.DeltaState:
        fields = (
            _select_names(options["$select"], kind.fields, kind.name)
            if options.get("$select", "").strip()
            else None
        )
        top = _top(options) if "$top" in options else _DEFAULT_PAGE
        return delta.DeltaState(
            collection=which,
            sync=True,
            after=0,
            start=start,
            end=None,
            issued=now,
            generation=self.state.delta_generation,
            fields=fields,
            ids=_delta_ids(options.get("$filter", "")),
            top=top,
        )

    def _delta_state(self, token: str, which: str, now: float) -> delta.DeltaState:
        state = delta.decode(token)
        if (
            state is None
            or state.collection != which
            or state.generation != self.state.delta_generation
        ):
            # A sync state Graph no longer has (a restart, a reset on its side): 410 Gone,
            # "the application must restart with a full synchronization"
            # (delta-query-overview.md, "Synchronization reset"; errors.md: resyncRequired).
            raise GraphError(
                410,
                "resyncRequired",
                "A resync is required: the sync state is no longer available.",
            )
        if now - state.issued > self.state.behaviour.delta_token_max_age:
            # Directory objects' delta tokens last 7 days; an older one is a Bad Request
            # with syncStateNotFound ("Duration of change tracking tokens for identity and
            # education resources", Microsoft 365 Developer Blog, 2020).
            raise GraphError(
                400,
                "syncStateNotFound",
                "The sync state generation is not found. The delta token is expired and "
                "data must be synchronized again.",
            )
        return state

    def _delta_overlay(
        self, tenant: TenantState, which: str, now: float
    ) -> dict[str, Entity | None] | None:
        if which != GRANT_LOG:
            return None
        return tenant.overlay("grants", now, by_id=False, belongs=_anything)

    def _delta_item(
        self,
        tenant: TenantState,
        which: str,
        object_id: str,
        fields: tuple[str, ...],
        overlay: dict[str, Entity | None],
    ) -> bytes:
        if which == SP_LOG:
            found = tenant.service_principals.get(object_id)
            reason = "changed"  # a deleted service principal can be restored
        else:
            found = tenant.grants.get(object_id)
            if object_id in overlay:
                found = overlay[object_id]
            reason = "deleted"  # a deleted grant is gone for good
        if found is None:  # delta-query-overview.md: "@removed": {"reason": ...}
            return dumps({"id": object_id, "@removed": {"reason": reason}})
        return found.json(fields)

    def _delta_page(
        self,
        request: Request,
        which: str,
        parts: list[bytes],
        state: delta.DeltaState,
        *,
        done: bool,
    ) -> Response:
        link_name, option = ("deltaLink", "$deltatoken") if done else ("nextLink", "$skiptoken")
        link = f"{request.base_url}/v1.0/{which}/delta?{option}={delta.encode(state)}"
        body = (
            b'{"@odata.context":'
            + dumps(_metadata(request, which))
            + f',"@odata.{link_name}":'.encode()
            + dumps(link)
            + b',"value":['
            + b",".join(parts)
            + b"]}"
        )
        return _graph_response(request, 200, body)

    # -- organization and users -----------------------------------------------------

    def organization(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(READ_ORGANIZATION)
        tenant = caller.tenant
        data = _organization(tenant)
        kind = Kind("organization", tuple(data), tuple(data), frozenset({"id"}))
        query = _query(request, kind, collection=False)
        part = dumps({name: data[name] for name in query.fields})
        body = (
            b'{"@odata.context":'
            + dumps(_metadata(request, _context("organization", query)))
            + b',"value":['
            + part
            + b"]}"
        )
        return _graph_response(request, 200, body)

    def me(self, request: Request) -> Response:
        caller = self._caller(request)
        if caller.app_only:
            raise GraphError(
                400, "BadRequest", "/me request is only valid with delegated authentication flow."
            )
        caller.require(READ_ME)
        query = _query(request, USER, collection=False)
        with self.state.lock:
            part = caller.tenant.user(caller.claims["oid"]).json(query.fields)
        return _entity(request, _context("users", query) + "/$entity", part)

    def list_users(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(READ_USERS)
        return self._page(request, caller.tenant, caller.tenant.users, USER, "users")

    def get_user(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(READ_USERS)
        query = _query(request, USER, collection=False)
        with self.state.lock:
            part = caller.tenant.user(request.params["userId"]).json(query.fields)
        return _entity(request, _context("users", query) + "/$entity", part)

    def get_by_ids(self, request: Request) -> Response:
        """directoryObject: getByIds, for users (``types`` other than user find nothing
        here): up to 1000 ids, the found ones with v1.0's default user properties and
        their ``@odata.type``; unknown ids are left out, as Graph does."""
        caller = self._caller(request)
        caller.require(GET_BY_IDS)
        payload = _body(request)
        ids = payload.get("ids") if isinstance(payload, dict) else None
        types = payload.get("types") if isinstance(payload, dict) else None
        if not isinstance(ids, list) or not all(isinstance(item, str) for item in ids):
            raise GraphError(400, "Request_BadRequest", "The 'ids' parameter must be a list.")
        if len(ids) > GET_BY_IDS_LIMIT:
            raise GraphError(
                400,
                "Request_BadRequest",
                f"Too many ids: at most {GET_BY_IDS_LIMIT} may be given in one request.",
            )
        wanted_users = not types or "user" in [str(t).lower() for t in types]
        found = []
        with self.state.lock:
            for object_id in ids if wanted_users else []:
                user = caller.tenant.users.get(object_id.lower())
                if user is not None:
                    fields = {key: user.data.get(key) for key in ("id", *USER_DEFAULT_FIELDS)}
                    found.append({"@odata.type": "#microsoft.graph.user", **fields})
        return _entity(request, "directoryObjects", dumps({"value": found}))

    # -- evidence: sign-in activity, directory audits, owners, applications ----------

    def list_sign_ins(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require_reports(self.state, licence=True)
        tenant = caller.tenant
        name = "reports/servicePrincipalSignInActivities"
        return self._page(request, tenant, tenant.sign_ins, SIGN_IN_ACTIVITY, name)

    def get_sign_in(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require_reports(self.state, licence=True)
        query = _query(request, SIGN_IN_ACTIVITY, collection=False)
        with self.state.lock:
            found = caller.tenant.sign_ins.get(request.params["activityId"])
            if found is None:
                raise not_found(request.params["activityId"])
            part = found.json(query.fields)
        name = "reports/servicePrincipalSignInActivities"
        return _entity(request, _context(name, query) + "/$entity", part)

    def list_audits(self, request: Request) -> Response:
        """Newest first; only what the tenant's licence keeps (7 or 30 days)."""
        caller = self._caller(request)
        caller.require_reports(self.state, licence=False)
        tenant = caller.tenant
        options = _options(request, {"$filter", "$top", "$skiptoken", "$select", "$orderby"})
        selected = options.get("$select", "")
        fields = (
            _select_names(selected, AUDIT_FIELDS, "directoryAudit")
            if selected.strip()
            else AUDIT_FIELDS
        )
        top = _top(options, maximum=_AUDIT_MAX_PAGE) if "$top" in options else _AUDIT_PAGE
        order = " ".join(options.get("$orderby", "activityDateTime desc").split()).lower()
        if order not in ("activitydatetime desc", "activitydatetime asc", "activitydatetime"):
            raise GraphError(400, "BadRequest", f"Invalid $orderby: '{options['$orderby']}'.")
        newest_first = order.endswith("desc")
        filter_text = options.get("$filter", "").strip()
        match = _audit_filter(filter_text) if filter_text else None
        binding = zlib.crc32(f"{request.path.lower()}|{filter_text}|{order}".encode())
        after = _read_skiptoken(options["$skiptoken"], binding) if "$skiptoken" in options else None
        now = self._now()
        with self.state.lock:
            start = bisect_left(tenant.audit_times, tenant.retention_start(now))
            positions = (
                range(len(tenant.audit) - 1, start - 1, -1)
                if newest_first
                else range(start, len(tenant.audit))
            )
            parts: list[bytes] = []
            last = None
            more = False
            for position in positions:
                if after is not None and (position >= after if newest_first else position <= after):
                    continue
                data = tenant.audit[position].data
                if match is not None and not match(data):
                    continue
                if not self.state.audit_shown(tenant, tenant.audit[position], now):
                    continue
                if len(parts) == top:
                    more = True
                    break
                parts.append(tenant.audit[position].json(fields))
                last = position
        context = "auditLogs/directoryAudits" + (
            f"({','.join(fields)})" if "$select" in options else ""
        )
        body = b'{"@odata.context":' + dumps(_metadata(request, context))
        if more and last is not None:
            body += b',"@odata.nextLink":' + dumps(_next_link(request, _skiptoken(last, binding)))
        body += b',"value":[' + b",".join(parts) + b"]}"
        return _graph_response(request, 200, body)

    def get_audit(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require_reports(self.state, licence=False)
        tenant = caller.tenant
        wanted = request.params["auditId"]
        with self.state.lock:
            start = bisect_left(tenant.audit_times, tenant.retention_start(self._now()))
            found = next((e for e in tenant.audit[start:] if e.data["id"] == wanted), None)
            if found is None or not self.state.audit_shown(tenant, found, self._now()):
                raise not_found(wanted)
            part = dumps(found.data)
        return _entity(request, "auditLogs/directoryAudits/$entity", part)

    def list_owners(self, request: Request) -> Response:
        """directoryObjects: users and service principals, each with its @odata.type."""
        caller = self._caller(request)
        caller.require(READ_APPS)
        options = _options(request, {"$select", "$top", "$skiptoken"})
        selected = [f.strip() for f in options.get("$select", "").split(",") if f.strip()]
        top = _top(options) if "$top" in options else _DEFAULT_PAGE
        binding = zlib.crc32(f"{request.path.lower()}|owners".encode())
        after = _read_skiptoken(options["$skiptoken"], binding) if "$skiptoken" in options else -1
        users_visible = bool(caller.granted & READ_OWNER_USERS)
        with self.state.lock:
            tenant = caller.tenant
            sp = self._sp(tenant, request)
            owners = tenant.owners.get(sp.id, [])
            chosen = owners[after + 1 : after + 1 + top]
            parts = [
                dumps(_owner_json(tenant, owner_id, selected, users_visible)) for owner_id in chosen
            ]
            more = after + 1 + top < len(owners)
        body = b'{"@odata.context":' + dumps(_metadata(request, "directoryObjects"))
        if more:
            token = _skiptoken(after + top, binding)
            body += b',"@odata.nextLink":' + dumps(_next_link(request, token))
        body += b',"value":[' + b",".join(parts) + b"]}"
        return _graph_response(request, 200, body)

    def list_applications(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(READ_APPS)
        tenant = caller.tenant
        return self._page(request, tenant, tenant.applications, APPLICATION, "applications")

    def get_application(self, request: Request) -> Response:
        """An app registration: only in its home tenant, as on Graph."""
        caller = self._caller(request)
        caller.require(READ_APPS)
        query = _query(request, APPLICATION, collection=False)
        tenant = caller.tenant
        with self.state.lock:
            if "appId" in request.params:
                key = request.params["appId"]
                found = tenant.application_by_app_id.get(key.lower())
            else:
                key = request.params["applicationId"]
                found = tenant.applications.get(key.lower())
            if found is None:
                raise not_found(key)
            part = (
                tenant.with_keys(found, query.fields)
                if query.selected
                else found.json(query.fields)
            )
        return _entity(request, _context("applications", query) + "/$entity", part)

    def _initiator(self, caller: Caller) -> dict[str, Any]:
        return self.state.initiator(caller.tenant, caller.claims, caller.app_only)

    def list_transitive_members(self, request: Request) -> Response:
        """A group's members through nested groups, users and groups alike, each once."""
        caller = self._caller(request)
        caller.require(READ_GROUP_MEMBERS)
        query = _query(request, MEMBER, collection=True)
        tenant = caller.tenant
        group_id = request.params["groupId"].lower()
        with self.state.lock:
            if tenant.groups.get(group_id) is None:
                raise not_found(request.params["groupId"])
            members = [
                member
                for member in tenant.transitive_members(group_id)
                if member.seq > query.after and (query.match is None or query.match(member))
            ]
        found, more = members[: query.top], len(members) > query.top
        body = b'{"@odata.context":' + dumps(
            _metadata(request, _context("directoryObjects", query))
        )
        if more:
            token = _skiptoken(found[-1].seq, query.binding)
            body += b',"@odata.nextLink":' + dumps(_next_link(request, token))
        parts = [dumps(_member_json(member, query)) for member in found]
        body += b',"value":[' + b",".join(parts) + b"]}"
        return _graph_response(request, 200, body)

    # -- $batch ---------------------------------------------------------------------

    def batch(self, request: Request) -> Response:
        # The batch needs a valid token; each of its requests is then authorized on its own.
        self._caller(request)
        items = _batch_items(request)
        statuses: dict[str, int] = {}
        responses = []
        for item in items:
            failed = [d for d in item.get("dependsOn", []) if statuses[d.lower()] >= 400]
            if failed:
                status, headers = 424, {"Content-Type": "application/json"}
                body: Any = _error_body(
                    request,
                    "FailedDependency",
                    f"The request depends on request '{failed[0]}', which failed.",
                )
            else:
                inner = self.app.handle_inner(_inner_request(request, item))
                status, headers = inner.status, {"Content-Type": inner.content_type}
                headers.update(dict(inner.headers))
                body = json.loads(inner.body) if inner.body else None
            statuses[item["id"].lower()] = status
            response: dict[str, Any] = {"id": item["id"], "status": status, "headers": headers}
            if body is not None:
                response["body"] = body
            responses.append(response)
        return _graph_response(request, 200, dumps({"responses": responses}))

    # -- helpers --------------------------------------------------------------------

    def _caller(self, request: Request) -> Caller:
        scheme, _, token = request.header("authorization").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        try:
            claims = self.tokens.verify(token.strip())
        except TokenError as exc:
            raise GraphError(401, "InvalidAuthenticationToken", str(exc)) from exc
        tenant = self.state.tenants.get(claims["tid"])
        if tenant is None:
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid tenant.",
            )
        app_only = "scp" not in claims
        granted = claims.get("roles", []) if app_only else claims["scp"].split()
        return Caller(tenant, claims, app_only, frozenset(granted))

    def _sp(self, tenant: TenantState, request: Request) -> Entity:
        if "appId" in request.params:
            found = tenant.sp_by_app(request.params["appId"])
        else:
            found = tenant.sp(request.params["id"].lower())
        if self.state.is_vanished(found):  # listed a moment ago, gone now
            raise not_found(request.params.get("id") or request.params["appId"])
        return found

    def _now(self) -> float:
        return self.state.clock.now()

    def _page(
        self,
        request: Request,
        tenant: TenantState,
        collection: Collection,
        kind: Kind,
        name: str,
        *,
        lagged: Lagged | None = None,
        omit: Callable[[Entity], bool] | None = None,
        expand: Callable[[Entity, bytes], bytes] | None = None,
    ) -> Response:
        behaviour = self.state.behaviour
        query = _query(
            request, kind, collection=True, strict=behaviour.strict_filters, expandable=bool(expand)
        )
        if expand is not None:
            # $expand on directory objects: at most 100 per page (Graph known issue 13635).
            query = replace(query, top=min(query.top, _EXPAND_PAGE))
        advanced = _advanced(request)
        if query.count and not advanced and behaviour.count_without_header == "error":
            # What the advanced-queries doc shows for a count without its header. By
            # default, as the same doc says, the option is silently ignored instead.
            raise GraphError(400, "Request_BadRequest", "$count is not currently supported.")
        counted = query.count and advanced
        match = query.match
        if omit is not None and not counted:  # advanced queries see every grant
            match = _both(match, lambda e: not omit(e))
        with self.state.lock:
            overlay = self._overlay(tenant, lagged)
            found, more = collection.page(query.after, query.top, match, overlay)
            parts = [entity.json(query.fields) for entity in found]
            if expand is not None:
                parts = [expand(entity, part) for entity, part in zip(found, parts, strict=True)]
            total = collection.count(match, overlay) if counted else None
        body = b'{"@odata.context":' + dumps(_metadata(request, _context(name, query)))
        if total is not None:
            body += b',"@odata.count":' + str(total).encode()
        if more:
            token = _skiptoken(found[-1].seq, query.binding)
            body += b',"@odata.nextLink":' + dumps(_next_link(request, token))
        body += b',"value":[' + b",".join(parts) + b"]}"
        return _graph_response(request, 200, body)

    def _count(
        self,
        request: Request,
        tenant: TenantState,
        collection: Collection,
        kind: Kind,
        *,
        lagged: Lagged | None = None,
    ) -> Response:
        """`.../$count`: only as an advanced query."""
        if not _advanced(request):
            # What Graph answers today (seen in azurekid/ScEntra#13, 2025).
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                "Raw count (/$count) is not supported because the 'ConsistencyLevel:eventual' "
                "header is missing. Refer to https://aka.ms/graph-docs/advanced-queries for "
                "more information",
            )
        query = _query(request, kind, collection=True, strict=self.state.behaviour.strict_filters)
        with self.state.lock:
            total = collection.count(query.match, self._overlay(tenant, lagged))
        return Response(200, str(total).encode(), _ids(request), content_type="text/plain")

    def _overlay(
        self, tenant: TenantState, lagged: Lagged | None
    ) -> dict[str, Entity | None] | None:
        if lagged is None:
            return None
        return tenant.overlay(lagged.kind, self._now(), by_id=False, belongs=lagged.belongs)


# -- OData query options ------------------------------------------------------------


def _query(
    request: Request,
    kind: Kind,
    *,
    collection: bool,
    strict: bool = False,
    expandable: bool = False,
) -> Query:
    allowed = {"$select", "$filter", "$top", "$skiptoken", "$count"} if collection else {"$select"}
    if expandable:
        allowed.add("$expand")
    for name in request.query:
        if name.startswith("$") and name.lower() not in allowed:
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                f"The query option '{name}' is not supported here by this emulator.",
            )
    options = {name.lower(): value for name, value in request.query.items()}
    fields, selected = kind.default, False
    if options.get("$select", "").strip():
        fields, selected = _select_names(options["$select"], kind.fields, kind.name), True
    top = _top(options) if "$top" in options else _DEFAULT_PAGE
    count = options.get("$count", "false").strip().lower()
    if count not in ("true", "false"):
        raise GraphError(
            400, "BadRequest", f"Invalid value '{options['$count']}' for query option '$count'."
        )
    filter_text = options.get("$filter", "").strip()
    match = _parse_filter(filter_text, kind, strict=strict) if filter_text else None
    binding = zlib.crc32(f"{request.path.lower()}|{filter_text}".encode())
    after = _read_skiptoken(options["$skiptoken"], binding) if "$skiptoken" in options else 0
    return Query(fields, selected, match, top, after, binding, count == "true")


def _member_json(member: Entity, query: Query) -> dict[str, Any]:
    """A directoryObject in a members list: its type first, whatever $select chose."""
    is_user = "userPrincipalName" in member.data
    fields = query.fields if query.selected else tuple(member.data)
    return {
        "@odata.type": "#microsoft.graph.user" if is_user else "#microsoft.graph.group",
        **{name: member.data.get(name) for name in fields},
    }


def _top(options: dict[str, str], maximum: int = _MAX_PAGE) -> int:
    try:
        top = int(options["$top"])
    except ValueError:
        raise GraphError(
            400, "BadRequest", f"Invalid value '{options['$top']}' for query option '$top'."
        ) from None
    if not 1 <= top <= maximum:
        raise GraphError(
            400,
            "Request_UnsupportedQuery",
            f"Invalid page size specified: '{top}'. Must be between 1 and {maximum} inclusive.",
        )
    return top


def _options(request: Request, allowed: set[str]) -> dict[str, str]:
    for name in request.query:
        if name.startswith("$") and name.lower() not in allowed:
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                f"The query option '{name}' is not supported here by this emulator.",
            )
    return {name.lower(): value for name, value in request.query.items()}


def _select_names(text: str, known: tuple[str, ...], type_name: str) -> tuple[str, ...]:
    """The properties ``$select`` names, as the type spells them; an unknown one is Graph's
    400 (an empty ``$select`` too: callers skip it where Graph ignores it)."""
    by_lower = {name.lower(): name for name in known}
    chosen: list[str] = []
    for raw in text.split(","):
        name = by_lower.get(raw.strip().lower())
        if name is None:
            raise GraphError(
                400,
                "BadRequest",
                f"Could not find a property named '{raw.strip()}' on type "
                f"'microsoft.graph.{type_name}'.",
            )
        if name not in chosen:
            chosen.append(name)
    return tuple(chosen)


def _owner_json(
    tenant: TenantState, owner_id: str, selected: list[str], users_visible: bool
) -> dict[str, Any]:
    """An owner as a directoryObject: @odata.type first, then its fields (those of the
    $select that its type has). A user the caller may not read: only type and id, the
    other selected fields null."""
    user = tenant.users.get(owner_id)
    entity = user or tenant.sp(owner_id)
    kind = OWNER_TYPES["user" if user else "sp"]
    if user is not None:
        defaults = list(USER_DEFAULT_FIELDS)
    else:
        defaults = list(entity.data)
    by_lower = {name.lower(): name for name in entity.data}
    names = (
        [by_lower[f.lower()] for f in selected if f.lower() in by_lower] if selected else defaults
    )
    if "id" not in names:
        names.insert(0, "id")
    if user is not None and not users_visible:
        return {"@odata.type": kind, **{n: (owner_id if n == "id" else None) for n in names}}
    return {"@odata.type": kind, **{n: entity.data[n] for n in names}}


def _advanced(request: Request) -> bool:
    """An advanced query (aad-advanced-queries.md): `ConsistencyLevel: eventual`."""
    return request.header("consistencylevel").strip().lower() == "eventual"


def _both(
    first: Callable[[Entity], bool] | None, second: Callable[[Entity], bool]
) -> Callable[[Entity], bool]:
    if first is None:
        return second
    return lambda entity: first(entity) and second(entity)


def _anything(entity: Entity) -> bool:
    return True


_DELTA_OPTIONS = frozenset({"$select", "$filter", "$top", "$skiptoken", "$deltatoken"})
_DELTA_ID = re.compile(r"\s*id\s+eq\s+'([^']+)'\s*", re.IGNORECASE)


def _delta_ids(text: str) -> tuple[str, ...] | None:
    """Delta's only filter: `id eq '{value}' or id eq '{value}'` (serviceprincipal-delta.md)."""
    if not text.strip():
        return None
    ids = []
    for clause in re.split(r"\s+or\s+", text.strip(), flags=re.IGNORECASE):
        found = _DELTA_ID.fullmatch(clause)
        if found is None:
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                "Delta queries support only a $filter on id: id eq '{value}' or id eq '{value}'.",
            )
        ids.append(found.group(1).lower())
    return tuple(ids)


def _visible_end(log: list[tuple[float, str]], start: int, now: float) -> int:
    """The end of the change log as replicas have it: entries up to the first not yet
    visible (lag is the same for every write, so later ones are not visible either)."""
    end = min(start, len(log))
    while end < len(log) and log[end][0] <= now:
        end += 1
    return end


_FILTER_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')"
    r"|(?P<guid>[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\b)"
    r"|(?P<number>-?\d+(?:\.\d+)?)|(?P<word>[A-Za-z_][\w.]*)"
    r"|(?P<punct>[(),]))"
)


def _parse_filter(text: str, kind: Kind, *, strict: bool = False) -> Callable[[Entity], bool]:
    """`$filter` with `eq`, `in (...)`, `startswith(prop, '...')` joined by `and`. With
    `strict`, only what Graph itself accepts on the kind (Kind.strict)."""
    tokens: list[tuple[str, Any]] = []
    position = 0
    while position < len(text):
        found = _FILTER_TOKEN.match(text, position)
        if found is None or found.end() == position:
            if text[position:].strip():
                raise _filter_error(f"unexpected text at '{text[position:]}'")
            break
        position = found.end()
        group = found.lastgroup
        raw = found.group(group)
        if group == "string":
            tokens.append(("string", raw[1:-1].replace("''", "'")))
        elif group == "guid":
            tokens.append(("guid", raw.lower()))
        elif group == "number":
            tokens.append(("value", float(raw) if "." in raw else int(raw)))
        elif group == "word" and raw in ("true", "false", "null"):
            tokens.append(("value", {"true": True, "false": False, "null": None}[raw]))
        else:
            tokens.append((group or "", raw))

    def take(expected_kind: str, expected: str | None = None) -> Any:
        if not tokens:
            raise _filter_error("the clause ends too early")
        token_kind, value = tokens.pop(0)
        if token_kind != expected_kind or (expected is not None and str(value).lower() != expected):
            raise _filter_error(f"expected {expected or expected_kind}, found '{value}'")
        return value

    def literal(field: str) -> Any:
        if not tokens:
            raise _filter_error("the clause ends too early")
        token_kind, value = tokens.pop(0)
        if token_kind not in ("string", "guid", "value"):
            raise _filter_error(f"expected a value, found '{value}'")
        if strict and field in kind.guids and token_kind != "guid":
            # Edm.Guid values go unquoted (microsoft-graph-docs#10665, -contrib#4133).
            raise GraphError(400, "BadRequest", "Invalid filter clause")
        return value

    def prop(name: str, operator: str) -> str:
        for field in kind.filterable if not strict or kind.strict is None else kind.fields:
            if field.lower() == name.lower():
                break
        else:
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                f"Unsupported or invalid query filter clause specified for property '{name}' "
                f"of resource '{kind.name[0].upper()}{kind.name[1:]}'.",
            )
        if strict and kind.strict is not None:
            rule = kind.strict.get(field)
            if rule is None:
                edm = "Guid" if field in kind.guids else "String"
                raise GraphError(
                    400, "Request_BadRequest", f"Invalid filter clause {field}: System.{edm}"
                )
            if operator not in rule[1]:
                raise GraphError(
                    400,
                    "Request_UnsupportedQuery",
                    f"Unsupported property filter clause operator '{operator}'.",
                )
        return field

    clauses: list[Callable[[Entity], bool]] = []
    while True:
        first = take("word")
        if first.lower() == "startswith":
            take("punct", "(")
            field = prop(take("word"), "startswith")
            take("punct", ",")
            prefix = str(literal(field)).casefold()
            take("punct", ")")
            clauses.append(
                lambda e, f=field, p=prefix: str(e.data[f] or "").casefold().startswith(p)
            )
        else:
            if not tokens or tokens[0][0] != "word":
                raise _filter_error("expected an operator")
            operator = tokens[0][1].lower()
            field = prop(first, operator)
            tokens.pop(0)
            if operator == "eq":
                values = [literal(field)]
            elif operator == "in":
                take("punct", "(")
                values = [literal(field)]
                while tokens and tokens[0] == ("punct", ","):
                    tokens.pop(0)
                    values.append(literal(field))
                take("punct", ")")
            else:
                raise _filter_error(f"the operator '{operator}' is not supported")
            wanted = {_fold(v) for v in values}
            clauses.append(lambda e, f=field, w=wanted: _fold(e.data[f]) in w)
        if not tokens:
            break
        take("word", "and")
    return lambda entity: all(clause(entity) for clause in clauses)


def _fold(value: Any) -> Any:
    # Directory string comparisons ignore case (GUIDs, names, UPNs alike).
    return value.casefold() if isinstance(value, str) else value


def _filter_error(detail: str) -> GraphError:
    return GraphError(400, "BadRequest", f"Invalid filter clause: {detail}.")


def _skiptoken(seq: int, binding: int) -> str:
    raw = _mask(struct.pack(">QI", seq, binding), binding)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _read_skiptoken(token: str, binding: int) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        seq, bound = struct.unpack(">QI", _mask(raw, binding))
    except (binascii.Error, struct.error, ValueError):
        bound, seq = None, 0
    if bound != binding:
        raise GraphError(
            400,
            "Directory_ExpiredPageToken",
            "The specified page token value has expired and can no longer be included in "
            "your request.",
        )
    return seq


def _mask(raw: bytes, binding: int) -> bytes:
    # Keeps tokens opaque: clients must follow nextLink, not compute positions.
    key = hashlib.sha256(binding.to_bytes(4, "big")).digest()
    return bytes(a ^ b for a, b in zip(raw, key, strict=False))


def _next_link(request: Request, token: str) -> str:
    kept = [(k, v) for k, v in request.query.items() if k.lower() != "$skiptoken"]
    kept.append(("$skiptoken", token))
    query = "&".join(f"{quote(k, safe='$')}={quote(v, safe=chr(39) + ',()')}" for k, v in kept)
    return f"{request.base_url}{quote(request.path, safe=chr(39) + '/()=$')}?{query}"


def _context(name: str, query: Query) -> str:
    return f"{name}({','.join(query.fields)})" if query.selected else name


def _metadata(request: Request, context: str) -> str:
    version = "beta" if request.path.lower().startswith("/beta/") else "v1.0"
    return f"{request.base_url}/{version}/$metadata#{context}"


# -- responses ----------------------------------------------------------------------


def _graph_response(request: Request, status: int, body: bytes) -> Response:
    return Response(status, body, _ids(request), content_type=ODATA_JSON)


def _entity(request: Request, context: str, part: bytes, status: int = 200) -> Response:
    body = b'{"@odata.context":' + dumps(_metadata(request, context)) + b"," + part[1:]
    return _graph_response(request, status, body)


def _no_content(request: Request) -> Response:
    return Response(204, b"", _ids(request), content_type="text/plain")


def _ids(request: Request) -> list[tuple[str, str]]:
    return [
        ("request-id", str(uuid.uuid4())),
        ("client-request-id", request.header("client-request-id") or str(uuid.uuid4())),
    ]


def _error_body(request: Request, code: str, message: str) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": str(uuid.uuid4()),
                "client-request-id": request.header("client-request-id") or str(uuid.uuid4()),
            },
        }
    }


def error_response(
    request: Request, error: GraphError, headers: list[tuple[str, str]] | None = None
) -> Response:
    extra = list(headers or [])
    if error.status == 401:
        extra.append(
            (
                "WWW-Authenticate",
                f'Bearer realm="", authorization_uri="{request.base_url}/common/oauth2/authorize",'
                f' client_id="{GRAPH_APP_ID}"',
            )
        )
    body = dumps(_error_body(request, error.code, error.message))
    return Response(error.status, body, _ids(request) + extra)


def _body(request: Request) -> Any:
    try:
        return request.json()
    except ValueError:
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload.") from None


def _batch_items(request: Request) -> list[dict[str, Any]]:
    payload = _body(request)
    items = payload.get("requests") if isinstance(payload, dict) else None
    if not isinstance(items, list) or not items:
        raise GraphError(400, "BadRequest", "The batch needs a non-empty 'requests' array.")
    if len(items) > MAX_BATCH:
        raise GraphError(
            400,
            "BadRequest",
            f"A batch holds at most {MAX_BATCH} requests; this one has {len(items)}.",
        )
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) and item[k] for k in ("id", "method", "url")
        ):
            raise GraphError(400, "BadRequest", "Each batch request needs an id, method and url.")
        if item["id"].lower() in seen:
            raise GraphError(400, "BadRequest", f"The batch repeats the id '{item['id']}'.")
        depends = item.get("dependsOn", [])
        if not isinstance(depends, list) or any(
            not isinstance(d, str) or d.lower() not in seen for d in depends
        ):
            raise GraphError(
                400, "BadRequest", f"Request '{item['id']}' may depend only on earlier requests."
            )
        if urlsplit(item["url"]).scheme or item["url"].lstrip("/").startswith(("v1.0", "beta")):
            raise GraphError(
                400, "BadRequest", "Batch request urls are relative to the version, e.g. /users."
            )
        seen.add(item["id"].lower())
    return items


def _inner_request(outer: Request, item: dict[str, Any]) -> Request:
    parts = urlsplit(item["url"])
    headers = {k.lower(): str(v) for k, v in (item.get("headers") or {}).items()}
    for name in ("authorization", "client-request-id"):
        if outer.header(name):
            headers.setdefault(name, outer.header(name))
    return Request(
        method=item["method"].upper(),
        path="/v1.0/" + parts.path.lstrip("/"),
        query=dict(parse_qsl(parts.query, keep_blank_values=True)),
        headers=headers,
        body=dumps(item["body"]) if "body" in item else b"",
        base_url=outer.base_url,
    )


def _organization(tenant: TenantState) -> dict[str, Any]:
    return {
        "id": tenant.id,
        "deletedDateTime": None,
        "businessPhones": [],
        "city": None,
        "country": None,
        "countryLetterCode": None,
        "createdDateTime": tenant.created,
        "displayName": tenant.name,
        "marketingNotificationEmails": [],
        "onPremisesSyncEnabled": None,
        "postalCode": None,
        "preferredLanguage": "en",
        "privacyProfile": None,
        "securityComplianceNotificationMails": [],
        "securityComplianceNotificationPhones": [],
        "state": None,
        "street": None,
        "technicalNotificationMails": [],
        "tenantType": "AAD",
        "assignedPlans": [],
        "provisionedPlans": [],
        "verifiedDomains": [
            {
                "capabilities": "Email, OfficeCommunicationsOnline",
                "isDefault": True,
                "isInitial": True,
                "name": tenant.domain,
                "type": "Managed",
            }
        ],
    }
