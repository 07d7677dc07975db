"""Scenarios: the tenants, apps and grants the emulator starts with, read from YAML.

Every problem is reported as one line naming the file and the key, e.g.
``demo.yaml: tenants[1].apps[0].grants[2].permissions[0]: unknown application permission
'Foo.Read.All' on Microsoft Graph``. Format: see ``scenarios/README.md``.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import yaml
from cryptography import x509

from emulator import pki
from emulator.behaviour import Behaviour
from emulator.faults import FaultRule
from emulator.generator import expand_block

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
SCENARIOS_DIR = Path(__file__).parent / "scenarios"
# Object ids the scenario leaves out are derived from names, so a restart keeps them stable.
_ID_NAMESPACE = uuid.UUID("5b0c7f2e-4a51-4c3e-9d8a-6e2f1b7c0a93")
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DEFAULT_CREATED = dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.UTC)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# What Graph's servicePrincipalType takes (serviceprincipal resource type).
SP_TYPES = ("Application", "ManagedIdentity", "Legacy", "SocialIdp")
MEMBER_TYPES = ("User", "Application")
# The directory audit activities the emulator records (Entra's own names, Core Directory).
CONSENT = "Consent to application"
ADD_ROLE = "Add app role assignment to service principal"
REMOVE_ROLE = "Remove app role assignment from service principal"
ADD_GRANT = "Add delegated permission grant"
REMOVE_GRANT = "Remove delegated permission grant"
AUDIT_ACTIVITIES = (CONSENT, ADD_ROLE, REMOVE_ROLE, ADD_GRANT, REMOVE_GRANT)
SIGN_IN_KINDS = ("app_client", "app_resource", "delegated_client", "delegated_resource")
# "-3d": three days before the scenario loads; "+20d": twenty days after.
_RELATIVE = re.compile(r"([+-])(\d+(?:\.\d+)?)([dhms])")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


class ScenarioError(ValueError):
    """A scenario that cannot be loaded; the message is one line naming file and key."""


@dataclass(frozen=True)
class Permission:
    id: str
    value: str | None  # None only for an app's roles (e.g. a SAML app's msiam_access)
    description: str
    admin_consent: bool = True  # scopes only: whether a user may consent for themselves
    member_types: tuple[str, ...] = ()  # app roles' allowedMemberTypes; () = the default


@dataclass(frozen=True)
class Resource:
    app_id: str
    name: str
    identifier_uris: tuple[str, ...]
    app_roles: tuple[Permission, ...]
    scopes: tuple[Permission, ...]
    tenants: tuple[str, ...] = ()  # the tenants it is in; () = every tenant


@dataclass(frozen=True)
class Moment:
    """A point in time: absolute, or `ago` seconds before the scenario loads (negative:
    after), so a demo's "3 days ago" stays 3 days ago whenever it starts."""

    absolute: dt.datetime | None = None
    ago: float = 0.0

    def at(self, loaded: float) -> float:
        """Epoch seconds, for a scenario loaded at `loaded`."""
        return self.absolute.timestamp() if self.absolute else loaded - self.ago


@dataclass(frozen=True)
class Secret:
    value: str
    expires: dt.datetime | None
    name: str | None = None


@dataclass(frozen=True)
class Credential:
    """A secret or certificate shown in passwordCredentials/keyCredentials (display only:
    nothing signs in with it)."""

    type: str  # password | certificate
    name: str | None
    start: Moment
    expires: Moment
    usage: str = "Verify"  # certificates: Verify, or Sign (a SAML signing key)


@dataclass(frozen=True)
class SignIns:
    """When an app last signed in, per kind of sign-in (servicePrincipalSignInActivity)."""

    app_client: Moment | None = None  # app-only, as the client
    app_resource: Moment | None = None  # app-only, as the resource called
    delegated_client: Moment | None = None
    delegated_resource: Moment | None = None


@dataclass(frozen=True)
class AuditSpec:
    """A directory audit event from before the scenario starts."""

    activity: str  # one of AUDIT_ACTIVITIES
    app: str  # the client's appId
    resource: str  # the resource's appId
    type: str  # application | delegated
    values: tuple[str, ...]
    by: str  # a user's UPN, or an appId (an app did it)
    at: Moment
    user: str | None = None  # delegated: the user a per-user grant is for (UPN)
    result: str = "success"


@dataclass(frozen=True)
class Certificate:
    cert: x509.Certificate
    path: Path
    key_path: Path | None  # known for generated certificates, so the portal can use them


