"""Large synthetic tenants for benchmarks, deterministic for a given seed.

The result is scenario data (the YAML format's dict), so a generated tenant loads, pages
and fails exactly like a hand-written one. It reuses the demo's Graph catalog and portal
app, adding synthetic app roles when the requested assignments need more distinct roles
per service principal than Graph's real catalog in the demo has.
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


def expand_block(block: Any) -> dict[str, Any]:
    """The scenario for a YAML `generate:` block; ValueError(key, problem) if it is bad."""
    if not isinstance(block, Mapping):
        raise ValueError("", "expected a mapping of counts")
    for key in block:
        if key not in (*_COUNTS, "seed"):
            raise ValueError(key, "unknown key")
    for key in (*_COUNTS, "seed"):
        value = block.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(key, "expected a whole number, 0 or more")
    return generate(**{key: block.get(key, 0) for key in (*_COUNTS, "seed")})


def generate(
    *,
    service_principals: int,
    app_role_assignments: int,
    delegated_grants: int,
    users: int,
    seed: int = 0,
) -> dict[str, Any]:
    """A one-tenant scenario with exactly these many service principals, application
    permission grants (app role assignments to service principals), delegated grants
    and users. The portal's app and its own grants are part of the counts."""
    demo = yaml.load(_DEMO.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    rng = random.Random(seed)

    def guid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    resources = copy.deepcopy(demo["resources"])
    graph = resources[0]
    portal = demo["applications"][0]
    contoso_portal = demo["tenants"][0]["apps"][0]
    portal_roles = len(contoso_portal["grants"][0]["permissions"])

    clients = service_principals - len(resources) - 1
    if clients < 0:
        raise ValueError(
            "service_principals", f"must be at least {len(resources) + 1} (resources and portal)"
        )
    if users < 1:
        raise ValueError("users", "must be at least 1 (the portal's admin)")
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
    apps: list[dict[str, Any]] = [copy.deepcopy(contoso_portal)]
    registrations: list[dict[str, Any]] = [portal]
    for index in range(clients):
        app_id = guid()
        registrations.append({"app_id": app_id, "name": f"Synthetic app {index:05d}"})
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
        apps.append({"app_id": app_id, "grants": grants})

    return {
        "scenario": 1,
        "name": f"generated-{service_principals}sp-seed{seed}",
        "portal": {"app_id": portal["app_id"]},
        "resources": resources,
        "applications": registrations,
        "tenants": [
            {
                "id": guid(),
                "name": f"Generated tenant {seed}",
                "domain": domain,
                "users": people,
                "apps": apps,
            }
        ],
    }


def _share(total: int, parts: int, index: int) -> int:
    """Part `index` of `total` split as evenly as possible into `parts`."""
    return total // parts + (1 if index < total % parts else 0)


def _scopes(rng: random.Random) -> list[str]:
    return rng.sample(_USER_SCOPES, rng.randint(1, 3))
