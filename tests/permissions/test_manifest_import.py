"""Importing manifests into Application/Feature/Requirement rows, and exporting them."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from permissions.manifests import (
    BUNDLED_MANIFESTS_DIR,
    ImportOutcome,
    ManifestSpec,
    manifest_dump,
    manifest_export,
    manifest_import,
    manifest_parse,
    manifest_read,
)
from permissions.models import (
    MICROSOFT_INTUNE_APP_ID,
    Application,
    Feature,
    PermissionKind,
    Requirement,
)
from tests.factories import ApplicationFactory, PermissionFactory, ResourceFactory
from tests.ids import CONNECT_247
from tests.permissions.manifest_cases import EXAMPLE_PATH

pytestmark = pytest.mark.django_db

EXAMPLE = EXAMPLE_PATH
EXAMPLE_CHANGED = EXAMPLE_PATH.with_name("example-changed.yaml")
APP_ID = uuid.UUID(CONNECT_247)
BUNDLED = sorted(BUNDLED_MANIFESTS_DIR.glob("*.yaml"))


def rows() -> list[tuple]:
    """Every manifest row with every column but timestamps, to compare before and after."""
    return [
        *Application.objects.values_list("pk", "app_id", "name", "publisher", "docs_url"),
        *Feature.objects.order_by("pk").values_list(
            "pk", "application_id", "key", "name", "description", "default_enabled", "position"
        ),
        *Requirement.objects.order_by("pk").values_list(
            "pk",
            "feature_id",
            "resource_app_id",
            "kind",
            "permission_value",
            "reason",
            "api_calls",
            "position",
        ),
    ]


def writes(queries: CaptureQueriesContext) -> list[str]:
    return [
        query["sql"]
        for query in queries.captured_queries
        if query["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]


def test_it_creates_the_application_features_and_requirements():
    result = manifest_import(spec=manifest_read(path=EXAMPLE))

    assert result.outcome == ImportOutcome.CREATED
    assert (result.features_created, result.requirements_created) == (3, 4)
    application = Application.objects.get(app_id=APP_ID)
    assert application.has_manifest
    assert (application.name, application.publisher) == ("247connect", "247connect")
    features = list(application.features.order_by("position"))
    assert [(f.key, f.default_enabled) for f in features] == [
        ("device-assignment", True),
        ("organisation-details", False),
        ("intune-health", True),
    ]
    device_read = Requirement.objects.get(permission_value="Device.Read.All")
    assert device_read.feature == features[0]
    assert device_read.kind == PermissionKind.APPLICATION
    assert device_read.api_calls == ["GET /devices", "GET /groups"]
    intune = Requirement.objects.get(permission_value="update_device_health")
    assert intune.resource_app_id == uuid.UUID(MICROSOFT_INTUNE_APP_ID)


def test_importing_the_same_manifest_again_writes_nothing():
    spec = manifest_read(path=EXAMPLE)
    manifest_import(spec=spec)
    before = rows()
    imported_at = Application.objects.get(app_id=APP_ID).manifest_imported_at

    with CaptureQueriesContext(connection) as queries:
        result = manifest_import(spec=spec)

    assert result.outcome == ImportOutcome.UNCHANGED
    assert writes(queries) == []
    assert rows() == before
    assert Application.objects.get(app_id=APP_ID).manifest_imported_at == imported_at


def test_a_changed_manifest_updates_adds_and_deletes_in_place():
    manifest_import(spec=manifest_read(path=EXAMPLE))
    kept_feature = Feature.objects.get(key="device-assignment").pk
    kept_requirement = Requirement.objects.get(permission_value="Device.Read.All").pk
    imported_at = Application.objects.get(app_id=APP_ID).manifest_imported_at
    changed = manifest_read(path=EXAMPLE_CHANGED)

    result = manifest_import(spec=changed)

    assert result.outcome == ImportOutcome.UPDATED
    assert (result.features_created, result.features_updated, result.features_deleted) == (1, 2, 1)
    assert (
        result.requirements_created,
        result.requirements_updated,
        result.requirements_deleted,
    ) == (2, 1, 2)
    application = Application.objects.get(app_id=APP_ID)
    # The rows now say exactly what the changed manifest says...
    assert manifest_export(application=application) == manifest_dump(spec=changed)
    # ...and what was kept was updated, not deleted and created again.
    assert Feature.objects.get(key="device-assignment").pk == kept_feature
    assert Requirement.objects.get(permission_value="Device.Read.All").pk == kept_requirement
    assert not Feature.objects.filter(key="intune-health").exists()
    assert not Requirement.objects.filter(permission_value="Group.Read.All").exists()
    assert application.publisher == ""
    assert application.manifest_imported_at > imported_at


def test_a_change_to_the_application_alone_is_an_update():
    manifest_import(spec=manifest_read(path=EXAMPLE))
    text = EXAMPLE.read_text().replace("  name: 247connect", "  name: 247connect Cloud")

    result = manifest_import(spec=manifest_parse(data=text.encode(), source="x.yaml"))

    assert result.outcome == ImportOutcome.UPDATED
    assert Application.objects.get(app_id=APP_ID).name == "247connect Cloud"


def test_an_application_known_from_grants_gets_its_manifest():
    ApplicationFactory(app_id=APP_ID, name="247connect", publisher="247connect")

    result = manifest_import(spec=manifest_read(path=EXAMPLE))

    assert result.outcome == ImportOutcome.UPDATED
    assert Application.objects.get(app_id=APP_ID).has_manifest


def test_an_application_whose_manifest_lists_no_features_still_has_one():
    ApplicationFactory(app_id=APP_ID, name="247connect", publisher="")
    spec = ManifestSpec(app_id=APP_ID, name="247connect", features=())

    assert manifest_import(spec=spec).outcome == ImportOutcome.UPDATED
    assert manifest_import(spec=spec).outcome == ImportOutcome.UNCHANGED
    assert Application.objects.get(app_id=APP_ID).has_manifest


def test_a_failure_half_way_leaves_nothing_behind(monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(Requirement.objects, "bulk_create", fail)

    with pytest.raises(RuntimeError):
        manifest_import(spec=manifest_read(path=EXAMPLE))

    assert rows() == []


def test_a_permission_the_catalog_does_not_know_is_kept_with_a_warning():
    PermissionFactory(value="Device.Read.All", kind=PermissionKind.APPLICATION)
    # Known under a different spelling: Entra compares values case-insensitively.
    PermissionFactory(value="group.read.all", kind=PermissionKind.APPLICATION)
    # Known, but as a delegated permission: does not count.
    PermissionFactory(value="Organization.Read.All", kind=PermissionKind.DELEGATED)
    intune = ResourceFactory(app_id=MICROSOFT_INTUNE_APP_ID, display_name="Microsoft Intune API")
    PermissionFactory(resource=intune, value="update_device_health")

    result = manifest_import(spec=manifest_read(path=EXAMPLE))

    assert result.warnings == (
        "Organization.Read.All (application) is not in the catalog yet; it is kept and will "
        "match once the catalog knows it",
    )
    assert Requirement.objects.filter(permission_value="Organization.Read.All").exists()


def test_a_permission_of_another_resource_is_named_with_its_resource():
    result = manifest_import(spec=manifest_read(path=EXAMPLE))

    assert (
        "update_device_health (application, resource c161e42e-d4df-4a3d-9b42-e7a3c31f59d4) "
        "is not in the catalog yet; it is kept and will match once the catalog knows it"
    ) in result.warnings
    assert len(result.warnings) == 4


def test_the_export_leaves_out_defaults_and_keeps_the_documented_order():
    manifest_import(spec=manifest_read(path=EXAMPLE))

    exported = manifest_export(application=Application.objects.get(app_id=APP_ID))

    assert exported.startswith(
        "manifest: 1\n"
        "application:\n"
        "  app_id: 8708fc71-9f71-4ad5-8445-a0746692feeb\n"
        "  name: 247connect\n"
        "  publisher: 247connect\n"
        "features:\n"
        "  - key: device-assignment\n"
        "    name: Device assignment\n"
        "    description: Puts devices into device groups.\n"
        "    permissions:\n"
        "      - permission: Device.Read.All\n"
        "        type: application\n"
        "        reason: Reads devices to place them.\n"
        "        api_calls:\n"
        "          - GET /devices\n"
        "          - GET /groups\n"
        "      - permission: Group.Read.All\n"
        "        type: application\n"
        "        reason: Reads the device groups.\n"
        "  - key: organisation-details\n"
        "    name: Organisation details\n"
        "    description: Shows the organisation's name.\n"
        "    default_enabled: false\n"
        "    permissions:\n"
        "      - permission: Organization.Read.All\n"
        "        type: application\n"
        "        reason: Reads the organisation profile.\n"
    )
    assert "        resource: c161e42e-d4df-4a3d-9b42-e7a3c31f59d4\n" in exported


def test_a_multi_line_description_is_exported_as_a_block_and_read_back_the_same():
    text = EXAMPLE.read_text().replace(
        "    description: Puts devices into device groups.\n",
        "    description: |\n      Puts devices into device groups.\n      Every hour.\n",
    )
    manifest_import(spec=manifest_parse(data=text.encode(), source="x.yaml"))

    exported = manifest_export(application=Application.objects.get(app_id=APP_ID))

    assert "    description: |-\n      Puts devices into device groups.\n      Every hour.\n" in (
        exported
    )
    assert manifest_parse(data=exported.encode(), source="x.yaml") == manifest_parse(
        data=text.encode(), source="x.yaml"
    )


@pytest.mark.parametrize("path", BUNDLED, ids=lambda path: path.name)
def test_every_bundled_manifest_imports_cleanly(path):
    spec = manifest_read(path=path)

    result = manifest_import(spec=spec)

    assert result.outcome == ImportOutcome.CREATED
    assert result.features_created == len(spec.features) > 0
    assert Requirement.objects.filter(feature__application__app_id=spec.app_id).count() == sum(
        len(feature.requirements) for feature in spec.features
    )


@pytest.mark.parametrize("path", BUNDLED, ids=lambda path: path.name)
def test_every_bundled_manifest_survives_export_import_export(path):
    spec = manifest_read(path=path)
    manifest_import(spec=spec)
    application = Application.objects.get(app_id=spec.app_id)
    exported = manifest_export(application=application)
    before = rows()

    again = manifest_parse(data=exported.encode(), source=f"exported {path.name}")
    result = manifest_import(spec=again)

    assert again == spec
    assert result.outcome == ImportOutcome.UNCHANGED
    assert rows() == before
    assert manifest_export(application=application) == exported


def test_the_bundled_manifests_are_the_ones_the_design_names():
    assert [path.name for path in BUNDLED] == [
        "247connect.yaml",
        "askcody.yaml",
        "lookout-mes-console.yaml",
        "permission-portal.yaml",
        "teams-rooms-monitoring.yaml",
    ]
    app_ids = [manifest_read(path=path).app_id for path in BUNDLED]
    assert len(set(app_ids)) == len(app_ids)


def test_the_bundled_directory_holds_only_yaml_files():
    # `make demo-data` imports permissions/manifests/*.yaml, and an __init__.py here would
    # turn the directory into a package that hides the permissions/manifests.py module.
    assert {path.suffix for path in BUNDLED_MANIFESTS_DIR.iterdir()} == {".yaml"}
