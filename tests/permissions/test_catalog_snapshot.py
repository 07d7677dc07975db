"""The catalog snapshot: built from the reference by a command, loaded with the starter."""

import json
import uuid
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from permissions.catalog import (
    SNAPSHOT_PATH,
    STARTER_CATALOG_PATH,
    CatalogImportError,
    catalog_import_reference,
    catalog_import_starter,
)
from permissions.models import (
    MICROSOFT_GRAPH_APP_ID,
    CatalogChange,
    Permission,
    PermissionApiCall,
)
from tests.factories import PermissionFactory

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reference"
GRAPH = MICROSOFT_GRAPH_APP_ID

pytestmark = pytest.mark.django_db


def build(tmp_path: Path, *extra: str) -> Path:
    output = tmp_path / "snapshot.json"
    call_command(
        "build_catalog_snapshot",
        "--permissions",
        str(FIXTURES / "permissions.json"),
        "--descriptions",
        str(FIXTURES / "permissions-descriptions.json"),
        "--provisioning",
        str(FIXTURES / "provisioningInfo.json"),
        "--classification",
        str(FIXTURES / "Classification_MsGraphAppRoles.json"),
        "--classification",
        str(FIXTURES / "Classification_MsGraphScopes.json"),
        "--credits",
        str(FIXTURES / "README.md"),
        "--output",
        str(output),
        *extra,
        stdout=StringIO(),
    )
    return output


@pytest.fixture
def snapshot(tmp_path) -> Path:
    return build(tmp_path)


def rows(path: Path) -> dict[tuple[str, str], list]:
    data = json.loads(path.read_text())
    (graph,) = data["resources"]
    assert graph["app_id"] == GRAPH
    return {(row[0], row[1]): row[2:] for row in graph["permissions"]}


# --- building ------------------------------------------------------------------------------


def test_the_snapshot_holds_the_facts_of_every_permission_and_no_text(snapshot):
    data = json.loads(snapshot.read_text())

    assert data["columns"] == ["kind", "value", "id", "admin_consent", "privilege_level", "tier"]
    assert rows(snapshot) == {
        ("application", "Calls.JoinGroupCallasGuest.All"): [
            "fd7ccf6b-3d28-418b-9701-cd10f5cd2fd4",
            True,
            3,
            "ManagementPlane",
        ],
        ("application", "Device.Read.All"): [
            "7438b122-aefc-4978-80ed-43db9fcc7715",
            True,
            3,
            "ControlPlane",
        ],
        ("application", "Group.Read.All"): [
            "5b567255-7703-4780-807c-7be8301ae99b",
            True,
            3,
            "UserAccess",
        ],
        ("delegated", "Group.Read.All"): [
            "5f8c59db-677d-491f-a6b8-5f174b11ec1d",
            True,
            3,
            "UserAccess",
        ],
        # The id comes from provisioningInfo.json: the descriptions file lacks this one.
        ("application", "Group.ReadBasic.All"): [
            "07d67222-3a10-4d3b-9ddc-b8aa43198a00",
            True,
            3,
            "UserAccess",
        ],
        # Its only public id belongs to another permission: better none than a false one.
        ("delegated", "Group.ReadBasic.All"): [None, True, 2, ""],
        ("application", "Organization.Read.All"): [
            "498476ce-e0fe-48b0-b801-37ba7e2685c6",
            True,
            3,
            "UserAccess",
        ],
        ("delegated", "Organization.Read.All"): [
            "4908d5b9-3fb2-4b1e-9336-1888b7937185",
            True,
            3,
            "",
        ],
        ("delegated", "User.Read"): [
            "e1fe6dd8-ba31-4d61-89e7-88639da4683d",
            False,
            1,
            "UserAccess",
        ],
        ("delegated", "offline_access"): [
            "7427e0e9-2fba-42fe-b0c0-848c9e6a8182",
            False,
            None,
            "UserAccess",
        ],
    }
    text = snapshot.read_text()
    assert "Fixture:" not in text  # the fixtures' descriptions all start so
    assert "Read groups" not in text  # nor their display names
    assert "ChannelMessage.Read.Group" not in text  # resource-specific consent: left out
    assert "Fixture.OnlyProvisioned.All" not in text  # in no file the importer reads