@dataclass(frozen=True)
class Grant:
    type: str  # application | delegated
    resource: str  # the resource's appId
    values: tuple[str, ...]
    scope: str  # delegated only: the verbatim `scope` string Graph will show
    users: tuple[str, ...]  # delegated only: UPNs of per-user consents; empty = admin consent


# An app registration's groupMembershipClaims values (Entra's application manifest).
GROUP_MEMBERSHIP_CLAIMS = ("None", "SecurityGroup", "DirectoryRole", "ApplicationGroup", "All")


@dataclass(frozen=True)
class Application:
    app_id: str
    name: str
    publisher: str
    owner_tenant_id: str | None
    secrets: tuple[Secret, ...]
    certificates: tuple[Certificate, ...]
    redirect_uris: tuple[str, ...]
    app_roles: tuple[Permission, ...]  # roles the app defines (for users, or for apps)
    requires: tuple[Grant, ...]  # what admin consent grants
    scopes: tuple[Permission, ...] = ()  # delegated permissions the app exposes (an API)
    # The application object (in its owner's tenant): more credentials, its creation.
    credentials: tuple[Credential, ...] = ()
    created: Moment | None = None
    verified_publisher_id: str | None = None
    # The registration's groupMembershipClaims: "DirectoryRole" or "All" puts the user's
    # directory roles (``wids``) in the tokens Entra issues for the app; None leaves them out.
    group_membership_claims: str | None = None


@dataclass(frozen=True)
class User:
    id: str
    upn: str
    name: str
    job_title: str | None
    roles: tuple[str, ...]  # app roles of the portal app
    tenant_admin: bool  # may grant tenant-wide admin consent: a Global Administrator
    # Directory roles besides, by role template id (Global Reader...): the id token's
    # ``wids`` for apps whose registration asks for them (group_membership_claims).
    directory_roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Group:
    id: str
    name: str
    # Direct members: user and group object ids (a group may hold groups).
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class Members:
    """Users and groups assigned one of the app's own roles (as for an SSO app)."""

    role_id: str
    users: tuple[str, ...]  # user object ids
    groups: tuple[str, ...]  # group object ids


@dataclass(frozen=True)
class TenantApp:
    app_id: str
    sp_id: str
    grants: tuple[Grant, ...]
    members: tuple[Members, ...] = ()
    # The service principal's own fields, where they differ from the defaults.
    properties: Mapping[str, Any] | None = None
    sign_ins: SignIns | None = None
    owners: tuple[str, ...] = ()  # users' UPNs or apps' appIds
    credentials: tuple[Credential, ...] = ()  # placed on the service principal itself
    created: Moment | None = None


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    domain: str
    users: tuple[User, ...]
    apps: tuple[TenantApp, ...]
    groups: tuple[Group, ...] = ()
    premium: bool = False  # Entra ID P1: the sign-in activity report, 30 days of audit events
    audit: tuple[AuditSpec, ...] = ()


@dataclass(frozen=True)
class Scenario:
    name: str
    resources: Mapping[str, Resource]
    applications: Mapping[str, Application]
    tenants: tuple[Tenant, ...]
    portal_app_id: str | None
    operator_tenant_id: str | None
    token_lifetime: int
    faults: tuple[Mapping[str, Any], ...]
    created: dt.datetime
    behaviour: Behaviour = Behaviour()


def object_id(*parts: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, "/".join(parts)))


def load(source: str | Path | Mapping[str, Any], data_dir: Path) -> Scenario:
    """`source` is a built-in scenario name (`demo`), a YAML path, or parsed data."""
    if isinstance(source, Mapping):
        return parse(source, "<scenario>", data_dir, base_dir=Path.cwd())
    path = Path(source)
    if not path.suffix and not path.exists():
        path = SCENARIOS_DIR / f"{source}.yaml"
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScenarioError(f"{source}: cannot read scenario: {exc.strerror}") from exc
    return parse_text(text, path.name, data_dir, base_dir=path.parent)


def parse_text(text: str, label: str, data_dir: Path, base_dir: Path) -> Scenario:
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ScenarioError(f"{label}: not valid YAML{where}") from exc
    return parse(data, label, data_dir, base_dir)


def parse(data: Any, label: str, data_dir: Path, base_dir: Path) -> Scenario:
    return _Parser(label, data_dir, base_dir).scenario(data)


