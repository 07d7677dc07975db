"""Data as real tenants have it (the demo's Woodgrove, the generator's realistic mode),
and steering the switches from a scenario and over the control endpoint."""

import subprocess
import sys

import pytest
import yaml

from emulator import run_emulator
from emulator.generator import generate
from emulator.scenario import ScenarioError, parse
from emulator.state import State
from tests.emulator.helpers import (
    CONTOSO,
    GRAPH_APP_ID,
    LOOKOUT_APP_ID,
    PORTAL_APP_ID,
    WOODGROVE,
    assert_graph_error,
    bearer,
    get_token,
    page_all,
    session_for,
)

MICROSOFT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
SELECT = (
    "id,appId,displayName,servicePrincipalType,appOwnerOrganizationId,accountEnabled,tags,appRoles"
)
GLOBEX = "6e7f8a9b-0c1d-4e2f-9a3b-4c5d6e7f8091"
PAYROLL_API = "7e1c2d3b-4a5f-4e6d-8c7b-9a0f1e2d3c4b"
HR_PORTAL = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"


@pytest.fixture
def woodgrove(emu, http):
    headers = bearer(get_token(emu, http, tenant=WOODGROVE))
    items, _ = page_all(
        http, f"{emu.url}/v1.0/servicePrincipals", headers, {"$select": SELECT, "$top": "999"}
    )
    return headers, {sp["appId"]: sp for sp in items}


def test_woodgrove_has_managed_identities_and_microsoft_apps_with_graph_roles(emu, http, woodgrove):
    headers, sps = woodgrove
    graph = sps[GRAPH_APP_ID]["id"]
    holders = page_all(
        http,
        f"{emu.url}/v1.0/servicePrincipals/{graph}/appRoleAssignedTo",
        headers,
        {"$top": "999"},
    )[0]
    holding = {a["principalId"] for a in holders}

    identities = [sp for sp in sps.values() if sp["servicePrincipalType"] == "ManagedIdentity"]
    assert len(identities) == 2 and all(sp["id"] in holding for sp in identities)
    assert all(sp["appOwnerOrganizationId"] is None for sp in identities)
    microsoft = [
        sp
        for sp in sps.values()
        if sp["appOwnerOrganizationId"] == MICROSOFT
        and sp["appRoles"] == []
        and sp["id"] in holding
    ]
    assert [sp["displayName"] for sp in microsoft] == ["Microsoft Teams Services"]
    assert set(sp["servicePrincipalType"] for sp in sps.values()) == {
        "Application",
        "ManagedIdentity",
    }


def test_woodgrove_has_an_sso_app_whose_roles_are_for_users_with_hundreds_assigned(
    emu, http, woodgrove
):
    headers, sps = woodgrove
    sso = sps[GLOBEX]
    assert all(role["allowedMemberTypes"] == ["User"] for role in sso["appRoles"])
    assert None in {role["value"] for role in sso["appRoles"]}  # msiam_access has no value
    assigned = page_all(
        http,
        f"{emu.url}/v1.0/servicePrincipals/{sso['id']}/appRoleAssignedTo",
        headers,
        {"$top": "999"},
    )[0]
    kinds = [a["principalType"] for a in assigned]
    assert kinds.count("User") == 302 and kinds.count("Group") == 20
    full = http.get(f"{emu.url}/v1.0/servicePrincipals/{sso['id']}", headers=headers).json()
    assert full["preferredSingleSignOnMode"] == "saml" and full["appRoleAssignmentRequired"] is True


def test_top_999_is_honoured_and_1000_refused(emu, http):
    headers = bearer(get_token(emu, http, tenant=WOODGROVE))
    sso = emu.sp_id(WOODGROVE, GLOBEX)
    url = f"{emu.url}/v1.0/servicePrincipals/{sso}/appRoleAssignedTo"

    assert len(http.get(url, headers=headers).json()["value"]) == 100  # Graph's default page
    page = http.get(url, headers=headers, params={"$top": "999"}).json()
    assert len(page["value"]) == 322 and "@odata.nextLink" not in page
    assert_graph_error(
        http.get(url, headers=headers, params={"$top": "1000"}), 400, "Request_UnsupportedQuery"
    )


