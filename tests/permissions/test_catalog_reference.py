"""Importing Microsoft's permissions reference and EntraOps' tiers (small fixtures)."""

import json
import uuid
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from permissions.catalog import catalog_import_reference
from permissions.models import CatalogChange, Permission, PermissionApiCall
from tests.factories import PermissionFactory

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reference"
PERMISSIONS = str(FIXTURES / "permissions.json")
DESCRIPTIONS = str(FIXTURES / "permissions-descriptions.json")
CLASSIFICATIONS = [
    str(FIXTURES / "Classification_MsGraphAppRoles.json"),
    str(FIXTURES / "Classification_MsGraphScopes.json"),
]

pytestmark = pytest.mark.django_db


def import_fixtures(**overrides):
    arguments = {
        "permissions": PERMISSIONS,
        "descriptions": DESCRIPTIONS,
        "classifications": CLASSIFICATIONS,
    }
    return catalog_import_reference(**{**arguments, **overrides})


def permission(value, kind="application"):
    return Permission.objects.get(value=value, kind=kind)


def calls(value, kind="application"):
    return {
        (c.scheme, c.method, c.path): c.least_privileged
        for c in PermissionApiCall.objects.filter(permission=permission(value, kind))
    }


def write_json(path, data):
    path.write_text(json.dumps(data))
    return str(path)


def test_the_first_import_adds_every_oauth2_permission_and_skips_rsc_ones():
    result = import_fixtures()

    assert result.permissions_added == 10
    assert (result.permissions_changed, result.permissions_removed) == (0, 0)
    assert result.api_calls_added == 22
    assert result.tiers_set == 8
    assert result.skipped == 1
    assert not Permission.objects.filter(value="ChannelMessage.Read.Group").exists()
    assert CatalogChange.objects.filter(action="added").count() == 10


def test_each_scheme_becomes_a_permission_of_its_kind_with_ids_and_texts():
    import_fixtures()

    application = permission("Group.Read.All")
    assert application.graph_id == uuid.UUID("5b567255-7703-4780-807c-7be8301ae99b")
    assert application.display_name == "Read groups"
    assert application.description == "Fixture: reads groups without a user."
    assert application.admin_consent_required is True
    assert application.privilege_level == 3
    assert application.source == "reference"
    delegated = permission("Group.Read.All", "delegated")
    assert delegated.graph_id == uuid.UUID("5f8c59db-677d-491f-a6b8-5f174b11ec1d")
    assert delegated.description == "Fixture: reads groups for the user."


def test_a_delegated_permission_takes_the_work_scheme_facts_and_both_schemes_calls():
    import_fixtures()

    user_read = permission("User.Read", "delegated")
    assert user_read.privilege_level == 1
    assert user_read.admin_consent_required is False
    assert calls("User.Read", "delegated") == {
        ("DelegatedWork", "GET", "/me"): True,
        ("DelegatedPersonal", "GET", "/me"): True,
        ("DelegatedPersonal", "GET", "/me/photo"): True,
    }


def test_a_permission_only_the_descriptions_file_lists_is_added_without_calls():
    import_fixtures()

    offline = permission("offline_access", "delegated")
    assert offline.graph_id == uuid.UUID("7427e0e9-2fba-42fe-b0c0-848c9e6a8182")
    assert offline.display_name == "Keep access"
    assert offline.tier == "UserAccess"
    assert not offline.api_calls.exists()


def test_paths_are_lower_cased():
    import_fixtures()

    assert ("Application", "GET", "/groups/{id}/cloudlicensing/assignments") in calls(
        "Group.Read.All"
    )


def test_least_privileged_marks_follow_the_schemes_the_reference_names():
    import_fixtures()

    assert calls("Group.ReadBasic.All")[("Application", "GET", "/groups")] is True
    assert calls("Group.ReadBasic.All", "delegated")[("DelegatedWork", "GET", "/groups")] is True
    assert calls("Group.Read.All")[("Application", "GET", "/groups")] is False
    # "least=Application;AlsoRequires=..." marks only the application scheme.
    branding = ("GET", "/organization/{id}/branding")
    assert calls("Organization.Read.All")[("Application", *branding)] is True
    assert calls("Organization.Read.All", "delegated")[("DelegatedWork", *branding)] is False


def test_tiers_match_by_id_first_and_by_value_where_the_catalog_has_no_id():
    import_fixtures()

    # The classification already uses the new name; the id still finds the old one.
    assert permission("Calls.JoinGroupCallasGuest.All").tier == "ManagementPlane"
    # No id for this app role in the descriptions: matched by value.
    assert permission("Group.ReadBasic.All").graph_id is None
    assert permission("Group.ReadBasic.All").tier == "UserAccess"
    assert permission("Device.Read.All").tier == "ControlPlane"
    assert permission("Group.Read.All", "delegated").tier == "UserAccess"
    assert permission("Organization.Read.All", "delegated").tier == ""


def test_a_permission_the_classification_no_longer_lists_loses_its_tier(tmp_path):
    import_fixtures()
    app_roles = json.loads(Path(CLASSIFICATIONS[0]).read_text())
    without_device = [e for e in app_roles if e["AppRoleDisplayName"] != "Device.Read.All"]
    before = permission("Device.Read.All").updated_at

    result = catalog_import_reference(
        classifications=[write_json(tmp_path / "roles.json", without_device)]
    )

    assert permission("Device.Read.All").tier == ""
    assert permission("Device.Read.All").updated_at > before
    assert result.tiers_set == 1
    change = CatalogChange.objects.get(action="changed")
    assert change.details == {"tier": ["ControlPlane", ""]}


