"""Microsoft Graph v1.0: the calls the portal makes, with Graph's shapes and errors.

Collections page in creation order. `@odata.nextLink` carries an opaque `$skiptoken`
naming the last object served, bound to the path and `$filter` it was issued for, so
every object is served exactly once even while others are added or deleted.
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
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlsplit

from emulator.scenario import GRAPH_APP_ID
from emulator.state import (
    ASSIGNMENT_FIELDS,
    GRANT_FIELDS,
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
WRITE_GRANTS = frozenset({"DelegatedPermissionGrant.ReadWrite.All", "Directory.ReadWrite.All"})
READ_USERS = frozenset(
    {"User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All", "Directory.Read.All"}
)
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


@dataclass(frozen=True)
class Kind:
    name: str  # Graph's type name, for error messages
    fields: tuple[str, ...]
    default: tuple[str, ...]  # what Graph returns without $select
    filterable: frozenset[str]


SERVICE_PRINCIPAL = Kind(
    "servicePrincipal",
    tuple(SP_TEMPLATE),
    tuple(SP_TEMPLATE),
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
    frozenset({"principalId", "resourceId", "appRoleId", "principalType"}),
)
GRANT = Kind(
    "oAuth2PermissionGrant",
    GRANT_FIELDS,
    GRANT_FIELDS,
    frozenset({"clientId", "consentType", "principalId", "resourceId"}),
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


@dataclass(frozen=True)
class Query:
    fields: tuple[str, ...]
    selected: bool
    match: Callable[[Entity], bool] | None
    top: int
    after: int
    binding: int  # ties a skip token to the path and $filter it was issued for


class GraphApi:
    def __init__(self, app: App) -> None:
        self.app = app
        self.state = app.state
        self.tokens = app.tokens

    def routes(self) -> list[tuple[str, str, Callable[[Request], Response]]]:
        routes: list[tuple[str, str, Callable[[Request], Response]]] = [
            ("GET", "/v1.0/servicePrincipals", self.list_service_principals),
            ("GET", "/v1.0/oauth2PermissionGrants", self.list_grants),
            ("POST", "/v1.0/oauth2PermissionGrants", self.create_grant),
            ("GET", "/v1.0/oauth2PermissionGrants/{grantId}", self.get_grant),
            ("PATCH", "/v1.0/oauth2PermissionGrants/{grantId}", self.update_grant),
            ("DELETE", "/v1.0/oauth2PermissionGrants/{grantId}", self.delete_grant),
            ("GET", "/v1.0/organization", self.organization),
            ("GET", "/v1.0/me", self.me),
            ("GET", "/v1.0/users", self.list_users),
            ("GET", "/v1.0/users/{userId}", self.get_user),
            ("POST", "/v1.0/$batch", self.batch),
        ]
        # A service principal is addressed by its object id or by its appId.
        for sp in ("/v1.0/servicePrincipals/{id}", "/v1.0/servicePrincipals(appId='{appId}')"):
            routes += [
                ("GET", sp, self.get_service_principal),
                ("GET", f"{sp}/appRoleAssignments", self.list_assignments),
                ("GET", f"{sp}/appRoleAssignedTo", self.list_assigned_to),
                ("POST", f"{sp}/appRoleAssignedTo", self.create_assignment),
                ("GET", f"{sp}/appRoleAssignedTo/{{assignmentId}}", self.get_assignment),
                ("DELETE", f"{sp}/appRoleAssignedTo/{{assignmentId}}", self.delete_assignment),
            ]
        return routes

    # -- service principals and app role assignments --------------------------------

    def list_service_principals(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(READ_APPS)
        return self._page(
            request, caller.tenant.service_principals, SERVICE_PRINCIPAL, "servicePrincipals"
        )

    def get_service_principal(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(READ_APPS)
        query = _query(request, SERVICE_PRINCIPAL, collection=False)
        with self.state.lock:
            part = self._sp(caller.tenant, request).json(query.fields)
        return _entity(request, _context("servicePrincipals", query) + "/$entity", part)

    def list_assignments(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(READ_APPS)
        with self.state.lock:
            sp = self._sp(caller.tenant, request)
            collection = caller.tenant.assignments_by(sp.id)
        name = f"servicePrincipals('{sp.id}')/appRoleAssignments"
        return self._page(request, collection, ASSIGNMENT, name)

    def list_assigned_to(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(READ_APPS)
        with self.state.lock:
            sp = self._sp(caller.tenant, request)
            collection = caller.tenant.assignments_to(sp.id)
        return self._page(
            request, collection, ASSIGNMENT, f"servicePrincipals('{sp.id}')/appRoleAssignedTo"
        )

    def get_assignment(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(READ_APPS)
        query = _query(request, ASSIGNMENT, collection=False)
        with self.state.lock:
            sp = self._sp(caller.tenant, request)
            found = caller.tenant.assignments_to(sp.id).get(request.params["assignmentId"])
            if found is None:
                raise not_found(request.params["assignmentId"])
            part = found.json(query.fields)
        name = f"servicePrincipals('{sp.id}')/appRoleAssignedTo"
        return _entity(request, _context(name, query) + "/$entity", part)

    def create_assignment(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(WRITE_ASSIGNMENTS, READ_APPS)
        with self.state.lock:
            sp = self._sp(caller.tenant, request)
            created = self.state.create_assignment(caller.tenant, sp.id, _body(request))
            part = created.json(ASSIGNMENT.fields)
        context = f"servicePrincipals('{sp.id}')/appRoleAssignedTo/$entity"
        return _entity(request, context, part, status=201)

    def delete_assignment(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(WRITE_ASSIGNMENTS)
        with self.state.lock:
            sp = self._sp(caller.tenant, request)
            self.state.delete_assignment(caller.tenant, sp.id, request.params["assignmentId"])
        return _no_content(request)

    # -- delegated permission grants ------------------------------------------------

    def list_grants(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(READ_GRANTS)
        return self._page(request, caller.tenant.grants, GRANT, "oauth2PermissionGrants")

    def get_grant(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(READ_GRANTS)
        query = _query(request, GRANT, collection=False)
        with self.state.lock:
            found = caller.tenant.grants.get(request.params["grantId"])
            if found is None:
                raise not_found(request.params["grantId"])
            part = found.json(query.fields)
        return _entity(request, _context("oauth2PermissionGrants", query) + "/$entity", part)

    def create_grant(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(WRITE_GRANTS)
        created = self.state.create_grant(caller.tenant, _body(request))
        return _entity(
            request, "oauth2PermissionGrants/$entity", created.json(GRANT.fields), status=201
        )

    def update_grant(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(WRITE_GRANTS)
        self.state.update_grant(caller.tenant, request.params["grantId"], _body(request))
        return _no_content(request)

    def delete_grant(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(WRITE_GRANTS)
        self.state.delete_grant(caller.tenant, request.params["grantId"])
        return _no_content(request)

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
        return self._page(request, caller.tenant.users, USER, "users")

    def get_user(self, request: Request) -> Response:
        caller = self._caller(request)
        caller.require(READ_USERS)
        query = _query(request, USER, collection=False)
        with self.state.lock:
            part = caller.tenant.user(request.params["userId"]).json(query.fields)
        return _entity(request, _context("users", query) + "/$entity", part)

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
            return tenant.sp_by_app(request.params["appId"])
        return tenant.sp(request.params["id"].lower())

    def _page(self, request: Request, collection: Collection, kind: Kind, name: str) -> Response:
        query = _query(request, kind, collection=True)
        with self.state.lock:
            found, more = collection.page(query.after, query.top, query.match)
            parts = [entity.json(query.fields) for entity in found]
        body = b'{"@odata.context":' + dumps(_metadata(request, _context(name, query)))
        if more:
            token = _skiptoken(found[-1].seq, query.binding)
            body += b',"@odata.nextLink":' + dumps(_next_link(request, token))
        body += b',"value":[' + b",".join(parts) + b"]}"
        return _graph_response(request, 200, body)


# -- OData query options ------------------------------------------------------------


def _query(request: Request, kind: Kind, *, collection: bool) -> Query:
    allowed = {"$select", "$filter", "$top", "$skiptoken"} if collection else {"$select"}
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
        by_lower = {field.lower(): field for field in kind.fields}
        chosen: list[str] = []
        for raw in options["$select"].split(","):
            field = by_lower.get(raw.strip().lower())
            if field is None:
                raise GraphError(
                    400,
                    "BadRequest",
                    f"Could not find a property named '{raw.strip()}' on type "
                    f"'microsoft.graph.{kind.name}'.",
                )
            if field not in chosen:
                chosen.append(field)
        fields, selected = tuple(chosen), True
    top = _DEFAULT_PAGE
    if "$top" in options:
        try:
            top = int(options["$top"])
        except ValueError:
            raise GraphError(
                400, "BadRequest", f"Invalid value '{options['$top']}' for query option '$top'."
            ) from None
        if not 1 <= top <= _MAX_PAGE:
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                f"Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive.",
            )
    filter_text = options.get("$filter", "").strip()
    match = _parse_filter(filter_text, kind) if filter_text else None
    binding = zlib.crc32(f"{request.path.lower()}|{filter_text}".encode())
    after = _read_skiptoken(options["$skiptoken"], binding) if "$skiptoken" in options else 0
    return Query(fields, selected, match, top, after, binding)


_FILTER_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+(?:\.\d+)?)|(?P<word>[A-Za-z_][\w.]*)"
    r"|(?P<punct>[(),]))"
)


def _parse_filter(text: str, kind: Kind) -> Callable[[Entity], bool]:
    """`$filter` with `eq`, `in (...)`, `startswith(prop, '...')` joined by `and`."""
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
            tokens.append(("value", raw[1:-1].replace("''", "'")))
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

    def prop(name: str) -> str:
        for field in kind.filterable:
            if field.lower() == name.lower():
                return field
        raise GraphError(
            400,
            "Request_UnsupportedQuery",
            f"Unsupported or invalid query filter clause specified for property '{name}' of "
            f"resource '{kind.name[0].upper()}{kind.name[1:]}'.",
        )

    clauses: list[Callable[[Entity], bool]] = []
    while True:
        first = take("word")
        if first.lower() == "startswith":
            take("punct", "(")
            field = prop(take("word"))
            take("punct", ",")
            prefix = str(take("value")).casefold()
            take("punct", ")")
            clauses.append(
                lambda e, f=field, p=prefix: str(e.data[f] or "").casefold().startswith(p)
            )
        else:
            field = prop(first)
            operator = take("word").lower()
            if operator == "eq":
                values = [take("value")]
            elif operator == "in":
                take("punct", "(")
                values = [take("value")]
                while tokens and tokens[0] == ("punct", ","):
                    tokens.pop(0)
                    values.append(take("value"))
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
    return f"{request.base_url}/v1.0/$metadata#{context}"


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
