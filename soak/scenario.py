"""The soak's emulator scenario: the benchmark tenant and 20 small tenants in one emulator.

Each tenant comes from the emulator's generator (one tenant a call, a seed each); their
resources are the same (the demo's), so the tenants and app registrations are merged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from emulator.generator import generate

# As large as the sync benchmark's tenant (benchmarks/emulator_paging.py TENANT).
BENCHMARK_TENANT: dict[str, Any] = {
    "service_principals": 2000,
    "app_role_assignments": 10000,
    "delegated_grants": 50000,
    "users": 5000,
}
SMALL_TENANT: dict[str, Any] = {
    "service_principals": 40,
    "app_role_assignments": 80,
    "delegated_grants": 120,
    "users": 30,
}
SMALL_TENANTS = 20


def scenario_write(path: Path, *, benchmark_scale: float = 1.0) -> Path:
    """Writes the merged scenario to ``path``.

    ``benchmark_scale`` shrinks the benchmark tenant for the short run, whose time goes
    to faults rather than to one long first sync."""
    big = {key: max(1, round(value * benchmark_scale)) for key, value in BENCHMARK_TENANT.items()}
    parts = [generate(**big, seed=0)]
    parts += [generate(**SMALL_TENANT, seed=seed) for seed in range(1, SMALL_TENANTS + 1)]
    merged: dict[str, Any] = {
        "scenario": 1,
        "name": "soak",
        "portal": parts[0]["portal"],
        "resources": parts[0]["resources"],
        "applications": [],
        "tenants": [],
    }
    seen_apps: set[str] = set()
    for part in parts:
        if part["resources"] != merged["resources"]:
            raise RuntimeError("generated tenants disagree on their resources: cannot merge")
        for registration in part["applications"]:
            if registration["app_id"] not in seen_apps:
                seen_apps.add(registration["app_id"])
                merged["applications"].append(registration)
        merged["tenants"].extend(part["tenants"])
    path.write_text(yaml.safe_dump(merged, sort_keys=False))
    return path
