"""How many 999-item Graph pages the emulator serves per second.

It runs as its own process (as in the demo), over HTTPS with keep-alive, with a
generated tenant as large as the sync benchmarks use. Sync benchmarks print `run()`'s
lines next to their own figures, to show the emulator is not their bottleneck.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
TENANT = {
    "service_principals": 2000,
    "app_role_assignments": 10000,
    "delegated_grants": 50000,
    "users": 5000,
    "seed": 0,
}
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
MIN_SECONDS = 2.0  # per collection: repeat whole passes until this much time has passed
MAX_PASSES = 20
PARALLEL_CLIENTS = 4
TIMEOUT = 30
# A scenario of a hundred tenants takes a while to load.
STARTUP_SECONDS = 300


@dataclass(frozen=True)
class Running:
    url: str
    ca_bundle: str
    client_id: str
    secret: str


@contextmanager
def emulator_process(data_dir: Path, scenario: Path | None = None) -> Iterator[Running]:
    """The emulator serving ``scenario`` (default: the generated TENANT)."""
    if scenario is None:
        scenario = data_dir / "large.yaml"
        counts = ", ".join(f"{key}: {value}" for key, value in TENANT.items())
        scenario.write_text(f"scenario: 1\ngenerate: {{{counts}}}\n")
    command = [sys.executable, "-m", "emulator", "serve", "--port", "0"]
    command += ["--scenario", str(scenario), "--data-dir", str(data_dir)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        env: dict[str, str] = {}
        deadline = time.monotonic() + STARTUP_SECONDS
        while "PORTAL_CLIENT_SECRET" not in env:
            line = process.stdout.readline() if process.stdout else ""
            if not line or time.monotonic() > deadline:
                raise RuntimeError("the emulator did not start")
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                env[name] = value.strip("'")
        yield Running(
            env["GRAPH_URL"],
            env["GRAPH_CA_BUNDLE"],
            env["PORTAL_CLIENT_ID"],
            env["PORTAL_CLIENT_SECRET"],
        )
    finally:
        process.terminate()
        process.wait(timeout=10)


def session(running: Running) -> requests.Session:
    http = requests.Session()
    http.verify = running.ca_bundle
    http.trust_env = False  # or REQUESTS_CA_BUNDLE would override verify
    return http


def pass_through(http: requests.Session, url: str, headers: dict[str, str]) -> tuple[int, int, int]:
    """Follows nextLink to the end; returns (pages, items, bytes)."""
    pages = items = size = 0
    next_url: str | None = url
    while next_url:
        response = http.get(next_url, headers=headers, timeout=TIMEOUT)
        response.raise_for_status()
        body = response.json()
        pages, items, size = pages + 1, items + len(body["value"]), size + len(response.content)
        next_url = body.get("@odata.nextLink")
    return pages, items, size


def measure(
    http: requests.Session, url: str, headers: dict[str, str]
) -> tuple[float, int, int, float]:
    pages = items = size = passes = 0
    started = time.perf_counter()
    while passes < MAX_PASSES and (passes == 0 or time.perf_counter() - started < MIN_SECONDS):
        p, i, s = pass_through(http, url, headers)
        pages, items, size, passes = pages + p, items + i, size + s, passes + 1
    elapsed = time.perf_counter() - started
    return elapsed, pages, items, size / elapsed / 1e6


def run() -> list[str]:
    with tempfile.TemporaryDirectory() as folder, emulator_process(Path(folder)) as running:
        with session(running) as http:
            tenant = http.get(f"{running.url}/_emulator/state", timeout=TIMEOUT).json()
            tenant = tenant["tenants"][0]
            headers = {"Authorization": f"Bearer {app_token(http, running, tenant['id'])}"}
            collections = collection_urls(http, running.url, headers)
            lines = [
                f"emulator: tenant of {tenant['servicePrincipals']} service principals, "
                f"{tenant['appRoleAssignments']} app role assignments, "
                f"{tenant['oauth2PermissionGrants']} delegated grants; HTTPS, keep-alive"
            ]
            lines += one_client(http, collections, headers)
        lines.append(parallel_clients(running, collections["oauth2PermissionGrants"], headers))
    return lines


def app_token(http: requests.Session, running: Running, tenant_id: str) -> str:
    response = http.post(
        f"{running.url}/{tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": running.client_id,
            "client_secret": running.secret,
            "scope": "https://graph.microsoft.com/.default",
        },
        timeout=TIMEOUT,
    )
    response.raise_for_status()
    return response.json()["access_token"]


def collection_urls(http: requests.Session, url: str, headers: dict[str, str]) -> dict[str, str]:
    """The three collections a sync pages through, 999 items a page."""
    graph = http.get(
        f"{url}/v1.0/servicePrincipals(appId='{GRAPH_APP_ID}')?$select=id",
        headers=headers,
        timeout=TIMEOUT,
    ).json()["id"]
    return {
        "servicePrincipals": f"{url}/v1.0/servicePrincipals?$top=999&$select=id,appId,displayName",
        "appRoleAssignedTo": f"{url}/v1.0/servicePrincipals/{graph}/appRoleAssignedTo?$top=999",
        "oauth2PermissionGrants": f"{url}/v1.0/oauth2PermissionGrants?$top=999",
    }


def one_client(
    http: requests.Session, collections: dict[str, str], headers: dict[str, str]
) -> list[str]:
    lines = []
    total_pages = total_seconds = 0.0
    for name, url in collections.items():
        elapsed, pages, items, megabytes = measure(http, url, headers)
        total_pages, total_seconds = total_pages + pages, total_seconds + elapsed
        lines.append(
            f"emulator: {name:<24} {pages / elapsed:7.0f} pages/s  "
            f"{items / elapsed:9.0f} items/s  {megabytes:6.1f} MB/s"
        )
    rate = total_pages / total_seconds
    lines.append(f"emulator: 999-item pages served per second, one client: {rate:.0f}")
    return lines


def parallel_clients(running: Running, url: str, headers: dict[str, str]) -> str:
    def client(_: int) -> int:
        with session(running) as own:
            return measure(own, url, headers)[1]

    started = time.perf_counter()
    with ThreadPoolExecutor(PARALLEL_CLIENTS) as pool:
        pages = sum(pool.map(client, range(PARALLEL_CLIENTS)))
    rate = pages / (time.perf_counter() - started)
    return (
        f"emulator: 999-item pages served per second, {PARALLEL_CLIENTS} clients in parallel "
        f"(clients and emulator share {os.cpu_count()} CPUs): {rate:.0f}"
    )


def main() -> None:
    for line in run():
        print(line, flush=True)


if __name__ == "__main__":
    main()