def test_the_snapshot_credits_both_sources_and_counts_its_rows(snapshot):
    data = json.loads(snapshot.read_text())

    microsoft, entraops = data["sources"]
    assert (
        microsoft["repository"] == "https://github.com/microsoftgraph/microsoft-graph-devx-content"
    )
    assert (microsoft["commit"], microsoft["date"], microsoft["licence"]) == (
        "0000aaa",
        "2026-01-02",
        "MIT",
    )
    assert entraops["repository"] == "https://github.com/Cloud-Architekt/AzurePrivilegedIAM"
    assert (entraops["commit"], entraops["licence"]) == ("1111bbb", "MIT")
    assert data["counts"] == {
        "permissions": 10,
        "application": 5,
        "delegated": 5,
        "ControlPlane": 1,
        "ManagementPlane": 1,
        "UserAccess": 6,
        "unclassified": 2,
    }


def test_the_snapshot_has_one_permission_per_line_and_builds_the_same_twice(tmp_path, snapshot):
    (tmp_path / "again").mkdir()
    again = build(tmp_path / "again")

    assert again.read_bytes() == snapshot.read_bytes()
    lines = snapshot.read_text().splitlines()
    assert sum(line.lstrip().startswith('["') for line in lines) == 10


def test_check_passes_on_a_current_snapshot_and_fails_on_a_stale_one(tmp_path, snapshot):
    build(tmp_path, "--check")  # the output written just now: up to date

    snapshot.write_text(snapshot.read_text().replace('"UserAccess"]', '"ControlPlane"]', 1))
    with pytest.raises(CommandError, match="is not what the reference gives"):
        build(tmp_path, "--check")


