"""Drafting a manifest from what an application holds in a tenant: a valid manifest with
plain placeholders, one feature per family of permissions, API calls from the catalog,
hostile names kept as data; and who may download it."""

import uuid

import pytest
import yaml
from django.test import Client
from django.urls import reverse

from permissions.drafts import DRAFT_API_CALLS
from permissions.manifests import (
    BUNDLED_MANIFESTS_DIR,
    ImportOutcome,
    manifest_import,
    manifest_parse,
    manifest_read,
)
from permissions.models import MICROSOFT_GRAPH_APP_ID as GRAPH
from permissions.models import MICROSOFT_INTUNE_APP_ID as INTUNE
from permissions.models import PermissionApiCall, PermissionKind
from tenants.models import ServicePrincipal, SyncRun, Tenant
from tenants.selectors import application_in_tenant
from tests.factories import (
    GrantFactory,
    PermissionApiCallFactory,
    PermissionFactory,
    ResourceFactory,
    ServicePrincipalFactory,
    SyncRunFactory,
    TenantFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

APPLICATION = PermissionKind.APPLICATION
DELEGATED = PermissionKind.DELEGATED
VENDOR_TENANT = uuid.UUID("5f2c0a61-3b7e-4c11-9d0a-1234567890ab")
UNPUBLISHED_ROLE = uuid.UUID("3b2e0f55-6a4d-4d7e-a1c2-0f1e2d3c4b5a")


@pytest.fixture
def contoso() -> Tenant:
    return TenantFactory(name="Contoso")


@pytest.fixture
def run(contoso) -> SyncRun:
    run = SyncRunFactory(tenant=contoso, status=SyncRun.Status.SUCCEEDED)
    Tenant.objects.filter(pk=contoso.pk).update(last_good_sync=run)
    return run


def holding(tenant: Tenant, run: SyncRun, *grants: tuple, **sp_fields) -> ServicePrincipal:
    """A client holding ``grants``: (value, kind[, resource app id[, consent]])."""
    sp = ServicePrincipalFactory(
        tenant=tenant,
        **{"display_name": "Rooms Monitor", "app_owner_tenant_id": VENDOR_TENANT, **sp_fields},
    )
    for value, kind, *rest in grants:
        resource = rest[0] if rest else GRAPH
        consent = rest[1] if len(rest) > 1 else "admin"
        GrantFactory(
            client=sp,
            value=value,
            kind=kind,
            resource_app_id=resource,
            consent=consent,
            permission_id=UNPUBLISHED_ROLE if not value else uuid.uuid4(),
            first_seen_run=run,
        )
    return sp


def signed_in(tenant: Tenant, *roles: str) -> Client:
    client = Client()
    client.force_login(UserFactory(entra_tenant_id=str(tenant.tenant_id), entra_roles=list(roles)))
    return client


def draft_url(sp: ServicePrincipal) -> str:
    return reverse("tenants:application-manifest-draft", args=[sp.tenant.tenant_id, sp.app_id])


def download(client: Client, sp: ServicePrincipal) -> str:
    response = client.get(draft_url(sp))
    assert response.status_code == 200
    return response.content.decode()


def features(text: str) -> list[dict]:
    return yaml.safe_load(text)["features"]


ROOMS = [
    ("Device.Read.All", APPLICATION),
    ("Device.ReadWrite.All", APPLICATION),
    ("Group.Read.All", APPLICATION),
    ("DeviceManagementManagedDevices.Read.All", APPLICATION),
    ("User.Read", DELEGATED),
    ("openid", DELEGATED),
    ("profile", DELEGATED),
    ("User.Read", DELEGATED, GRAPH, "user"),  # a user's consent too: still one permission
    ("update_device_health", APPLICATION, INTUNE),
    ("", APPLICATION),  # an app role Graph does not publish: its id names it
]


# --- the draft ------------------------------------------------------------------------


def test_it_is_a_yaml_download_named_after_the_application(contoso, run):
    sp = holding(contoso, run, *ROOMS)

    response = signed_in(contoso, "Portal.Admin").get(draft_url(sp))

    assert response["Content-Type"] == "application/yaml; charset=utf-8"
    assert (
        response["Content-Disposition"]
        == 'attachment; filename="rooms-monitor-manifest-draft.yaml"'
    )


def test_it_groups_permissions_by_resource_and_family(contoso, run):
    ResourceFactory(app_id=INTUNE, display_name="Microsoft Intune API")
    sp = holding(contoso, run, *ROOMS)

    drafted = features(download(signed_in(contoso, "Portal.Reader"), sp))

    assert [
        (
            feature["key"],
            [(p["permission"], p["type"], p.get("resource")) for p in feature["permissions"]],
        )
        for feature in drafted
    ] == [
        (
            "app-roles",
            [(str(UNPUBLISHED_ROLE), "application", None)],
        ),
        (
            "device",
            [
                ("Device.Read.All", "application", None),
                ("Device.ReadWrite.All", "application", None),
            ],
        ),
        (
            "device-management-managed-devices",
            [("DeviceManagementManagedDevices.Read.All", "application", None)],
        ),
        ("group", [("Group.Read.All", "application", None)]),
        ("sign-in", [("openid", "delegated", None), ("profile", "delegated", None)]),
        ("user", [("User.Read", "delegated", None)]),
        (
            "microsoft-intune-api-update_device_health",
            [("update_device_health", "application", INTUNE)],
        ),
    ]


def test_placeholders_are_plainly_placeholders(contoso, run):
    sp = holding(contoso, run, *ROOMS)

    text = download(signed_in(contoso, "Portal.Admin"), sp)

    for feature in features(text):
        assert feature["name"].startswith("TODO: ")
        assert feature["description"].startswith("TODO: ")
        for permission in feature["permissions"]:
            assert permission["reason"].startswith("TODO: why does the application need ")
    sign_in = next(f for f in features(text) if f["key"] == "sign-in")
    assert sign_in["name"] == "TODO: name the feature that uses sign-in (openid, profile)"
    device = next(f for f in features(text) if f["key"] == "device")
    assert device["name"] == "TODO: name the feature that uses Device.*"
    assert device["permissions"][0]["reason"] == (
        "TODO: why does the application need Device.Read.All (application)?"
    )


def test_a_header_comment_says_it_is_a_draft_for_the_vendor(contoso, run):
    sp = holding(contoso, run, ("Device.Read.All", APPLICATION))

    text = download(signed_in(contoso, "Portal.Admin"), sp)

    header = text.split("\nmanifest: 1\n")[0].splitlines()
    assert header[0].startswith("# DRAFT manifest for the Permission Portal")
    assert all(line.startswith("#") for line in header)
    assert any('To the vendor: please replace every "TODO"' in line for line in header)


def test_the_draft_imports_as_it_is_and_then_explains_every_grant(contoso, run):
    sp = holding(contoso, run, *ROOMS)
    before = application_in_tenant(tenant=contoso, service_principal=sp).counts
    text = download(signed_in(contoso, "Portal.Admin"), sp)

    spec = manifest_parse(data=text.encode(), source="draft.yaml")
    result = manifest_import(spec=spec)

    assert result.outcome == ImportOutcome.CREATED
    assert spec.name == "Rooms Monitor"
    after = application_in_tenant(tenant=contoso, service_principal=sp).counts
    # Ten grant entries (User.Read by admin and by user consent) of nine permissions.
    assert (before.unexplained, before.needed) == (10, 0)
    assert (after.unexplained, after.needed, after.missing) == (0, 10, 0)


def test_the_draft_keeps_the_portals_manifest_and_adds_what_it_does_not_list(contoso, run):
    sp = holding(contoso, run, ("Device.Read.All", APPLICATION), ("Mail.Send", APPLICATION))
    manifest = f"""\
manifest: 1
application:
  app_id: {sp.app_id}
  name: Rooms Monitor (vendor's name)
  publisher: Rooms Inc.
  docs_url: https://rooms.example/permissions
features:
  - key: device
    name: Device health
    description: Watches the rooms' devices.
    default_enabled: false
    permissions:
      - permission: Device.Read.All
        type: application
        reason: Reads the devices.
        api_calls: ["GET /devices"]
"""
    existing = manifest_parse(data=manifest.encode(), source="rooms.yaml")
    manifest_import(spec=existing)

    text = download(signed_in(contoso, "Portal.Admin"), sp)
    spec = manifest_parse(data=text.encode(), source="draft.yaml")

    assert spec.features[0] == existing.features[0]
    assert (spec.name, spec.publisher, spec.docs_url) == (
        "Rooms Monitor (vendor's name)",
        "Rooms Inc.",
        "https://rooms.example/permissions",
    )
    # A drafted feature never takes a key the manifest has ("device" is its own).
    assert [(f.key, [r.permission for r in f.requirements]) for f in spec.features[1:]] == [
        ("mail", ["Mail.Send"])
    ]
    result = manifest_import(spec=spec)
    assert (result.features_created, result.features_deleted, result.requirements_deleted) == (
        1,
        0,
        0,
    )


def test_a_drafted_key_never_collides_with_the_manifests(contoso, run):
    sp = holding(
        contoso, run, ("Device.Read.All", APPLICATION), ("Device.ReadWrite.All", APPLICATION)
    )
    manifest = f"""\
manifest: 1
application: {{app_id: {sp.app_id}, name: Rooms}}
features:
  - key: DEVICE
    name: Reads devices
    description: Reads them.
    permissions:
      - {{permission: Device.Read.All, type: application, reason: Reads devices.}}
"""
    manifest_import(spec=manifest_parse(data=manifest.encode(), source="rooms.yaml"))

    spec = manifest_parse(
        data=download(signed_in(contoso, "Portal.Admin"), sp).encode(), source="d"
    )

    assert [feature.key for feature in spec.features] == ["DEVICE", "device-2"]


def test_api_calls_come_from_the_catalogs_least_privileged_picks(contoso, run):
    device = PermissionFactory(value="Device.Read.All", kind=APPLICATION)
    for method, path in [
        ("GET", "/devices/{id}/memberof"),
        ("GET", "/devices"),
        ("GET", "/devices/{id}"),
        ("POST", "/devices"),
    ]:
        PermissionApiCallFactory(permission=device, method=method, path=path, least_privileged=True)
    # Not Microsoft's least-privileged pick, or another kind's scheme: left out.
    PermissionApiCallFactory(permission=device, path="/groups", least_privileged=False)
    PermissionApiCallFactory(
        permission=device,
        scheme=PermissionApiCall.Scheme.DELEGATED_WORK,
        path="/me/devices",
        least_privileged=True,
    )
    many = PermissionFactory(value="User.Read.All", kind=APPLICATION)
    for index in range(DRAFT_API_CALLS + 5):
        PermissionApiCallFactory(permission=many, path=f"/users/{index:02d}", least_privileged=True)
    sp = holding(
        contoso,
        run,
        ("Device.Read.All", APPLICATION),
        ("User.Read.All", APPLICATION),
        ("Group.Read.All", APPLICATION),
    )

    drafted = {
        p["permission"]: p.get("api_calls")
        for f in features(download(signed_in(contoso, "Portal.Admin"), sp))
        for p in f["permissions"]
    }

    assert drafted["Device.Read.All"] == [
        "GET /devices",
        "POST /devices",
        "GET /devices/{id}",
        "GET /devices/{id}/memberof",
    ]
    assert drafted["User.Read.All"] == [
        f"GET /users/{index:02d}" for index in range(DRAFT_API_CALLS)
    ]
    # The catalog knows no call of it: the key is left out, as the format allows.
    assert drafted["Group.Read.All"] is None


def test_an_application_holding_nothing_drafts_an_empty_feature_list(contoso, run):
    sp = holding(contoso, run)

    spec = manifest_parse(
        data=download(signed_in(contoso, "Portal.Admin"), sp).encode(), source="d"
    )

    assert spec.features == ()


# --- hostile names ----------------------------------------------------------------------

HOSTILE_NAME = (
    'Evil\nmanifest: 2\n# x: "y" {{ z }} &a *a !!python/object:os.system [\u202e\u2028\x07]'
)


def test_hostile_names_from_graph_stay_data(contoso, run):
    ResourceFactory(app_id=INTUNE, display_name="Intune\n- key: injected")
    sp = holding(
        contoso,
        run,
        ("Weird:Value#1", APPLICATION),
        ("'quoted'", DELEGATED),
        ("update_device_health", APPLICATION, INTUNE),
        display_name=HOSTILE_NAME,
        publisher="Pub\r\nlisher: !!binary x",
    )

    text = download(signed_in(contoso, "Portal.Admin"), sp)
    spec = manifest_parse(data=text.encode(), source="draft.yaml")

    # One line each, everything else kept: the text is the name, not YAML of its own.
    assert spec.name == 'Evil manifest: 2 # x: "y" {{ z }} &a *a !!python/object:os.system [ ]'
    assert spec.publisher == "Pub lisher: !!binary x"
    assert {r.permission for f in spec.features for r in f.requirements} == {
        "Weird:Value#1",
        "'quoted'",
        "update_device_health",
    }
    assert [f.key for f in spec.features] == [
        "quoted",
        "weirdvalue1",
        "intune-key-injected-update_device_health",
    ]
    # The header holds nothing from Graph.
    header = text.split("\nmanifest: 1\n")[0]
    assert "Evil" not in header and "Intune" not in header


def test_a_permission_no_manifest_can_name_is_left_out_and_counted(contoso, run):
    sp = holding(contoso, run, ("Two words", APPLICATION), ("Device.Read.All", APPLICATION))

    text = download(signed_in(contoso, "Portal.Admin"), sp)

    spec = manifest_parse(data=text.encode(), source="draft.yaml")
    assert [r.permission for f in spec.features for r in f.requirements] == ["Device.Read.All"]
    assert (
        "# 1 permission(s) held are left out: their names cannot be written in a manifest." in text
    )


def test_an_empty_display_name_falls_back_to_the_app_id(contoso, run):
    sp = holding(contoso, run, ("Device.Read.All", APPLICATION), display_name="\u200b \n")

    response = signed_in(contoso, "Portal.Admin").get(draft_url(sp))

    spec = manifest_parse(data=response.content, source="draft.yaml")
    assert spec.name == f"Application {sp.app_id}"
    assert response["Content-Disposition"] == (
        f'attachment; filename="{sp.app_id}-manifest-draft.yaml"'
    )


def test_a_manifest_that_explains_everything_drafts_as_itself(contoso, run):
    # An application whose manifest lists all it holds drafts its manifest unchanged.
    original = manifest_read(path=BUNDLED_MANIFESTS_DIR / "247connect.yaml")
    manifest_import(spec=original)
    sp = holding(contoso, run, ("Device.Read.All", APPLICATION), app_id=original.app_id)

    spec = manifest_parse(
        data=download(signed_in(contoso, "Portal.Admin"), sp).encode(), source="d"
    )

    assert spec == original


# --- who may draft ----------------------------------------------------------------------


def test_readers_may_draft(contoso, run):
    sp = holding(contoso, run, ("Device.Read.All", APPLICATION))

    assert signed_in(contoso, "Portal.Reader").get(draft_url(sp)).status_code == 200


def test_outsiders_find_nothing(contoso, run):
    sp = holding(contoso, run, ("Device.Read.All", APPLICATION))
    fabrikam = TenantFactory(name="Fabrikam")

    assert signed_in(fabrikam, "Portal.Admin").get(draft_url(sp)).status_code == 404
    assert signed_in(contoso).get(draft_url(sp)).status_code == 404
    elsewhere = reverse("tenants:application-manifest-draft", args=[fabrikam.tenant_id, sp.app_id])
    assert signed_in(fabrikam, "Portal.Admin").get(elsewhere).status_code == 404


def test_the_draft_takes_a_fixed_number_of_queries(contoso, run, django_assert_max_num_queries):
    sp = holding(contoso, run, *[(f"Perm{n}.Read.All", APPLICATION) for n in range(30)])
    client = signed_in(contoso, "Portal.Admin")

    with django_assert_max_num_queries(10):
        client.get(draft_url(sp))
