"""Scenario files, the generator and the command line."""

import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from emulator import __main__ as cli
from emulator import run_emulator
from emulator.generator import generate
from emulator.scenario import ScenarioError, load, parse
from emulator.state import State
from tests.emulator.helpers import CONTOSO, FABRIKAM, GRAPH_APP_ID, PORTAL_APP_ID, session_for

REPO = Path(__file__).resolve().parents[2]
VENDOR_APPS = {
    "8708fc71-9f71-4ad5-8445-a0746692feeb": "247connect",
    "3c1a9d6e-5b2f-4e8a-9c7d-1f0e2b3a4c5d": "Teams Rooms monitoring platform",
    "6f4e2a1b-8c3d-4e5f-a6b7-c8d9e0f1a2b3": "AskCody",
    "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d": "Lookout MES Console",
    "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e": "Legacy Reporting Tool",
}


def demo_data():
    return yaml.safe_load((REPO / "emulator/scenarios/demo.yaml").read_text())


def granted(tenant, app_id):
    """{permission value} an app holds on Graph (application) in a demo tenant."""
    sp = tenant.sp_by_app_id[app_id]
    return set(tenant.role_values(sp.id, tenant.sp_by_app_id[GRAPH_APP_ID].id))


def test_the_demo_has_the_vendor_apps_the_manifests_use(data_dir):
    scenario = load("demo", data_dir)

    names = {app_id: app.name for app_id, app in scenario.applications.items()}
    assert VENDOR_APPS.items() <= names.items()
    assert scenario.portal_app_id == PORTAL_APP_ID
    assert [t.name for t in scenario.tenants] == ["Contoso", "Fabrikam", "Northwind", "Woodgrove"]


def test_the_demo_tenants_use_the_apps_differently(data_dir):
    state = State(load("demo", data_dir))
    contoso, fabrikam = state.tenants[CONTOSO], state.tenants[FABRIKAM]
    connect = "8708fc71-9f71-4ad5-8445-a0746692feeb"

    assert "Group.Read.All" in granted(contoso, connect)
    assert "Group.Read.All" not in granted(fabrikam, connect)
    assert "Mail.Read" in granted(contoso, "3c1a9d6e-5b2f-4e8a-9c7d-1f0e2b3a4c5d")
    assert granted(contoso, "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e") == {"Directory.ReadWrite.All"}
    assert granted(fabrikam, PORTAL_APP_ID) == {
        "Application.Read.All",
        "Directory.Read.All",
        "AuditLog.Read.All",
    }
    per_user = [g for g in fabrikam.grants if g.data["consentType"] == "Principal"]
    assert len(per_user) == 2


