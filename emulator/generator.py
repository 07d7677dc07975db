"""Large synthetic tenants for benchmarks, deterministic for a given seed.

The result is scenario data (the YAML format's dict), so a generated tenant loads, pages
and fails exactly like a hand-written one. It reuses the demo's Graph catalog and portal
app, adding synthetic app roles when the requested assignments need more distinct roles
per service principal than Graph's real catalog in the demo has.

`realistic=True` makes the tenant look like real ones: some clients are managed
identities, Microsoft's own apps or disabled, a few have fields the portal does not
expect (no name, control characters, a very long name, odd tags, unknown keys), and one
more service principal is a SAML SSO app whose user-only role is assigned to
`sso_assignments` users and groups (thousands: an app the portal must never page).

Every generated tenant has Entra ID P1 and evidence for the portal to read: sign-in
activity for four clients in five (a fifth recent, the rest spread over a year), and
directory audit events (a consent or an added role for every tenth client, within the
30 days P1 keeps, and some older). `audit_log=True` also grants the portal's app
AuditLog.Read.All, one of `app_role_assignments`, so that it may read them. Realistic
tenants add owners (users, sometimes an app), credentials on service principals (some
expiring within 30 days, some expired) and audit events with odd initiators. The
evidence has a random generator of its own, so the rest stays as it was for a seed.
"""

from __future__ import annotations

import copy
import math
import random
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

_DEMO = Path(__file__).parent / "scenarios" / "demo.yaml"
_USER_SCOPES = ("openid", "profile", "email", "offline_access", "User.Read", "Calendars.Read")
_COUNTS = ("service_principals", "app_role_assignments", "delegated_grants", "users")
_EXTRA = ("sso_assignments", "groups")
_FLAGS = ("realistic", "audit_log")
AUDIT_LOG = "AuditLog.Read.All"  # what the portal needs to read sign-ins and audit events
MICROSOFT_TENANT_ID = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
_SSO_ROLE = "b9632174-c057-4f7e-951b-be3adc52bfe6"  # msiam_access, as SAML apps have it
_REALISTIC_SSO_ASSIGNMENTS, _REALISTIC_GROUPS = 2000, 50


def expand_block(block: Any) -> dict[str, Any]:
    """The scenario for a YAML `generate:` block; ValueError(key, problem) if it is bad."""
    if not isinstance(block, Mapping):
        raise ValueError("", "expected a mapping of counts")
    for key in block:
        if key not in (*_COUNTS, *_EXTRA, "seed", *_FLAGS):
            raise ValueError(key, "unknown key")
    for key in (*_COUNTS, *_EXTRA, "seed"):
        value = block.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(key, "expected a whole number, 0 or more")
    for flag in _FLAGS:
        if not isinstance(block.get(flag, False), bool):
            raise ValueError(flag, "expected true or false")
    counts = {key: block.get(key, 0) for key in (*_COUNTS, "seed")}
    extra = {key: block[key] for key in _EXTRA if key in block}
    flags = {flag: block.get(flag, False) for flag in _FLAGS}
    return generate(**counts, **flags, **extra)


