"""Parallel requests leave the directory consistent."""

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.emulator.helpers import CONTOSO, page_all, session_for

USER_READ_ALL = "df021288-bdef-4463-88db-98f22de89214"


@pytest.fixture
def per_thread(emu) -> Iterator:
    """A function giving each worker thread its own keep-alive session."""
    local, sessions = threading.local(), []

    def session() -> requests.Session:
        if not hasattr(local, "http"):
            local.http = session_for(emu)
            sessions.append(local.http)
        return local.http

    yield session
    for http in sessions:
        http.close()


def test_racing_creates_of_one_assignment_create_it_once(emu, contoso, per_thread):
    state = emu.state(CONTOSO)
    graph = state["servicePrincipals"][0]["id"]
    connect = next(
        sp["id"] for sp in state["servicePrincipals"] if sp["displayName"] == "247connect"
    )
    url = f"{emu.url}/v1.0/servicePrincipals/{graph}/appRoleAssignedTo"
    body = {"principalId": connect, "resourceId": graph, "appRoleId": USER_READ_ALL}

    def create(_: int) -> int:
        return per_thread().post(url, json=body, headers=contoso).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(create, range(32)))

    assert sorted(set(statuses)) == [201, 400]
    assert statuses.count(201) == 1
    held = [
        a
        for a in emu.state(CONTOSO)["appRoleAssignments"]
        if a["principalId"] == connect and a["appRoleId"] == USER_READ_ALL
    ]
    assert len(held) == 1


def test_parallel_creates_deletes_and_reads_agree_with_the_final_state(emu, contoso, per_thread):
    state = emu.state(CONTOSO)
    graph = state["servicePrincipals"][0]["id"]
    url = f"{emu.url}/v1.0/servicePrincipals/{graph}/appRoleAssignedTo"
    role_ids = [role["id"] for role in emu.app.state.tenants[CONTOSO].sp(graph).data["appRoles"]]
    clients = [sp["id"] for sp in state["servicePrincipals"][2:]]
    existing = [a["id"] for a in state["appRoleAssignments"] if a["resourceId"] == graph]

    def work(n: int) -> tuple[str, int]:
        http = per_thread()
        if n % 3 == 0 and existing:
            target = existing[n // 3 % len(existing)]
            return "delete", http.delete(f"{url}/{target}", headers=contoso).status_code
        if n % 3 == 1:
            pair = {
                "principalId": clients[n % len(clients)],
                "resourceId": graph,
                "appRoleId": role_ids[n % len(role_ids)],
            }
            return "create", http.post(url, json=pair, headers=contoso).status_code
        items, _ = page_all(http, url, contoso, {"$top": "5"})
        assert len({a["id"] for a in items}) == len(items)
        return "read", 200

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(90)))

    assert all(status in (200, 201, 204, 400, 404) for _, status in results)
    deleted = sum(1 for kind, status in results if kind == "delete" and status == 204)
    created = sum(1 for kind, status in results if kind == "create" and status == 201)
    with session_for(emu) as http:
        final, _ = page_all(http, url, contoso, {"$top": "999"})
    assert len(final) == len(existing) - deleted + created
    assert len({(a["principalId"], a["appRoleId"]) for a in final}) == len(final)