def test_woodgrove_has_a_line_of_business_api_granted_to_another_app(emu, http, woodgrove):
    headers, sps = woodgrove
    api, client = sps[PAYROLL_API], sps[HR_PORTAL]
    roles = {role["value"]: role for role in api["appRoles"]}
    assert roles["Payroll.Read.All"]["allowedMemberTypes"] == ["Application"]
    assert roles["Payroll.Admin"]["allowedMemberTypes"] == ["User"]
    held = page_all(
        http, f"{emu.url}/v1.0/servicePrincipals/{client['id']}/appRoleAssignments", headers, None
    )[0]
    assert [(a["resourceId"], a["appRoleId"]) for a in held] == [
        (api["id"], roles["Payroll.Read.All"]["id"])
    ]
    grants = page_all(
        http,
        f"{emu.url}/v1.0/servicePrincipals/{client['id']}/oauth2PermissionGrants",
        headers,
        None,
    )[0]
    assert {g["resourceId"]: g["scope"] for g in grants}[api["id"]] == "access_as_user"


def test_woodgrove_has_delegated_grants_on_resources_other_than_graph(emu, http, woodgrove):
    headers, sps = woodgrove
    grants = page_all(http, f"{emu.url}/v1.0/oauth2PermissionGrants", headers, {"$top": "999"})[0]
    by_resource: dict[str, list[str]] = {}
    for grant in grants:
        by_resource.setdefault(grant["resourceId"], []).append(grant["scope"])
    sharepoint = sps["00000003-0000-0ff1-ce00-000000000000"]["id"]
    aad_graph = sps["00000002-0000-0000-c000-000000000000"]["id"]
    assert sorted(by_resource[sharepoint]) == ["AllSites.Read", "MyFiles.Write"]
    assert by_resource[aad_graph] == ["User.Read Directory.AccessAsUser.All"]
    # Only Woodgrove has these resources: Contoso's principals are as they were.
    assert "00000003-0000-0ff1-ce00-000000000000" not in {
        sp["appId"] for sp in emu.state(CONTOSO)["servicePrincipals"]
    }


def test_woodgrove_has_disabled_and_odd_principals(emu, http, woodgrove):
    headers, sps = woodgrove
    assert [sp["displayName"] for sp in sps.values() if sp["accountEnabled"] is False] == [
        "Old Intranet Connector"
    ]
    names = [sp["displayName"] for sp in sps.values()]
    assert None in names
    assert any(name and len(name) > 256 for name in names)
    assert any(name and "\x00" in name and "\u202e" in name for name in names)
    assert any("" in sp["tags"] for sp in sps.values())
    nameless = next(sp for sp in sps.values() if sp["displayName"] is None)
    full = http.get(f"{emu.url}/v1.0/servicePrincipals/{nameless['id']}", headers=headers).json()
    assert full["someFutureProperty"] == {"nested": [1, True, None, {"deeper": "x"}]}
    assert full["@odata.type"] == "#microsoft.graph.servicePrincipal"
    # $select gives only what is asked for, as Graph does.
    assert "someFutureProperty" not in nameless


def test_the_generator_makes_a_realistic_tenant_with_thousands_of_sso_assignments(
    data_dir, tmp_path
):
    data = generate(
        service_principals=120,
        app_role_assignments=300,
        delegated_grants=200,
        users=3000,
        seed=2,
        realistic=True,
        sso_assignments=3000,
        groups=40,
    )
    tenant = next(iter(State(parse(data, "generated", data_dir, tmp_path)).tenants.values()))

    sps = list(tenant.service_principals)
    assert len(sps) == 120
    application = [
        a for a in tenant.assignments.values() if a.data["principalType"] == "ServicePrincipal"
    ]
    assert len(application) == 300 and len(tenant.grants) == 200
    sso = next(sp for sp in sps if sp.data["displayName"] == "Synthetic SAML app")
    kinds = [a.data["principalType"] for a in tenant.assignments_to(sso.id)]
    assert len(kinds) == 3000 and kinds.count("Group") == 40
    assert all(r["allowedMemberTypes"] == ["User"] for r in sso.data["appRoles"])
    types = {sp.data["servicePrincipalType"] for sp in sps}
    assert types == {"Application", "ManagedIdentity"}
    assert any(
        sp.data["appOwnerOrganizationId"] == MICROSOFT and not sp.data["appRoles"] for sp in sps
    )
    assert any(sp.data["accountEnabled"] is False for sp in sps)
    assert any(sp.data["displayName"] is None for sp in sps)
    # Plain generation is as before: no SSO app, no odd principals.
    plain = generate(
        service_principals=120, app_role_assignments=300, delegated_grants=200, users=3000
    )
    assert "Synthetic SAML app" not in yaml.safe_dump(plain)