def generate(
    *,
    service_principals: int,
    app_role_assignments: int,
    delegated_grants: int,
    users: int,
    seed: int = 0,
    realistic: bool = False,
    sso_assignments: int | None = None,
    groups: int | None = None,
    audit_log: bool = False,
) -> dict[str, Any]:
    """A one-tenant scenario with exactly these many service principals, application
    permission grants (app role assignments to service principals), delegated grants
    and users. The portal's app and its own grants are part of the counts; so is the
    SSO app of a realistic tenant (its user and group assignments are not)."""
    if realistic:
        sso_assignments = _REALISTIC_SSO_ASSIGNMENTS if sso_assignments is None else sso_assignments
        groups = _REALISTIC_GROUPS if groups is None else groups
    sso_assignments, groups = sso_assignments or 0, groups or 0
    if sso_assignments and not realistic:
        raise ValueError("sso_assignments", "needs realistic (the SSO app comes with it)")
    demo = yaml.load(_DEMO.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    rng = random.Random(seed)

    def guid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    # The resources every demo tenant has (not those only in some, such as SharePoint).
    resources = [r for r in copy.deepcopy(demo["resources"]) if "tenants" not in r]
    graph = resources[0]
    portal = demo["applications"][0]
    contoso_portal = demo["tenants"][0]["apps"][0]
    portal_grants = copy.deepcopy(contoso_portal["grants"])
    portal_grants[0]["permissions"] = [
        p for p in portal_grants[0]["permissions"] if audit_log or p != AUDIT_LOG
    ]
    portal_roles = len(portal_grants[0]["permissions"])

    sso_apps = 1 if realistic else 0
    clients = service_principals - len(resources) - 1 - sso_apps
    if clients < 0:
        fixed = len(resources) + 1 + sso_apps
        raise ValueError(
            "service_principals", f"must be at least {fixed} (resources, portal, SSO app)"
        )
    if users < 1:
        raise ValueError("users", "must be at least 1 (the portal's admin)")
    if sso_assignments > users + groups:
        raise ValueError("sso_assignments", f"at most {users + groups} (users and groups)")
    assignments = app_role_assignments - portal_roles
    if assignments < 0 or (assignments and not clients):
        raise ValueError(
            "app_role_assignments", f"needs {portal_roles} for the portal and clients for the rest"
        )
    user_grants = delegated_grants - 1  # the portal's admin consent is one
    admin_grants = min(clients, max(user_grants, 0) // 10)
    user_grants -= admin_grants
    if user_grants < 0 or user_grants > clients * (users - 1):
        raise ValueError(
            "delegated_grants",
            f"must be 1 or more, and at most about {clients} client apps x {users - 1} users",
        )

    roles_per_client = math.ceil(assignments / clients) if clients else 0
    for number in range(len(graph["app_roles"]), roles_per_client):
        graph["app_roles"].append(
            {
                "value": f"Synthetic.Permission{number}.Read.All",
                "id": guid(),
                "description": "A synthetic permission for benchmarks",
            }
        )
    role_values = [role["value"] for role in graph["app_roles"]]

    domain = f"generated{seed}.onmicrosoft.com"
    admin = {"upn": f"admin@{domain}", "name": "Generated Admin", "roles": ["Portal.Admin"]}
    people = [{**admin, "tenant_admin": True}]
    people += [{"upn": f"user{n:05d}@{domain}", "name": f"User {n:05d}"} for n in range(1, users)]
    # Its grants only: the demo's group assignments name groups only Contoso has.
    apps: list[dict[str, Any]] = [{"app_id": contoso_portal["app_id"], "grants": portal_grants}]
    registrations: list[dict[str, Any]] = [portal]
    for index in range(clients):
        app_id = guid()
        registration: dict[str, Any] = {"app_id": app_id, "name": f"Synthetic app {index:05d}"}
        app: dict[str, Any] = {"app_id": app_id}
        if realistic:
            _make_realistic(index, registration, app, rng)
        registrations.append(registration)
        grants = []
        count = _share(assignments, clients, index)
        if count:
            offset = rng.randrange(len(role_values))
            grants.append(
                {
                    "type": "application",
                    "permissions": [
                        role_values[(offset + n) % len(role_values)] for n in range(count)
                    ],
                }
            )
        if index < admin_grants:
            grants.append({"type": "delegated", "permissions": _scopes(rng)})
        count = _share(user_grants, clients, index)
        if count:
            offset = rng.randrange(users - 1)
            grants.append(
                {
                    "type": "delegated",
                    "users": [people[1 + (offset + n) % (users - 1)]["upn"] for n in range(count)],
                    "permissions": _scopes(rng),
                }
            )
        apps.append({**app, "grants": grants})

    tenant: dict[str, Any] = {
        "id": guid(),
        "name": f"Generated tenant {seed}",
        "domain": domain,
        "users": people,
        "apps": apps,
    }
    if realistic:
        sso_id = guid()
        registrations.append(
            {
                "app_id": sso_id,
                "name": "Synthetic SAML app",
                "app_roles": [
                    {"value": None, "id": _SSO_ROLE, "description": "msiam_access"},
                    {"value": "User", "id": guid(), "description": "User"},
                ],
            }
        )
        group_names = [f"Group {n:04d}" for n in range(1, groups + 1)]
        to_groups = group_names[: min(groups, sso_assignments)]
        to_users = [p["upn"] for p in people[: sso_assignments - len(to_groups)]]
        apps.append(
            {
                "app_id": sso_id,
                "tags": ["WindowsAzureActiveDirectoryCustomSingleSignOnApplication"],
                "extra": {"preferredSingleSignOnMode": "saml"},
                "assignments": [{"role": _SSO_ROLE, "users": to_users, "groups": to_groups}],
            }
        )
        if groups:
            tenant["synthetic"] = {"groups": groups}
    _add_evidence(tenant, registrations, seed, realistic)

    return {
        "scenario": 1,
        "name": f"generated-{service_principals}sp-seed{seed}",
        "portal": {"app_id": portal["app_id"]},
        "resources": resources,
        "applications": registrations,
        "tenants": [tenant],
    }


def _make_realistic(
    index: int, registration: dict[str, Any], app: dict[str, Any], rng: random.Random
) -> None:
    """Some clients as real tenants have them; the others stay plain synthetic apps."""
    if index % 20 == 1:
        registration["name"] = f"mi-synthetic-{index:05d}"
        app["type"] = "ManagedIdentity"
        app["extra"] = {"appOwnerOrganizationId": None, "signInAudience": "AzureADMyOrg"}
    elif index % 25 == 2:
        registration.update(
            name=f"Microsoft Service {index:05d}",
            publisher="Microsoft Services",
            owner_tenant_id=MICROSOFT_TENANT_ID,
        )
    elif index % 30 == 3:
        app["account_enabled"] = False
    elif index == 4:
        app["display_name"] = None
        app["extra"] = {"someFutureProperty": {"nested": [1, None]}, "appDisplayName": None}
    elif index == 5:
        registration["name"] = f"Synthetic\x00app\t{index}\n\x07\u202e"
    elif index == 6:
        registration["name"] = "Synthetic app with a very long name " + "x" * 400
        app["tags"] = ["", "HideApp", "t" * 300, f"tag-{rng.randrange(10**6)}"]


def _add_evidence(
    tenant: dict[str, Any], registrations: list[dict[str, Any]], seed: int, realistic: bool
) -> None:
    """Sign-ins, audit events and (realistic) owners and credentials; see the docstring."""
    rng = random.Random(f"evidence/{seed}")
    tenant["premium"] = True
    names = {r["app_id"]: r["name"] for r in registrations}
    upns = [p["upn"] for p in tenant["users"]]
    audit: list[dict[str, Any]] = []
    clients = tenant["apps"][1:]
    for index, app in enumerate(clients):
        if index % 5 != 4:
            recent = index % 5 == 0
            days = rng.uniform(0, 3) if recent else rng.uniform(10, 365)
            kind = "delegated_client" if _has(app, "delegated") and index % 2 else "app_client"
            app["sign_ins"] = {kind: f"-{days:.2f}d"}
        if index % 10 == 3:
            audit.append(_history(app, upns[index % len(upns)], rng))
        if not realistic:
            continue
        if index % 7 == 0:
            owners = [upns[(index + n) % len(upns)] for n in range(1 + index % 3)]
            if index % 21 == 0 and index > 0:
                owners.append(clients[index - 1]["app_id"])  # an app owning another
            app["owners"] = owners
        if index % 11 == 5:
            app["credentials"] = [
                {"type": "password", "name": f"secret-{index}", "expires": f"+{rng.randint(1, 29)}d"},
                {"type": "certificate", "name": f"CN={names.get(app['app_id'], index)}"[:60],
                 "start": "-400d", "expires": f"-{rng.randint(1, 60)}d"},
            ]  # fmt: skip
    tenant["audit"] = [event for event in audit if event is not None]


def _has(app: dict[str, Any], kind: str) -> bool:
    return any(g["type"] == kind for g in app.get("grants", []))


def _history(app: dict[str, Any], upn: str, rng: random.Random) -> dict[str, Any] | None:
    """An event of this client's past: how one of its grants came to be."""
    for grant in app.get("grants", []):
        at = f"-{rng.uniform(0, 40):.2f}d"  # some beyond the 30 days P1 keeps
        base = {"app": app["app_id"], "by": upn, "at": at, "permissions": grant["permissions"]}
        if grant["type"] == "application":
            return {"activity": "Add app role assignment to service principal", **base}
        if "users" in grant:
            return {"activity": "Add delegated permission grant", **base, "user": grant["users"][0]}
        return {"activity": "Consent to application", "type": "delegated", **base}
    return None


def _share(total: int, parts: int, index: int) -> int:
    """Part `index` of `total` split as evenly as possible into `parts`."""
    return total // parts + (1 if index < total % parts else 0)


def _scopes(rng: random.Random) -> list[str]:
    return rng.sample(_USER_SCOPES, rng.randint(1, 3))
