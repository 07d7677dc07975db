"""Paging through 10,000 objects: every one exactly once, pages of at most $top."""

import pytest

from emulator import run_emulator
from tests.emulator.helpers import GRAPH_APP_ID, bearer, get_token, page_all, session_for

LARGE = {
    "service_principals": 10_000,
    "app_role_assignments": 10_000,
    "delegated_grants": 10_000,
    "users": 50,
    "seed": 3,
}


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("large")
    with run_emulator({"scenario": 1, "generate": LARGE}, data_dir=data_dir) as emulator:
        with session_for(emulator) as http:
            tenant = next(iter(emulator.app.state.tenants))
            yield emulator, http, tenant, bearer(get_token(emulator, http, tenant=tenant))


def test_paging_10000_service_principals_serves_each_exactly_once(large):
    emu, http, _, headers = large

    items, pages = page_all(
        http,
        f"{emu.url}/v1.0/servicePrincipals",
        headers,
        {"$select": "id,appId,displayName", "$top": "999"},
    )

    assert pages == 11  # 10 full pages of 999 and one of 10
    ids = [sp["id"] for sp in items]
    assert len(ids) == len(set(ids)) == 10_000


def test_paging_10000_app_role_assignments_of_graph(large):
    emu, http, tenant, headers = large
    graph = emu.app.state.tenants[tenant].sp_by_app_id[GRAPH_APP_ID].id

    items, pages = page_all(
        http,
        f"{emu.url}/v1.0/servicePrincipals/{graph}/appRoleAssignedTo",
        headers,
        {"$top": "999"},
    )

    assert pages == 11
    assert len({a["id"] for a in items}) == len(items) == 10_000
    pairs = {(a["principalId"], a["appRoleId"]) for a in items}
    assert len(pairs) == 10_000  # no client holds a role twice


def test_the_default_page_is_100(large):
    emu, http, _, headers = large
    body = http.get(f"{emu.url}/v1.0/oauth2PermissionGrants", headers=headers).json()
    assert len(body["value"]) == 100
    assert "@odata.nextLink" in body


def test_a_filtered_collection_pages_with_its_filter(large):
    emu, http, tenant, headers = large
    state = emu.app.state.tenants[tenant]
    client = next(g.data["clientId"] for g in state.grants if g.data["consentType"] == "Principal")
    expected = {g.id for g in state.grants if g.data["clientId"] == client}

    items, pages = page_all(
        http,
        f"{emu.url}/v1.0/oauth2PermissionGrants",
        headers,
        {"$filter": f"clientId eq '{client}'", "$top": "1"},
    )

    assert {g["id"] for g in items} == expected
    assert pages == len(expected)


def test_objects_deleted_while_paging_are_skipped_and_none_is_served_twice(data_dir):
    scenario = {
        "scenario": 1,
        "generate": {
            **LARGE,
            "service_principals": 20,
            "app_role_assignments": 2004,
            "delegated_grants": 1,
        },
    }
    with run_emulator(scenario, data_dir=data_dir) as emu, session_for(emu) as http:
        tenant = next(iter(emu.app.state.tenants))
        headers = bearer(get_token(emu, http, tenant=tenant))
        graph = emu.app.state.tenants[tenant].sp_by_app_id[GRAPH_APP_ID].id
        url = f"{emu.url}/v1.0/servicePrincipals/{graph}/appRoleAssignedTo"

        first = http.get(url, params={"$top": "500"}, headers=headers).json()
        everything = [a["id"] for a in emu.state(tenant)["appRoleAssignments"]]
        served = {a["id"] for a in first["value"]}
        doomed = [a for a in everything if a not in served][:300]
        for assignment in doomed:
            assert http.delete(f"{url}/{assignment}", headers=headers).status_code == 204
        rest, _ = page_all(http, first["@odata.nextLink"], headers, None)

        rest_ids = [a["id"] for a in rest]
        assert not served & set(rest_ids)
        assert not set(doomed) & set(rest_ids)
        assert len(served) + len(rest_ids) == 2004 - 300