class _Parser:
    def __init__(self, label: str, data_dir: Path, base_dir: Path) -> None:
        self.label = label
        self.data_dir = data_dir
        self.base_dir = base_dir
        self.resources: dict[str, Resource] = {}
        self.applications: dict[str, Application] = {}
        self.portal_app_id: str | None = None

    def fail(self, where: str, problem: str) -> NoReturn:
        raise ScenarioError(f"{self.label}: {where}: {problem}")

    # -- generic readers -------------------------------------------------------------

    def mapping(self, value: Any, where: str, required: set[str], optional: set[str]) -> dict:
        if not isinstance(value, dict):
            self.fail(where, "expected a mapping")
        for key in value:
            if key not in required | optional:
                self.fail(_join(where, str(key)), "unknown key")
        for key in sorted(required - value.keys()):
            self.fail(_join(where, key), "missing")
        return value

    def items(self, parent: dict, key: str, where: str) -> list[tuple[str, Any]]:
        value = parent.get(key, [])
        if not isinstance(value, list):
            self.fail(_join(where, key), "expected a list")
        return [(f"{_join(where, key)}[{index}]", item) for index, item in enumerate(value)]

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(where, "expected a non-empty string")
        return value

    def texts(self, parent: dict, key: str, where: str) -> tuple[str, ...]:
        return tuple(self.text(item, path) for path, item in self.items(parent, key, where))

    def guid(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not _GUID.fullmatch(value.lower()):
            self.fail(where, f"{value!r} is not a GUID")
        return value.lower()

    def flag(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            self.fail(where, "expected true or false")
        return value

    # -- sections --------------------------------------------------------------------

    def scenario(self, data: Any) -> Scenario:
        top = {"name", "description", "portal", "settings", "faults", "behaviour"}
        sections = {"resources", "applications", "tenants"}
        data = self.mapping(data, "", {"scenario"}, top | sections | {"generate"})
        if data["scenario"] != 1:
            self.fail("scenario", "unsupported format version (expected 1)")
        if "generate" in data:
            if sections & data.keys():
                self.fail("generate", "cannot be combined with resources/applications/tenants")
            try:
                generated = expand_block(data["generate"])
            except ValueError as exc:
                key, problem = exc.args
                self.fail(f"generate.{key}" if key else "generate", problem)
            data = {**generated, **{k: v for k, v in data.items() if k in top}}
            data.setdefault("portal", generated["portal"])

        for where, item in self.items(data, "resources", ""):
            resource = self.resource(item, where)
            if resource.app_id in self.resources:
                self.fail(f"{where}.app_id", f"duplicate resource {resource.app_id}")
            self.resources[resource.app_id] = resource
        portal = self.mapping(
            data.get("portal", {}), "portal", set(), {"app_id", "operator_tenant_id"}
        )
        if "app_id" in portal:
            self.portal_app_id = self.guid(portal["app_id"], "portal.app_id")
        for where, item in self.items(data, "applications", ""):
            application = self.application(item, where)
            if application.app_id in self.applications or application.app_id in self.resources:
                self.fail(f"{where}.app_id", f"duplicate application {application.app_id}")
            self.applications[application.app_id] = application
        if self.portal_app_id and self.portal_app_id not in self.applications:
            self.fail("portal.app_id", "no application with this app_id")

        tenants: list[Tenant] = []
        for where, item in self.items(data, "tenants", ""):
            tenant = self.tenant(item, where)
            if any(t.id == tenant.id or t.domain == tenant.domain for t in tenants):
                self.fail(f"{where}.id", f"duplicate tenant {tenant.id} / {tenant.domain}")
            tenants.append(tenant)
        operator = portal.get("operator_tenant_id")
        if operator is not None:
            operator = self.guid(operator, "portal.operator_tenant_id")
            if all(t.id != operator for t in tenants):
                self.fail("portal.operator_tenant_id", "no tenant with this id")

        settings = self.mapping(
            data.get("settings", {}), "settings", set(), {"token_lifetime_seconds", "created"}
        )
        lifetime = settings.get("token_lifetime_seconds", 3599)
        if not isinstance(lifetime, int) or not 1 <= lifetime <= 86400:
            self.fail("settings.token_lifetime_seconds", "expected seconds between 1 and 86400")
        created = self.moment(settings.get("created", _DEFAULT_CREATED), "settings.created")

        faults = data.get("faults", [])
        if not isinstance(faults, list) or not all(isinstance(f, dict) for f in faults):
            self.fail("faults", "expected a list of fault rules")
        for index, rule in enumerate(faults):
            try:
                FaultRule.from_dict(rule)
            except ValueError as exc:
                self.fail(f"faults[{index}]", str(exc))

        try:
            behaviour = Behaviour.from_dict(data.get("behaviour", {}))
        except ValueError as exc:
            self.fail("behaviour", str(exc))

        return Scenario(
            name=str(data.get("name") or self.label),
            resources=self.resources,
            applications=self.applications,
            tenants=tuple(tenants),
            portal_app_id=self.portal_app_id,
            operator_tenant_id=operator,
            token_lifetime=lifetime,
            faults=tuple(faults),
            created=created,
            behaviour=behaviour,
        )

    def moment(self, value: Any, where: str) -> dt.datetime:
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value)
            except ValueError:
                self.fail(where, f"{value!r} is not an ISO date")
        if isinstance(value, dt.datetime):
            return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        if isinstance(value, dt.date):
            return dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)
        self.fail(where, "expected a date")

    def permission(
        self, item: Any, where: str, *, scope: bool, null_value: bool = False
    ) -> Permission:
        optional = {"admin_consent"} if scope else {"allowed_member_types"}
        item = self.mapping(item, where, {"value", "id", "description"}, optional)
        member_types = self.texts(item, "allowed_member_types", where)
        for index, member_type in enumerate(member_types):
            if member_type not in MEMBER_TYPES:
                self.fail(f"{where}.allowed_member_types[{index}]", "expected User or Application")
        value = item["value"]
        return Permission(
            id=self.guid(item["id"], f"{where}.id"),
            value=None if value is None and null_value else self.text(value, f"{where}.value"),
            description=self.text(item["description"], f"{where}.description"),
            admin_consent=self.flag(item.get("admin_consent", True), f"{where}.admin_consent"),
            member_types=member_types,
        )

    def permissions(
        self, parent: dict, key: str, where: str, *, scope: bool, null_value: bool = False
    ) -> tuple:
        found: dict[str, Permission] = {}
        for path, item in self.items(parent, key, where):
            permission = self.permission(item, path, scope=scope, null_value=null_value)
            name = permission.value or permission.id
            if name in found:
                self.fail(f"{path}.value", f"duplicate {name}")
            found[name] = permission
        return tuple(found.values())

    def resource(self, item: Any, where: str) -> Resource:
        item = self.mapping(
            item, where, {"app_id", "name"}, {"identifier_uris", "app_roles", "scopes", "tenants"}
        )
        return Resource(
            app_id=self.guid(item["app_id"], f"{where}.app_id"),
            name=self.text(item["name"], f"{where}.name"),
            identifier_uris=self.texts(item, "identifier_uris", where),
            app_roles=self.permissions(item, "app_roles", where, scope=False),
            scopes=self.permissions(item, "scopes", where, scope=True),
            tenants=tuple(self.guid(t, path) for path, t in self.items(item, "tenants", where)),
        )

    def application(self, item: Any, where: str) -> Application:
        optional = {"publisher", "owner_tenant_id", "secrets", "certificates", "redirect_uris"}
        optional |= {"app_roles", "requires", "scopes", "credentials", "created"}
        optional |= {"verified_publisher_id", "group_membership_claims"}
        item = self.mapping(item, where, {"app_id", "name"}, optional)
        claims = item.get("group_membership_claims")
        if claims is not None and claims not in GROUP_MEMBERSHIP_CLAIMS:
            self.fail(
                f"{where}.group_membership_claims",
                f"{claims!r} is none of {', '.join(GROUP_MEMBERSHIP_CLAIMS)}",
            )
        secrets = []
        for path, secret in self.items(item, "secrets", where):
            secret = self.mapping(secret, path, {"value"}, {"expires", "name"})
            expires = secret.get("expires")
            name = secret.get("name")
            secrets.append(
                Secret(
                    self.text(secret["value"], f"{path}.value"),
                    None if expires is None else self.moment(expires, f"{path}.expires"),
                    None if name is None else self.text(name, f"{path}.name"),
                )
            )
        owner = item.get("owner_tenant_id")
        verified = item.get("verified_publisher_id")
        return Application(
            app_id=self.guid(item["app_id"], f"{where}.app_id"),
            name=self.text(item["name"], f"{where}.name"),
            publisher=self.text(item.get("publisher", item["name"]), f"{where}.publisher"),
            owner_tenant_id=None if owner is None else self.guid(owner, f"{where}.owner_tenant_id"),
            secrets=tuple(secrets),
            certificates=tuple(
                self.certificate(c, path) for path, c in self.items(item, "certificates", where)
            ),
            redirect_uris=self.texts(item, "redirect_uris", where),
            app_roles=self.permissions(item, "app_roles", where, scope=False, null_value=True),
            requires=tuple(
                self.grant(g, path, users={}) for path, g in self.items(item, "requires", where)
            ),
            scopes=self.permissions(item, "scopes", where, scope=True),
            credentials=self.credentials(item, where),
            created=self.when(item["created"], f"{where}.created") if "created" in item else None,
            verified_publisher_id=None
            if verified is None
            else self.text(str(verified), f"{where}.verified_publisher_id"),
            group_membership_claims=claims,
        )

    def when(self, value: Any, where: str) -> Moment:
        """An ISO date or time, or one relative to the scenario's loading: "-3d", "+20d"
        (d, h, m or s)."""
        if isinstance(value, str):
            found = _RELATIVE.fullmatch(value.strip())
            if found is not None:
                sign, number, unit = found.groups()
                seconds = float(number) * _UNIT_SECONDS[unit]
                return Moment(ago=seconds if sign == "-" else -seconds)
        try:
            return Moment(absolute=self.moment(value, where))
        except ScenarioError:
            self.fail(where, f"{value!r} is not a date, nor relative like -3d or +20d")

    def credentials(self, item: dict, where: str) -> tuple[Credential, ...]:
        found = []
        for path, spec in self.items(item, "credentials", where):
            spec = self.mapping(spec, path, {"type", "expires"}, {"name", "start", "usage"})
            if spec["type"] not in ("password", "certificate"):
                self.fail(f"{path}.type", "expected password or certificate")
            usage = spec.get("usage", "Verify")
            if usage not in ("Verify", "Sign") or (
                usage == "Sign" and spec["type"] != "certificate"
            ):
                self.fail(f"{path}.usage", "expected Verify or Sign (certificates only)")
            name = spec.get("name")
            found.append(
                Credential(
                    type=spec["type"],
                    name=None if name is None else self.text(name, f"{path}.name"),
                    start=self.when(spec.get("start", "-365d"), f"{path}.start"),
                    expires=self.when(spec["expires"], f"{path}.expires"),
                    usage=usage,
                )
            )
        return tuple(found)

    def certificate(self, item: Any, where: str) -> Certificate:
        item = self.mapping(item, where, set(), {"generate", "file"})
        if len(item) != 1:
            self.fail(where, "give exactly one of generate (a name) or file (a PEM path)")
        if "generate" in item:
            name = self.text(item["generate"], f"{where}.generate")
            if not re.fullmatch(r"[\w.-]+", name):
                self.fail(f"{where}.generate", "use letters, digits, '.', '-' or '_'")
            path, key_path = pki.client_certificate(self.data_dir, name)
        else:
            path, key_path = self.base_dir / self.text(item["file"], f"{where}.file"), None
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError) as exc:
            self.fail(where, f"cannot read a PEM certificate from {path}: {exc}")
        return Certificate(cert, path, key_path)

    def tenant(self, item: Any, where: str) -> Tenant:
        item = self.mapping(
            item,
            where,
            {"id", "name", "domain"},
            {"users", "apps", "groups", "synthetic", "premium", "audit"},
        )
        tenant_id = self.guid(item["id"], f"{where}.id")
        domain = self.text(item["domain"], f"{where}.domain").lower()
        users: dict[str, User] = {}
        for path, user in self.items(item, "users", where):
            parsed = self.user(user, path, tenant_id)
            if parsed.upn.lower() in users:
                self.fail(f"{path}.upn", f"duplicate user {parsed.upn}")
            users[parsed.upn.lower()] = parsed
        groups: dict[str, Group] = {}
        listed = list(self.items(item, "groups", where))
        for path, group in listed:
            group = self.mapping(group, path, {"name"}, {"id", "members", "groups"})
            name = self.text(group["name"], f"{path}.name")
            if name.lower() in groups:
                self.fail(f"{path}.name", f"duplicate group {name}")
            group_id = (
                self.guid(group["id"], f"{path}.id")
                if "id" in group
                else object_id("group", tenant_id, name.lower())
            )
            groups[name.lower()] = Group(group_id, name)
        # Members once every group is known: a group may hold one listed after it.
        for path, group in listed:
            name = str(group["name"]).lower()
            groups[name] = Group(
                groups[name].id, groups[name].name, self.group_members(group, path, users, groups)
            )
        self.synthetic(item, f"{_join(where, 'synthetic')}", tenant_id, domain, users, groups)
        apps: dict[str, TenantApp] = {}
        for path, app in self.items(item, "apps", where):
            parsed_app = self.tenant_app(app, path, tenant_id, users, groups)
            if parsed_app.app_id in apps:
                self.fail(f"{path}.app_id", f"duplicate app {parsed_app.app_id} in this tenant")
            apps[parsed_app.app_id] = parsed_app
        for path, app in self.items(item, "apps", where):
            for index, grant in enumerate(apps[app["app_id"].lower()].grants):
                resource = self.resources.get(grant.resource)
                if resource is None and grant.resource not in apps:
                    self.fail(f"{path}.grants[{index}].resource", "that app is not in this tenant")
                if resource is not None and resource.tenants and tenant_id not in resource.tenants:
                    self.fail(f"{path}.grants[{index}].resource", "not in this tenant")
        if any(u.roles for u in users.values()) and self.portal_app_id not in apps:
            self.fail(f"{where}.apps", "users have portal roles but the portal app is not here")
        for path, app in self.items(item, "apps", where):
            for index, owner in enumerate(apps[app["app_id"].lower()].owners):
                if owner.lower() not in users and owner.lower() not in apps:
                    self.fail(f"{path}.owners[{index}]", f"no user or app {owner} in this tenant")
        return Tenant(
            id=tenant_id,
            name=self.text(item["name"], f"{where}.name"),
            domain=domain,
            users=tuple(users.values()),
            apps=tuple(apps.values()),
            groups=tuple(groups.values()),
            premium=self.flag(item.get("premium", False), f"{where}.premium"),
            audit=tuple(
                self.audit(a, path, users, apps) for path, a in self.items(item, "audit", where)
            ),
        )

    def audit(
        self,
        item: Any,
        where: str,
        users: Mapping[str, User],
        apps: Mapping[str, TenantApp],
    ) -> AuditSpec:
        optional = {"resource", "type", "user", "result"}
        item = self.mapping(item, where, {"activity", "app", "permissions", "by", "at"}, optional)
        activity = item["activity"]
        if activity not in AUDIT_ACTIVITIES:
            self.fail(f"{where}.activity", f"expected one of: {', '.join(AUDIT_ACTIVITIES)}")
        app_id = self.guid(item["app"], f"{where}.app")
        if app_id not in self.applications:
            self.fail(f"{where}.app", "no application with this app_id under applications")
        kind = {ADD_ROLE: "application", REMOVE_ROLE: "application"}.get(activity, "delegated")
        if activity == CONSENT:
            kind = item.get("type", "delegated")
            if kind not in ("application", "delegated"):
                self.fail(f"{where}.type", "expected application or delegated")
        elif "type" in item:
            self.fail(f"{where}.type", "only for Consent to application")
        grant = {"type": kind, "permissions": item["permissions"]}
        if "resource" in item:
            grant["resource"] = item["resource"]
        if "user" in item:
            grant["users"] = [item["user"]]
        parsed = self.grant(grant, where, users, in_tenant=True)
        by = self.text(item["by"], f"{where}.by")
        if by.lower() not in users and by.lower() not in apps:
            self.fail(f"{where}.by", f"no user or app {by} in this tenant")
        result = item.get("result", "success")
        if result not in ("success", "failure"):
            self.fail(f"{where}.result", "expected success or failure")
        return AuditSpec(
            activity=activity,
            app=app_id,
            resource=parsed.resource,
            type=kind,
            values=parsed.values,
            by=by,
            at=self.when(item["at"], f"{where}.at"),
            user=parsed.users[0] if parsed.users else None,
            result=result,
        )

    def group_members(
        self,
        group: dict,
        where: str,
        users: Mapping[str, User],
        groups: Mapping[str, Group],
    ) -> tuple[str, ...]:
        """`members: [upn, ...]` and `groups: [name, ...]` (nested groups), as object ids."""
        found: list[str] = []
        for key, known in (("members", users), ("groups", groups)):
            for index, name in enumerate(self.texts(group, key, where)):
                member = known.get(name.lower())
                if member is None:
                    what = "user" if key == "members" else "group"
                    self.fail(f"{where}.{key}[{index}]", f"no such {what} {name!r} here")
                found.append(member.id)
        return tuple(found)

    def synthetic(
        self,
        item: dict,
        where: str,
        tenant_id: str,
        domain: str,
        users: dict[str, User],
        groups: dict[str, Group],
    ) -> None:
        """`synthetic: {users: N, groups: M}`: that many made-up users and groups more."""
        counts = self.mapping(item.get("synthetic", {}), where, set(), {"users", "groups"})
        for key in ("users", "groups"):
            value = counts.get(key, 0)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100_000:
                self.fail(f"{where}.{key}", "expected a whole number from 0 to 100000")
        for number in range(1, counts.get("users", 0) + 1):
            upn = f"user{number:05d}@{domain}"
            users.setdefault(
                upn,
                User(object_id("user", tenant_id, upn), upn, f"User {number:05d}", None, (), False),
            )
        for number in range(1, counts.get("groups", 0) + 1):
            name = f"Group {number:04d}"
            groups.setdefault(
                name.lower(), Group(object_id("group", tenant_id, name.lower()), name)
            )

    def user(self, item: Any, where: str, tenant_id: str) -> User:
        item = self.mapping(
            item,
            where,
            {"upn", "name"},
            {"id", "roles", "tenant_admin", "job_title", "directory_roles"},
        )
        upn = self.text(item["upn"], f"{where}.upn")
        if "@" not in upn:
            self.fail(f"{where}.upn", f"{upn!r} is not a user principal name")
        roles = self.texts(item, "roles", where)
        portal = self.applications.get(self.portal_app_id or "")
        for index, role in enumerate(roles):
            if portal is None or all(r.value != role for r in portal.app_roles):
                self.fail(f"{where}.roles[{index}]", f"the portal app defines no role {role!r}")
        job = item.get("job_title")
        return User(
            id=self.guid(item["id"], f"{where}.id")
            if "id" in item
            else object_id("user", tenant_id, upn.lower()),
            upn=upn,
            name=self.text(item["name"], f"{where}.name"),
            job_title=None if job is None else self.text(job, f"{where}.job_title"),
            roles=roles,
            tenant_admin=self.flag(item.get("tenant_admin", False), f"{where}.tenant_admin"),
            directory_roles=tuple(
                self.guid(role, path) for path, role in self.items(item, "directory_roles", where)
            ),
        )

    def tenant_app(
        self,
        item: Any,
        where: str,
        tenant_id: str,
        users: Mapping[str, User],
        groups: Mapping[str, Group],
    ) -> TenantApp:
        optional = {"id", "grants", "assignments", "display_name", "account_enabled", "type"}
        optional |= {"tags", "extra", "sign_ins", "owners", "credentials", "created"}
        item = self.mapping(item, where, {"app_id"}, optional)
        app_id = self.guid(item["app_id"], f"{where}.app_id")
        if app_id not in self.applications:
            self.fail(f"{where}.app_id", "no application with this app_id under applications")
        grants = tuple(
            self.grant(g, path, users, in_tenant=True)
            for path, g in self.items(item, "grants", where)
        )
        seen: set[tuple[str, str, str]] = set()
        for index, grant in enumerate(grants):
            keys = grant.values if grant.type == "application" else grant.users or ("",)
            for key in keys:
                if (grant.type, grant.resource, key) in seen:
                    self.fail(
                        f"{where}.grants[{index}]",
                        f"repeats an earlier grant ({key or 'admin consent'})",
                    )
                seen.add((grant.type, grant.resource, key))
        return TenantApp(
            app_id=app_id,
            sp_id=self.guid(item["id"], f"{where}.id")
            if "id" in item
            else object_id("sp", tenant_id, app_id),
            grants=grants,
            members=tuple(
                self.members(m, path, self.applications[app_id], users, groups)
                for path, m in self.items(item, "assignments", where)
            ),
            properties=self.sp_properties(item, where),
            sign_ins=self.sign_ins(item, where),
            owners=self.texts(item, "owners", where),
            credentials=self.credentials(item, where),
            created=self.when(item["created"], f"{where}.created") if "created" in item else None,
        )

    def sign_ins(self, item: dict, where: str) -> SignIns | None:
        if "sign_ins" not in item:
            return None
        where = f"{where}.sign_ins"
        spec = self.mapping(item["sign_ins"], where, set(), set(SIGN_IN_KINDS))
        return SignIns(**{k: self.when(v, f"{where}.{k}") for k, v in spec.items()})

    def sp_properties(self, item: dict, where: str) -> dict[str, Any] | None:
        """Service principal fields as Graph names them; `extra` adds any others verbatim
        (fields the portal does not expect, or overrides such as preferredSingleSignOnMode)."""
        found: dict[str, Any] = {}
        if "display_name" in item:
            name = item["display_name"]
            if name is not None and not isinstance(name, str):
                self.fail(f"{where}.display_name", "expected a string or null")
            found["displayName"] = name
        if "account_enabled" in item:
            found["accountEnabled"] = self.flag(item["account_enabled"], f"{where}.account_enabled")
        if "type" in item:
            if item["type"] not in SP_TYPES:
                self.fail(f"{where}.type", f"expected one of {', '.join(SP_TYPES)}")
            found["servicePrincipalType"] = item["type"]
        if "tags" in item:
            tags = item["tags"]
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                self.fail(f"{where}.tags", "expected a list of strings")
            found["tags"] = list(tags)
        if "extra" in item:
            if not isinstance(item["extra"], dict):
                self.fail(f"{where}.extra", "expected a mapping of Graph fields")
            found.update({str(k): v for k, v in item["extra"].items()})
        return found or None

    def members(
        self,
        item: Any,
        where: str,
        app: Application,
        users: Mapping[str, User],
        groups: Mapping[str, Group],
    ) -> Members:
        item = self.mapping(item, where, {"role"}, {"users", "groups"})
        role = next(
            (r for r in app.app_roles if item["role"] in (r.value, r.id)),
            None,
        )
        if role is None or "User" not in (role.member_types or ("User",)):
            self.fail(f"{where}.role", f"{app.name} has no role {item['role']!r} for users")

        def pick(key: str, known: Mapping[str, Any]) -> tuple[str, ...]:
            value = item.get(key, [])
            if value == "all":
                return tuple(v.id for v in known.values())
            if not isinstance(value, list):
                self.fail(f"{where}.{key}", "expected a list of names, or all")
            ids = []
            for index, name in enumerate(value):
                found = known.get(str(name).lower())
                if found is None:
                    self.fail(f"{where}.{key}[{index}]", f"no such {key[:-1]} {name!r} here")
                ids.append(found.id)
            return tuple(ids)

        return Members(role.id, pick("users", users), pick("groups", groups))

    def grant(
        self, item: Any, where: str, users: Mapping[str, User], *, in_tenant: bool = False
    ) -> Grant:
        item = self.mapping(item, where, {"type"}, {"resource", "permissions", "scope", "users"})
        kind = item["type"]
        if kind not in ("application", "delegated"):
            self.fail(f"{where}.type", f"{kind!r} is not application or delegated")
        resource_id = self.guid(item.get("resource", GRAPH_APP_ID), f"{where}.resource")
        resource = self.resources.get(resource_id)
        if resource is None and in_tenant and resource_id in self.applications:
            # A line-of-business API: an app registration that defines its own permissions.
            api = self.applications[resource_id]
            resource = Resource(api.app_id, api.name, (), api.app_roles, api.scopes)
        if resource is None:
            self.fail(f"{where}.resource", f"no resource {resource_id} under resources")
        if ("permissions" in item) == ("scope" in item) or (
            kind == "application" and "scope" in item
        ):
            self.fail(where, "give permissions (or, for delegated grants, a verbatim scope)")
        if "scope" in item:
            scope = item["scope"]
            if not isinstance(scope, str):
                self.fail(f"{where}.scope", "expected a string")
            values = tuple(scope.split())
            value_where = [f"{where}.scope"] * len(values)
        else:
            values = self.texts(item, "permissions", where)
            scope = " ".join(values)
            value_where = [f"{where}.permissions[{i}]" for i in range(len(values))]
        if kind == "application":
            default = ("Application",) if resource_id in self.resources else ("User",)
            catalog = tuple(
                p for p in resource.app_roles if "Application" in (p.member_types or default)
            )
        else:
            catalog = resource.scopes
        for value, path in zip(values, value_where, strict=True):
            if all(p.value != value for p in catalog):
                self.fail(path, f"unknown {kind} permission {value!r} on {resource.name}")
        if len(set(values)) != len(values):
            self.fail(where, "lists a permission twice")
        upns = self.texts(item, "users", where)
        if upns and kind == "application":
            self.fail(f"{where}.users", "only delegated grants are per user")
        for index, upn in enumerate(upns):
            if upn.lower() not in users:
                self.fail(f"{where}.users[{index}]", f"no user {upn} in this tenant")
        return Grant(
            type=kind,
            resource=resource_id,
            values=values,
            scope=scope,
            users=tuple(users[u.lower()].upn for u in upns),
        )


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
