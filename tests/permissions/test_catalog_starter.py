"""The starter file (starter_catalog.yaml) and how it meets richer sources.

These load the file without the snapshot; test_catalog_snapshot.py covers the two together.
"""

import uuid
from pathlib import Path

import pytest

from permissions.catalog import CatalogImportError, catalog_import_reference, catalog_import_starter
from permissions.models import (
    MICROSOFT_GRAPH_APP_ID,
    MICROSOFT_INTUNE_APP_ID,
    CatalogChange,
    Permission,
    PermissionApiCall,
)
from tests.factories import PermissionFactory

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reference"

pytestmark = pytest.mark.django_db

EXPECTED = {
    ("Device.Read.All", "application"),
    ("Group.Read.All", "application"),
    ("Group.Read.All", "delegated"),
    ("Organization.Read.All", "application"),
    ("Presence.Read.All", "application"),
    ("TeamworkDevice.ReadWrite.All", "application"),
    ("CallRecords.Read.All", "application"),
    ("User.Read.All", "application"),
    ("User.Read.All", "delegated"),
    ("Place.Read.All", "application"),
    ("Calendars.ReadBasic.All", "application"),
    ("Calendars.Read", "application"),
    ("Calendars.Read", "delegated"),
    ("Calendars.ReadWrite", "application"),
    ("GroupMember.Read.All", "application"),
    ("offline_access", "delegated"),
    ("openid", "delegated"),
    ("profile", "delegated"),
    ("email", "delegated"),
    ("User.Read", "delegated"),
    ("User.ReadBasic.All", "delegated"),
    ("DeviceManagementApps.Read.All", "application"),
    ("Application.Read.All", "application"),
    ("Directory.Read.All", "application"),
    ("DelegatedPermissionGrant.Read.All", "application"),
    ("AppRoleAssignment.ReadWrite.All", "application"),
    ("DelegatedPermissionGrant.ReadWrite.All", "application"),
    ("Group.ReadBasic.All", "application"),
    ("TeamworkDevice.Read.All", "application"),
}


def load_starter_file():
    return catalog_import_starter(snapshot=None)


def import_reference_fixtures():
    return catalog_import_reference(
        permissions=str(FIXTURES / "permissions.json"),
        descriptions=str(FIXTURES / "permissions-descriptions.json"),
    )


def test_the_starter_adds_each_listed_permission_once_with_a_one_line_description():
    result = load_starter_file()

    graph = Permission.objects.filter(resource__app_id=MICROSOFT_GRAPH_APP_ID)
    assert set(graph.values_list("value", "kind")) == EXPECTED
    assert result.permissions_added == len(EXPECTED) + 1
    assert set(Permission.objects.values_list("source", flat=True)) == {"starter"}
    assert all(
        d and "\n" not in d for d in Permission.objects.values_list("description", flat=True)
    )
    assert not PermissionApiCall.objects.exists()


def test_the_starter_knows_intunes_update_device_health_role():
    load_starter_file()

    role = Permission.objects.get(value="update_device_health")
    assert role.resource.app_id == uuid.UUID(MICROSOFT_INTUNE_APP_ID)
    assert role.resource.display_name == "Microsoft Intune API"
    assert role.kind == "application"
    assert role.graph_id == uuid.UUID("a5438881-186a-48f0-bc41-a93ae8a195fe")


def test_the_starter_carries_microsofts_ids_and_entraops_tiers():
    load_starter_file()

    group_read = Permission.objects.get(value="Group.Read.All", kind="application")
    assert group_read.graph_id == uuid.UUID("5b567255-7703-4780-807c-7be8301ae99b")
    assert group_read.tier == "UserAccess"
    assert Permission.objects.get(value="AppRoleAssignment.ReadWrite.All").tier == "ControlPlane"


def test_loading_the_starter_twice_changes_nothing():
    load_starter_file()
    changes = CatalogChange.objects.count()

    result = load_starter_file()

    assert not result.changed_anything
    assert CatalogChange.objects.count() == changes


def test_a_reference_import_upgrades_starter_rows_to_reference():
    load_starter_file()

    import_reference_fixtures()

    group_read = Permission.objects.get(value="Group.Read.All", kind="application")
    assert group_read.source == "reference"
    assert group_read.description == "Fixture: reads groups without a user."
    change = CatalogChange.objects.get(action="changed", value="Group.Read.All", kind="application")
    assert change.details["source"] == ["starter", "reference"]
    # The reference does not describe Intune: its row stays as the starter left it.
    assert Permission.objects.get(value="update_device_health").source == "starter"


def test_reloading_the_starter_does_not_clobber_reference_data():
    load_starter_file()
    import_reference_fixtures()
    changes = CatalogChange.objects.count()

    result = load_starter_file()

    group_read = Permission.objects.get(value="Group.Read.All", kind="application")
    assert group_read.source == "reference"
    assert group_read.description == "Fixture: reads groups without a user."
    assert not result.changed_anything
    assert CatalogChange.objects.count() == changes


def test_the_starter_fills_gaps_in_its_own_rows_and_leaves_other_rows_alone():
    own = PermissionFactory(
        value="Device.Read.All", description="", graph_id=None, privilege_level=None
    )
    # Graph left the tier empty; the starter has one, but this row is not the starter's.
    graph_row = PermissionFactory(
        value="Directory.Read.All", graph_id=None, tier="", source=Permission.Source.GRAPH
    )

    load_starter_file()

    own.refresh_from_db()
    assert own.graph_id == uuid.UUID("7438b122-aefc-4978-80ed-43db9fcc7715")
    assert own.description == "Read every device object registered in the directory."
    assert own.privilege_level == 3
    graph_row.refresh_from_db()
    assert (graph_row.graph_id, graph_row.tier) == (None, "")
    assert not CatalogChange.objects.filter(value="Directory.Read.All").exists()


def test_the_starter_never_removes_anything():
    unlisted = PermissionFactory(value="Example.Read.All")

    load_starter_file()

    unlisted.refresh_from_db()
    assert unlisted.removed_at is None


def test_a_starter_file_with_an_unknown_key_is_refused(tmp_path):
    starter = tmp_path / "starter.yaml"
    starter.write_text(
        "resources:\n"
        "  - app_id: 00000003-0000-0000-c000-000000000000\n"
        "    name: Microsoft Graph\n"
        "    permissions:\n"
        "      - {value: User.Read, kind: delegated, description: Signs in., colour: red}\n"
    )

    with pytest.raises(CatalogImportError) as error:
        catalog_import_starter(path=starter, snapshot=None)

    assert (
        str(error.value) == "starter.yaml: resources[0].permissions[0] has an unknown key 'colour'"
    )
    assert not Permission.objects.exists()