def test_a_second_run_with_the_same_files_writes_nothing():
    import_fixtures()
    stamps = dict(Permission.objects.values_list("pk", "updated_at"))
    changes = CatalogChange.objects.count()

    with CaptureQueriesContext(connection) as queries:
        result = import_fixtures()

    writes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    assert writes == []
    assert not result.changed_anything
    assert result.permissions_unchanged == 10
    assert dict(Permission.objects.values_list("pk", "updated_at")) == stamps
    assert CatalogChange.objects.count() == changes


def test_new_files_record_exactly_the_added_the_renamed_and_the_removed_permission():
    import_fixtures(classifications=[])
    renamed_pk = permission("Calls.JoinGroupCallasGuest.All").pk
    first_run = set(CatalogChange.objects.values_list("pk", flat=True))

    result = import_fixtures(
        permissions=str(FIXTURES / "permissions-v2.json"),
        descriptions=str(FIXTURES / "permissions-descriptions-v2.json"),
        classifications=[],
    )

    new = CatalogChange.objects.exclude(pk__in=first_run)
    assert sorted((c.action, c.value, c.details) for c in new) == [
        ("added", "GroupMember.Read.All", {}),
        (
            "changed",
            "Calls.JoinGroupCallAsGuest.All",
            {"value": ["Calls.JoinGroupCallasGuest.All", "Calls.JoinGroupCallAsGuest.All"]},
        ),
        ("removed", "Device.Read.All", {}),
    ]
    assert (result.permissions_added, result.permissions_changed) == (1, 1)
    assert result.permissions_removed == 1
    assert permission("Calls.JoinGroupCallAsGuest.All").pk == renamed_pk
    removed = permission("Device.Read.All")
    assert removed.removed_at is not None
    assert removed.api_calls.exists()


def test_a_removed_permission_listed_again_is_added_back():
    import_fixtures(classifications=[])
    import_fixtures(
        permissions=str(FIXTURES / "permissions-v2.json"),
        descriptions=str(FIXTURES / "permissions-descriptions-v2.json"),
        classifications=[],
    )

    result = import_fixtures(classifications=[])

    assert permission("Device.Read.All").removed_at is None
    assert CatalogChange.objects.filter(value="Device.Read.All").first().action == "added"
    assert result.permissions_removed == 1  # GroupMember.Read.All, gone again


def test_only_a_run_reading_both_microsoft_files_removes_permissions():
    import_fixtures()

    catalog_import_reference(permissions=str(FIXTURES / "permissions-v2.json"))

    # offline_access (descriptions only) and Device.Read.All are not in this file.
    assert not Permission.objects.filter(removed_at__isnull=False).exists()


def test_api_calls_are_diffed_so_unchanged_calls_keep_their_rows(tmp_path):
    import_fixtures()
    kept = PermissionApiCall.objects.get(
        permission=permission("Group.Read.All"), method="GET", path="/groups"
    ).pk
    data = json.loads(Path(PERMISSIONS).read_text())
    group_paths = data["permissions"]["Group.Read.All"]["pathSets"][0]["paths"]
    del group_paths["/groups/{id}/members"]
    group_paths["/groups/{id}/owners"] = ""
    data["permissions"]["Group.ReadBasic.All"]["pathSets"][0]["paths"]["/groups"] = ""

    result = catalog_import_reference(permissions=write_json(tmp_path / "p.json", data))

    assert (result.api_calls_added, result.api_calls_removed) == (2, 2)
    assert result.api_calls_remarked == 2
    assert result.permissions_changed == 0
    assert ("Application", "GET", "/groups/{id}/owners") in calls("Group.Read.All")
    assert ("Application", "GET", "/groups/{id}/members") not in calls("Group.Read.All")
    assert calls("Group.ReadBasic.All")[("Application", "GET", "/groups")] is False
    assert PermissionApiCall.objects.filter(pk=kept).exists()


def test_the_descriptions_file_alone_fills_gaps_but_keeps_the_permissions_file_texts(tmp_path):
    catalog_import_reference(permissions=PERMISSIONS)
    Permission.objects.filter(value="Device.Read.All").update(display_name="")
    data = json.loads(Path(DESCRIPTIONS).read_text())
    for entry in data["applicationScopesList"]:
        entry["adminConsentDisplayName"] = f"Other text for {entry['value']}"

    catalog_import_reference(descriptions=write_json(tmp_path / "d.json", data))

    group_read = permission("Group.Read.All")
    assert group_read.display_name == "Read groups"
    assert group_read.graph_id == uuid.UUID("5b567255-7703-4780-807c-7be8301ae99b")
    assert permission("Device.Read.All").display_name == "Other text for Device.Read.All"


def test_the_reference_keeps_what_graph_supplied_on_graph_rows():
    PermissionFactory(
        value="Group.Read.All",
        graph_id=uuid.UUID("5b567255-7703-4780-807c-7be8301ae99b"),
        display_name="As Graph names it",
        privilege_level=None,
        source=Permission.Source.GRAPH,
    )

    import_fixtures()

    row = permission("Group.Read.All")
    assert row.display_name == "As Graph names it"
    assert row.source == "graph"
    assert row.privilege_level == 3
    assert row.tier == "UserAccess"
    assert ("Application", "GET", "/groups") in calls("Group.Read.All")