def test_generate_on_the_command_line_takes_realistic(tmp_path):
    out = tmp_path / "big.yaml"
    done = subprocess.run(
        [
            sys.executable, "-m", "emulator", "generate", "--service-principals", "40",
            "--app-role-assignments", "50", "--delegated-grants", "20", "--users", "100",
            "--realistic", "--sso-assignments", "90", "--groups", "5", "--out", str(out),
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "ManagedIdentity" in out.read_text()


def test_switches_come_from_the_scenario_and_reset_goes_back_to_them(data_dir):
    scenario = {
        "scenario": 1,
        "generate": {
            "service_principals": 10,
            "app_role_assignments": 4,
            "delegated_grants": 3,
            "users": 3,
        },
        "behaviour": {"replication_lag": {"collections": 2}, "strict_filters": True},
    }
    with run_emulator(scenario, data_dir=data_dir) as emu, session_for(emu) as http:
        control = f"{emu.url}/_emulator/behaviour"
        assert http.get(control).json()["replication_lag"] == {"collections": 2.0, "by_id": 0.0}
        changed = http.patch(control, json={"token_role_lag": 5})
        assert changed.json()["token_role_lag"] == 5 and changed.json()["strict_filters"] is True
        replaced = http.put(control, json={"vanished_principals": ["x"]}).json()
        assert replaced["strict_filters"] is False and replaced["vanished_principals"] == ["x"]
        assert http.post(f"{emu.url}/_emulator/reset").status_code == 200
        assert http.get(control).json()["strict_filters"] is True
        assert http.delete(control).status_code == 204
        assert http.get(control).json()["replication_lag"] == {"collections": 0.0, "by_id": 0.0}


@pytest.mark.parametrize(
    ("switches", "problem"),
    [
        ({"replication_lag": {"collection": 1}}, "replication_lag.collection: unknown switch"),
        ({"replication_lag": -1}, "replication_lag.collections: expected a number"),
        ({"incomplete_grants": {"fraction": 2}}, "incomplete_grants.fraction: must be between"),
        ({"strict_filters": "yes"}, "strict_filters: expected true or false"),
        ({"count_without_header": "fail"}, "count_without_header: expected 'ignore' or 'error'"),
        ({"throttling": {"limit": -3}}, "throttling.limit: expected a whole number"),
        ({"audit_latency": "soon"}, "audit_latency: expected a number"),
        ({"lag": 1}, "lag: unknown switch"),
    ],
)
def test_a_bad_switch_is_refused_with_its_name(emu, http, data_dir, tmp_path, switches, problem):
    response = http.patch(f"{emu.url}/_emulator/behaviour", json=switches)
    assert response.status_code == 400 and problem in response.json()["error"]
    with pytest.raises(ScenarioError, match=f"behaviour: {problem}"):
        parse({"scenario": 1, "behaviour": switches}, "s.yaml", data_dir, tmp_path)


def test_the_clock_moves_forward_only_over_the_control_endpoint(emu, http):
    before = http.get(f"{emu.url}/_emulator/clock").json()
    moved = http.post(f"{emu.url}/_emulator/clock", json={"advance": 120}).json()
    assert moved["offset"] == before["offset"] + 120 and moved["now"] >= before["now"] + 120
    assert http.post(f"{emu.url}/_emulator/clock", json={"advance": -1}).status_code == 400


def test_a_service_principal_is_changed_and_deleted_through_graph_with_the_right_role(
    emu, http, contoso
):
    lookout = emu.sp_id(CONTOSO, LOOKOUT_APP_ID)
    url = f"{emu.url}/v1.0/servicePrincipals/{lookout}"
    # The portal in Contoso may write assignments and grants, not principals.
    assert_graph_error(http.delete(url, headers=contoso), 403, "Authorization_RequestDenied")
    graph, portal = emu.sp_id(CONTOSO, GRAPH_APP_ID), emu.sp_id(CONTOSO, PORTAL_APP_ID)
    http.post(
        f"{emu.url}/v1.0/servicePrincipals/{graph}/appRoleAssignedTo",
        headers=contoso,
        json={
            "principalId": portal,
            "resourceId": graph,
            "appRoleId": "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9",
        },
    )
    writer = bearer(get_token(emu, http))

    assert http.patch(url, headers=writer, json={"accountEnabled": False}).status_code == 204
    assert http.get(url, headers=writer).json()["accountEnabled"] is False
    assert_graph_error(
        http.patch(url, headers=writer, json={"appId": "x"}), 400, "Request_BadRequest"
    )
    assert http.delete(url, headers=writer).status_code == 204
    assert_graph_error(http.get(url, headers=writer), 404, "Request_ResourceNotFound")
    assert all(
        lookout not in (a["principalId"], a["resourceId"])
        for a in emu.state(CONTOSO)["appRoleAssignments"]
    )
    control = f"{emu.url}/_emulator/tenants/{CONTOSO}/servicePrincipals/{lookout}"
    assert http.delete(control).status_code == 404