def test_a_readme_that_names_no_commit_is_refused(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("Reference files, from somewhere.\n")

    with pytest.raises(CommandError) as error:
        build(tmp_path, "--credits", str(readme))

    assert str(error.value).startswith(
        "README.md: names no commit of microsoftgraph/microsoft-graph-devx-content"
    )


def test_a_malformed_reference_file_is_refused_and_nothing_written(tmp_path):
    with pytest.raises(CommandError) as error:
        build(tmp_path, "--provisioning", str(FIXTURES / "permissions.json"))

    assert str(error.value) == "permissions.json: 'permissionDeployments' is missing"
    assert not (tmp_path / "snapshot.json").exists()


# --- loading -------------------------------------------------------------------------------


def test_the_starter_loads_the_snapshot_with_the_starter_files_texts(snapshot):
    catalog_import_starter(snapshot=snapshot)

    group = Permission.objects.get(
        resource__app_id=GRAPH, value="Group.Read.All", kind="application"
    )
    # Facts from the snapshot, our own description from the starter file.
    assert (group.graph_id, group.tier, group.privilege_level) == (
        uuid.UUID("5b567255-7703-4780-807c-7be8301ae99b"),
        "UserAccess",
        3,
    )
    assert (
        group.description
        == "Read all groups, their members and group content, with no user present."
    )
    # Only in the snapshot: facts and no text.
    calls = Permission.objects.get(value="Calls.JoinGroupCallasGuest.All")
    assert (calls.source, calls.display_name, calls.description) == ("starter", "", "")
    assert (calls.tier, calls.privilege_level) == ("ManagementPlane", 3)
    assert not PermissionApiCall.objects.exists()


def test_loading_the_snapshot_twice_changes_nothing(snapshot):
    catalog_import_starter(snapshot=snapshot)
    changes = CatalogChange.objects.count()

    assert not catalog_import_starter(snapshot=snapshot).changed_anything
    assert CatalogChange.objects.count() == changes


def test_a_newer_snapshot_brings_its_facts_to_the_starters_rows(tmp_path, snapshot):
    catalog_import_starter(snapshot=snapshot)
    newer = tmp_path / "newer.json"
    newer.write_text(
        snapshot.read_text().replace(
            '"Device.Read.All", "7438b122-aefc-4978-80ed-43db9fcc7715", true, 3, "ControlPlane"',
            '"Device.Read.All", "7438b122-aefc-4978-80ed-43db9fcc7715", true, 4, "ManagementPlane"',
        )
    )

    result = catalog_import_starter(snapshot=newer)

    device = Permission.objects.get(value="Device.Read.All")
    assert (device.tier, device.privilege_level) == ("ManagementPlane", 4)
    assert result.permissions_changed == 1
    change = CatalogChange.objects.get(action="changed", value="Device.Read.All")
    assert change.details == {
        "privilege_level": [3, 4],
        "tier": ["ControlPlane", "ManagementPlane"],
    }


def test_the_snapshot_leaves_reference_rows_alone(snapshot):
    catalog_import_reference(
        permissions=str(FIXTURES / "permissions-v2.json"),
        descriptions=str(FIXTURES / "permissions-descriptions-v2.json"),
    )
    before = list(Permission.objects.order_by("pk").values())

    catalog_import_starter(snapshot=snapshot)

    reference_rows = Permission.objects.filter(source="reference").order_by("pk").values()
    assert list(reference_rows) == [row for row in before if row["source"] == "reference"]


def test_the_snapshot_classifies_a_graph_row_nothing_has_classified(snapshot):
    # A tenant's sync read it from Graph before any catalog was loaded: no level, no tier.
    row = PermissionFactory(
        resource__app_id=GRAPH,
        value="Device.Read.All",
        graph_id=uuid.UUID("7438b122-aefc-4978-80ed-43db9fcc7715"),
        display_name="Read all devices (from Graph)",
        admin_consent_required=True,
        privilege_level=None,
        tier="",
        source=Permission.Source.GRAPH,
    )

    catalog_import_starter(snapshot=snapshot)

    row.refresh_from_db()
    assert (row.tier, row.privilege_level, row.source) == ("ControlPlane", 3, "graph")
    assert row.display_name == "Read all devices (from Graph)"
    change = CatalogChange.objects.get(value="Device.Read.All")
    assert change.details["tier"] == ["", "ControlPlane"]


def test_a_malformed_snapshot_is_refused_and_nothing_loaded(tmp_path, snapshot):
    broken = tmp_path / "broken.json"
    broken.write_text(snapshot.read_text().replace('"ControlPlane"]', '"Tier0"]'))

    with pytest.raises(CatalogImportError) as error:
        catalog_import_starter(snapshot=broken)

    assert str(error.value) == (
        "broken.json: resources[0].permissions[1] tier 'Tier0' is not a known tier"
    )
    assert not Permission.objects.exists()


# --- the shipped snapshot -----------------------------------------------------------------


def test_the_shipped_snapshot_classifies_every_graph_permission_offline():
    catalog_import_starter()

    for value in ("RoleManagement.ReadWrite.Directory", "Directory.ReadWrite.All"):
        for kind in ("application", "delegated"):
            permission = Permission.objects.get(resource__app_id=GRAPH, value=value, kind=kind)
            assert (permission.tier, permission.privilege_level) == ("ControlPlane", 4)
            assert permission.admin_consent_required is True
    mail = Permission.objects.get(value="Mail.Read", kind="application")
    assert (mail.tier, mail.privilege_level) == ("ManagementPlane", 3)
    counts = json.loads(SNAPSHOT_PATH.read_text())["counts"]
    graph = Permission.objects.filter(resource__app_id=GRAPH)
    assert graph.count() == counts["permissions"] > 1400
    assert graph.exclude(tier="").count() == counts["permissions"] - counts["unclassified"]


def test_the_starter_files_facts_agree_with_the_shipped_snapshot():
    snapshot = rows(SNAPSHOT_PATH)
    starter = yaml.safe_load(STARTER_CATALOG_PATH.read_text())
    (graph,) = [r for r in starter["resources"] if r["app_id"] == GRAPH]

    disagreements = {}
    for entry in graph["permissions"]:
        graph_id, consent, level, tier = snapshot[(entry["kind"], entry["value"])]
        said = {"id": graph_id, "admin_consent": consent, "privilege_level": level, "tier": tier}
        differ = {k: (entry[k], v) for k, v in said.items() if k in entry and entry[k] != v}
        if differ:
            disagreements[entry["value"], entry["kind"]] = differ
    assert disagreements == {}


def test_the_shipped_snapshot_carries_no_microsoft_text():
    data = json.loads(SNAPSHOT_PATH.read_text())

    texts = {
        value
        for row in data["resources"][0]["permissions"]
        for value in row
        if isinstance(value, str) and " " in value
    }
    assert texts == set()
    assert {source["licence"] for source in data["sources"]} == {"MIT"}
