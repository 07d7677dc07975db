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
MICROSOFT_TENANT_ID = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
_SSO_ROLE = "b9632174-c057-4f7e-951b-be3adc52bfe6"  # msiam_access, as SAML apps have it
_REALISTIC_SSO_ASSIGNMENTS, _REALISTIC_GROUPS = 2000, 50


def expand_block(block: Any) -> dict[str, Any]:
    """The scenario for a YAML `generate:` block; ValueError(key, problem) if it is bad."""
    if not isinstance(block, Mapping):
        raise ValueError("", "expected a mapping of counts")
    for key in block:
        if key not in (*_COUNTS, *_EXTRA, "seed", "realistic"):
            raise ValueError(key, "unknown key")
    for key in (*_COUNTS, *_EXTRA, "seed"):
        value = block.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(key, "expected a whole number, 0 or more")
    if not isinstance(block.get("realistic", False), bool):
        raise ValueError("realistic", "expected true or false")
    counts = {key: block.get(key, 0) for key in (*_COUNTS, "seed")}
    extra = {key: block[key] for key in _EXTRA if key in block}
    return generate(**counts, realistic=block.get("realistic", False), **extra)


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
    portal_roles = len(contoso_portal["grants"][0]["permissions"])

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
    apps: list[dict[str, Any]] = [
        {k: v for k, v in copy.deepcopy(contoso_portal).items() if k != "assignments"}
    ]
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


def _share(total: int, parts: int, index: int) -> int:
    """Part `index` of `total` split as evenly as possible into `parts`."""
    return total // parts + (1 if index < total % parts else 0)


def _scopes(rng: random.Random) -> list[str]:
    return rng.sample(_USER_SCOPES, rng.randint(1, 3))
