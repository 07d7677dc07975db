"""The test suite's own rules: the cast and the ids are the demo scenario's, and test
modules share code only through helper modules, never by importing one another."""

import ast
from pathlib import Path

import pytest
import yaml

from emulator.scenario import SCENARIOS_DIR
from tests import ids

TESTS = Path(__file__).resolve().parent
DEMO = yaml.safe_load((SCENARIOS_DIR / "demo.yaml").read_text())


def demo_tenant(name: str) -> dict:
    return next(tenant for tenant in DEMO["tenants"] if tenant["name"] == name)


def test_the_tenant_and_application_ids_are_the_demo_scenarios():
    assert [ids.CONTOSO, ids.FABRIKAM, ids.NORTHWIND] == [
        demo_tenant(name)["id"] for name in ("Contoso", "Fabrikam", "Northwind")
    ]
    assert (DEMO["portal"]["app_id"], DEMO["portal"]["operator_tenant_id"]) == (
        ids.PORTAL_APP,
        ids.CONTOSO,
    )
    apps = {app["name"]: app["app_id"] for app in DEMO["applications"]}
    assert {
        "247connect": ids.CONNECT_247,
        "Teams Rooms monitoring platform": ids.ROOMS,
        "AskCody": ids.ASKCODY,
        "Lookout MES Console": ids.LOOKOUT,
        "Legacy Reporting Tool": ids.LEGACY,
    }.items() <= apps.items()
    graph = next(r for r in DEMO["resources"] if r["name"] == "Microsoft Graph")
    roles = {role["value"]: role["id"] for role in graph["app_roles"]}
    assert (graph["app_id"], roles["Device.Read.All"], roles["Mail.Read"]) == (
        ids.GRAPH,
        ids.DEVICE_READ_ALL,
        ids.MAIL_READ,
    )


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["alice", "bob", "charlie", "erin", "oscar"])
def test_the_cast_are_the_demos_people_with_their_roles(name, request):
    user = request.getfixturevalue(name)
    tenant = next(t for t in DEMO["tenants"] if t["id"] == user.entra_tenant_id)
    person = next(u for u in tenant["users"] if u["upn"] == user.username)

    assert (user.email, user.get_full_name()) == (person["upn"], person["name"])
    assert user.entra_roles == person.get("roles", [])


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_test_module_imports_another_or_a_conftest():
    offenders = {
        str(path.relative_to(TESTS)): sorted(
            name
            for name in imported_modules(path)
            if name.startswith("tests.")
            and name.rsplit(".", 1)[-1].startswith(("test_", "conftest"))
        )
        for path in TESTS.rglob("*.py")
    }

    assert {path: names for path, names in offenders.items() if names} == {}