def test_object_ids_are_stable_across_loads(data_dir):
    first = State(load("demo", data_dir)).tenants[CONTOSO]
    second = State(load("demo", data_dir)).tenants[CONTOSO]
    assert [sp.id for sp in first.service_principals] == [sp.id for sp in second.service_principals]
    assert list(first.assignments) == list(second.assignments)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["tenants"][0].update(colour="blue"),
            "demo.yaml: tenants[0].colour: unknown key",
        ),
        (
            lambda d: d["tenants"][1].update(id="not-a-guid"),
            "demo.yaml: tenants[1].id: 'not-a-guid' is not a GUID",
        ),
        (
            lambda d: d["tenants"][0]["apps"][1]["grants"][0]["permissions"].append("Foo.Read.All"),
            "demo.yaml: tenants[0].apps[1].grants[0].permissions[3]: "
            "unknown application permission 'Foo.Read.All' on Microsoft Graph",
        ),
        (
            lambda d: d["tenants"][0]["apps"][3]["grants"][2]["users"].append(
                "zoe@contoso.onmicrosoft.com"
            ),
            "demo.yaml: tenants[0].apps[3].grants[2].users[3]: "
            "no user zoe@contoso.onmicrosoft.com in this tenant",
        ),
        (
            lambda d: d["tenants"][0]["apps"].append(
                {"app_id": "11111111-2222-4333-8444-555555555555"}
            ),
            "demo.yaml: tenants[0].apps[6].app_id: "
            "no application with this app_id under applications",
        ),
        (
            lambda d: d["tenants"][0]["users"][0].update(roles=["Portal.King"]),
            "demo.yaml: tenants[0].users[0].roles[0]: the portal app defines no role 'Portal.King'",
        ),
        (
            lambda d: d.update(faults=[{"path": "x", "status": 429, "every": 0}]),
            "demo.yaml: faults[0]: every: must be between 1 and 1000000",
        ),
        (
            lambda d: d["tenants"][0]["apps"][1].update(sign_ins={"app_client": "3 days ago"}),
            "demo.yaml: tenants[0].apps[1].sign_ins.app_client: "
            "'3 days ago' is not a date, nor relative like -3d or +20d",
        ),
        (
            lambda d: d["tenants"][0]["apps"][1].update(sign_ins={"app_only": "-3d"}),
            "demo.yaml: tenants[0].apps[1].sign_ins.app_only: unknown key",
        ),
        (
            lambda d: d["tenants"][0]["apps"][1].update(owners=["zoe@contoso.onmicrosoft.com"]),
            "demo.yaml: tenants[0].apps[1].owners[0]: "
            "no user or app zoe@contoso.onmicrosoft.com in this tenant",
        ),
        (
            lambda d: d["tenants"][0]["apps"][5]["credentials"][0].update(type="token"),
            "demo.yaml: tenants[0].apps[5].credentials[0].type: expected password or certificate",
        ),
        (
            lambda d: d["tenants"][0]["audit"][0].update(activity="Update application"),
            "demo.yaml: tenants[0].audit[0].activity: expected one of: Consent to application, "
            "Add app role assignment to service principal, Remove app role assignment from "
            "service principal, Add delegated permission grant, Remove delegated permission grant",
        ),
        (
            lambda d: d["tenants"][0]["audit"][4].update(permissions=["Mail.Send"]),
            "demo.yaml: tenants[0].audit[4].permissions[0]: "
            "unknown application permission 'Mail.Send' on Microsoft Graph",
        ),
        (
            lambda d: d["tenants"][1].update(premium="yes"),
            "demo.yaml: tenants[1].premium: expected true or false",
        ),
        (
            lambda d: d["applications"][0].update(group_membership_claims="Roles"),
            "demo.yaml: applications[0].group_membership_claims: 'Roles' is none of None, "
            "SecurityGroup, DirectoryRole, ApplicationGroup, All",
        ),
        (
            lambda d: d["tenants"][0]["users"][0].update(directory_roles=["Global Admin"]),
            "demo.yaml: tenants[0].users[0].directory_roles[0]: 'Global Admin' is not a GUID",
        ),
    ],
)
def test_a_bad_scenario_fails_with_one_line_naming_file_and_key(data_dir, change, message):
    data = demo_data()
    change(data)
    with pytest.raises(ScenarioError) as error:
        parse(data, "demo.yaml", data_dir, REPO)
    assert str(error.value) == message
    assert "\n" not in str(error.value)


def test_a_missing_scenario_file_is_named(data_dir):
    with pytest.raises(ScenarioError, match="nowhere.yaml: cannot read scenario"):
        load("nowhere.yaml", data_dir)


def test_the_generator_makes_exactly_the_requested_counts(data_dir):
    data = generate(
        service_principals=300, app_role_assignments=2000, delegated_grants=5000, users=200, seed=1
    )
    state = State(parse(data, "generated", data_dir, REPO))
    (tenant,) = state.tenants.values()
    graph = tenant.sp_by_app_id[GRAPH_APP_ID].id

    assert len(tenant.service_principals) == 300
    assert len(tenant.assignments_to(graph)) == 2000
    assert len(tenant.grants) == 5000
    assert len(tenant.users) == 200


def test_the_generator_is_deterministic_for_a_seed():
    def made(seed: int) -> dict[str, Any]:
        return generate(
            service_principals=50,
            app_role_assignments=100,
            delegated_grants=200,
            users=20,
            seed=seed,
        )

    assert made(5) == made(5)
    assert made(5) != made(6)


def test_the_generator_refuses_counts_it_cannot_honour():
    with pytest.raises(ValueError, match="delegated_grants"):
        generate(service_principals=10, app_role_assignments=4, delegated_grants=1000, users=5)


def test_generate_writes_a_scenario_that_loads(tmp_path, data_dir, capsys):
    out = tmp_path / "big.yaml"
    status = cli.main(
        [
            "generate",
            "--service-principals",
            "40",
            "--app-role-assignments",
            "100",
            "--delegated-grants",
            "300",
            "--users",
            "30",
            "--seed",
            "2",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    scenario = load(out, data_dir)
    assert len(scenario.tenants[0].users) == 30

    assert (
        cli.main(
            [
                "generate",
                "--service-principals",
                "1",
                "--app-role-assignments",
                "0",
                "--delegated-grants",
                "1",
                "--users",
                "1",
            ]
        )
        == 2
    )
    assert "--service-principals" in capsys.readouterr().err


def test_a_scenario_can_be_loaded_over_the_control_endpoint(emu, http):
    text = (
        (REPO / "emulator/scenarios/demo.yaml")
        .read_text()
        .replace("name: Contoso", "name: Contoso Ltd")
    )

    response = http.post(f"{emu.url}/_emulator/scenario", data=text.encode())
    assert response.status_code == 200, response.text
    names = [t["displayName"] for t in http.get(f"{emu.url}/_emulator/state").json()["tenants"]]
    assert names == ["Contoso Ltd", "Fabrikam", "Northwind", "Woodgrove"]

    broken = http.post(f"{emu.url}/_emulator/scenario", data=b"scenario: 1\ntenants: 5\n")
    assert broken.status_code == 400
    assert broken.json()["error"] == "request body: tenants: expected a list"
    assert http.post(f"{emu.url}/_emulator/scenario?name=demo").status_code == 200


def test_reset_restores_the_scenarios_grants(emu, http, contoso):
    grant = emu.state(CONTOSO)["oauth2PermissionGrants"][0]["id"]
    assert (
        http.delete(f"{emu.url}/v1.0/oauth2PermissionGrants/{grant}", headers=contoso).status_code
        == 204
    )
    before = http.get(f"{emu.url}/_emulator/state").json()["tenants"][0]["oauth2PermissionGrants"]

    assert http.post(f"{emu.url}/_emulator/reset").status_code == 200
    after = http.get(f"{emu.url}/_emulator/state").json()["tenants"][0]["oauth2PermissionGrants"]
    assert after == before + 1
    one = http.get(f"{emu.url}/_emulator/state", params={"tenant": CONTOSO}).json()
    assert grant in {g["id"] for g in one["oauth2PermissionGrants"]}


def test_serve_prints_the_ca_and_the_environment_for_the_portal(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator", "serve", "--port", "0", "--data-dir", str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        while len(lines) < 20 and not lines[-1:] == [""]:  # stops at the end or at EOF
            lines.append(process.stdout.readline())
            if lines[-1].startswith("export PORTAL_OPERATOR_TENANT_ID="):
                break
    finally:
        process.terminate()
        process.wait(timeout=10)
    output = "".join(lines)
    assert f"CA certificate: {tmp_path / 'ca.pem'}" in output
    for name in ("GRAPH_URL", "ENTRA_LOGIN_URL", "GRAPH_CA_BUNDLE", "PORTAL_CLIENT_ID"):
        assert f"export {name}=" in output
    assert "export GRAPH_URL=https://127.0.0.1:" in output


def test_a_scenario_with_a_short_token_lifetime_issues_short_tokens(data_dir):
    data = demo_data()
    data["settings"] = {"token_lifetime_seconds": 5}
    with run_emulator(data, data_dir=data_dir) as emu, session_for(emu) as http:
        response = http.post(
            f"{emu.url}/{CONTOSO}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": PORTAL_APP_ID,
                "client_secret": "emulator-portal-secret",
                "scope": "https://graph.microsoft.com/.default",
            },
        )
        assert response.json()["expires_in"] == 5


def test_generated_tenants_carry_evidence_without_changing_their_counts(data_dir, tmp_path):
    def make(audit_log):
        return generate(
            service_principals=60,
            app_role_assignments=200,
            delegated_grants=300,
            users=50,
            seed=3,
            audit_log=audit_log,
        )

    data = make(True)
    assert make(True) == data  # deterministic
    tenant = next(iter(State(parse(data, "generated", data_dir, tmp_path)).tenants.values()))

    assert tenant.premium
    held = [a for a in tenant.assignments.values() if a.data["principalType"] == "ServicePrincipal"]
    assert len(held) == 200 and len(tenant.grants) == 300
    assert "AuditLog.Read.All" in granted(tenant, PORTAL_APP_ID)  # one of the 200
    clients = len(tenant.service_principals) - 3  # not Graph, Intune, the portal
    assert len(tenant.sign_ins) >= clients * 3 // 5
    assert tenant.audit
    assert "AuditLog.Read.All" not in str(make(False)["tenants"][0]["apps"][0])


def test_a_realistic_generated_tenant_has_owners_and_credentials_to_watch(data_dir, tmp_path):
    data = generate(
        service_principals=80, app_role_assignments=100, delegated_grants=80, users=40,
        realistic=True, sso_assignments=10, groups=2,
    )  # fmt: skip
    state = State(parse(data, "generated", data_dir, tmp_path))
    tenant = next(iter(state.tenants.values()))
    now = state.clock.now()

    assert any(len(owners) > 1 for owners in tenant.owners.values())
    assert any(tenant.service_principals.get(o) for found in tenant.owners.values() for o in found)
    ends = [
        moment(c["endDateTime"]) - now
        for sp in tenant.service_principals
        for c in sp.data["passwordCredentials"] + sp.data["keyCredentials"]
    ]
    assert any(0 < end < 30 * 86400 for end in ends) and any(end < 0 for end in ends)


def moment(text):
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
