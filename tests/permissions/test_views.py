"""The portal's pages: applications, their manifests, the catalog and a permission's page."""

import datetime as dt
import uuid

import pytest
from django.conf import settings
from django.db import connection
from django.shortcuts import resolve_url
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from permissions.models import (
    MICROSOFT_INTUNE_APP_ID,
    PermissionApiCall,
    PermissionKind,
    Resource,
    Tier,
)
from tests.factories import (
    ApplicationFactory,
    FeatureFactory,
    GrantFactory,
    PermissionApiCallFactory,
    PermissionFactory,
    RequirementFactory,
    ResourceFactory,
    ServicePrincipalFactory,
    SyncRunFactory,
    TenantFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _signed_in(client):
    """Every page needs someone signed in with a portal role; these pages show the same
    to anyone who has one (the catalog's own visibility: test_catalog_visibility.py)."""
    tenant = TenantFactory(name="Visitor's tenant")
    client.force_login(
        UserFactory(
            username="visitor", entra_tenant_id=str(tenant.tenant_id), entra_roles=["Portal.Reader"]
        )
    )


APPLICATION = PermissionKind.APPLICATION
DELEGATED = PermissionKind.DELEGATED
IMPORTED_AT = dt.datetime(2026, 3, 14, 9, 30, tzinfo=dt.UTC)


def app_url(application) -> str:
    return reverse("permissions:application-detail", args=[application.app_id])


def permission_url(permission) -> str:
    return reverse("permissions:permission-detail", args=[permission.pk])


def catalog_url() -> str:
    return reverse("permissions:catalog")


def intune() -> Resource:
    return ResourceFactory(app_id=MICROSOFT_INTUNE_APP_ID, display_name="Microsoft Intune API")


# --- layout ------------------------------------------------------------------------------


def test_pages_load_htmx_from_the_portal_and_send_the_csrf_token_with_it(client):
    response = client.get(reverse("permissions:application-list"))

    html = response.content.decode()
    assert '<script src="/static/django_htmx/htmx-2.min.js" defer>' in html
    assert "/static/bulma/css/style.min.css" in html
    assert 'hx-headers=\'{"X-CSRFToken": "' in html
    assert 'href="#main"' in html and 'id="main"' in html


def test_every_page_sends_signed_out_visitors_to_sign_in(client):
    client.logout()
    permission = PermissionFactory()
    application = ApplicationFactory()
    login = resolve_url(settings.LOGIN_URL)
    for url in [
        reverse("permissions:application-list"),
        app_url(application),
        reverse("permissions:application-manifest", args=[application.app_id]),
        catalog_url(),
        reverse("permissions:catalog-changes"),
        permission_url(permission),
    ]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(login), url


def test_the_application_list_lives_under_applications(client):
    assert reverse("permissions:application-list") == "/applications/"
    assert client.get("/applications/").status_code == 200


def test_the_admin_link_is_shown_to_staff_only(client, bob, bob_client):
    admin_link = f'href="{reverse("admin:index")}"'

    client.force_login(
        UserFactory(
            is_staff=True, entra_tenant_id=bob.entra_tenant_id, entra_roles=["Portal.Reader"]
        )
    )
    assert admin_link in client.get(catalog_url()).content.decode()
    assert admin_link not in bob_client.get(catalog_url()).content.decode()


def test_the_current_section_is_marked_in_the_navigation(client):
    html = client.get(catalog_url()).content.decode()

    assert f'<a href="{catalog_url()}" aria-current="page">Catalog</a>' in html


# --- application list --------------------------------------------------------------------


def test_the_application_list_counts_features_and_distinct_permissions_by_kind(client):
    application = ApplicationFactory(
        name="AskCody", publisher="AskCody ApS", manifest_imported_at=IMPORTED_AT
    )
    sync = FeatureFactory(application=application)
    portal = FeatureFactory(application=application)
    RequirementFactory(feature=sync, kind=APPLICATION, permission_value="User.Read.All")
    RequirementFactory(feature=sync, kind=APPLICATION, permission_value="Group.Read.All")
    # The same permission under a second feature is still one permission.
    RequirementFactory(feature=portal, kind=APPLICATION, permission_value="User.Read.All")
    RequirementFactory(feature=portal, kind=DELEGATED, permission_value="User.Read.All")
    # Same value, another resource: another permission.
    RequirementFactory(
        feature=portal,
        kind=APPLICATION,
        resource_app_id=MICROSOFT_INTUNE_APP_ID,
        permission_value="User.Read.All",
    )

    response = client.get(reverse("permissions:application-list"))

    (row,) = response.context["page_obj"]
    assert (row.feature_count, row.application_permission_count) == (2, 3)
    assert row.delegated_permission_count == 1
    assert f'href="{app_url(application)}">AskCody</a>' in response.content.decode()
    assert "AskCody ApS" in response.content.decode()
    assert "Imported <time" in response.content.decode()


def test_an_application_without_a_manifest_is_marked_so(client):
    ApplicationFactory(name="Unknown app", manifest_imported_at=None)

    response = client.get(reverse("permissions:application-list"))

    assert "No manifest" in response.content.decode()
    (row,) = response.context["page_obj"]
    assert (row.feature_count, row.application_permission_count) == (0, 0)


def test_the_empty_application_list_says_how_to_import_manifests(client):
    response = client.get(reverse("permissions:application-list"))

    assert "No applications yet" in response.content.decode()
    assert "manage.py import_manifest permissions/manifests/*.yaml" in response.content.decode()


def test_the_application_list_is_paginated(client):
    for n in range(30):
        ApplicationFactory(name=f"App {n:02}")

    first = client.get(reverse("permissions:application-list"))
    second = client.get(reverse("permissions:application-list"), {"page": 2})

    assert [a.name for a in first.context["page_obj"]][:2] == ["App 00", "App 01"]
    assert len(first.context["page_obj"]) == 25
    assert [a.name for a in second.context["page_obj"]] == [f"App {n}" for n in range(25, 30)]
    assert 'href="?page=2"' in first.content.decode()


def test_the_application_list_queries_do_not_grow_with_applications(
    client, django_assert_max_num_queries
):
    for _ in range(25):
        feature = FeatureFactory()
        for value in ("User.Read.All", "Group.Read.All", "Device.Read.All"):
            RequirementFactory(feature=feature, permission_value=value)

    # The session and the signed-in user, the role check, the user's tenant in the header,
    # the count, the page.
    with django_assert_max_num_queries(6):
        response = client.get(reverse("permissions:application-list"))

    assert response.status_code == 200
    assert len(response.context["page_obj"]) == 25


# --- application page --------------------------------------------------------------------


def test_the_application_page_explains_each_feature_permission_and_call(client):
    application = ApplicationFactory(
        name="247connect", docs_url="https://example.com/why", manifest_imported_at=IMPORTED_AT
    )
    feature = FeatureFactory(
        application=application,
        key="device-assignment",
        name="Device assignment",
        description="Puts each device into its group.",
        default_enabled=False,
    )
    permission = PermissionFactory(
        value="Device.Read.All", tier=Tier.MANAGEMENT_PLANE, privilege_level=3
    )
    RequirementFactory(
        feature=feature,
        permission_value="Device.Read.All",
        reason="Finds the device to place.",
        api_calls=["GET /devices", "GET /groups"],
    )

    response = client.get(app_url(application))

    html = response.content.decode()
    assert '<h3 class="title is-5" id="feature-device-assignment-name">Device assignment</h3>' in (
        html
    )
    assert "Puts each device into its group." in html
    assert "Off by default" in html
    assert "Finds the device to place." in html
    assert "<li><code>GET /devices</code></li><li><code>GET /groups</code></li>" in html
    assert f'href="{permission_url(permission)}"><code>Device.Read.All</code>' in html
    assert 'class="tag tier tier-ManagementPlane">Management plane</span>' in html
    assert "Admin consent</span>" in html
    assert "Privilege level 3" in html
    assert 'href="https://example.com/why"' in html
    assert reverse("permissions:application-manifest", args=[application.app_id]) in html


def test_consent_and_tier_are_unknown_for_a_permission_the_catalog_does_not_know(client):
    requirement = RequirementFactory(permission_value="Brand.New.All")
    # The catalog knows the value only as a delegated permission: not the one required.
    PermissionFactory(value="Brand.New.All", kind=DELEGATED, admin_consent_required=False)

    response = client.get(app_url(requirement.feature.application))

    html = response.content.decode()
    assert "Consent unknown" in html
    assert "Tier unknown" in html
    assert "User consent" not in html
    assert "(not in the catalog)" in html
    (item,) = response.context["manifest"].features[0].requirements
    assert item.permission is None


def test_a_permission_of_another_resource_is_matched_and_named(client):
    permission = PermissionFactory(
        resource=intune(), value="get_device_compliance", tier=Tier.USER_ACCESS
    )
    requirement = RequirementFactory(
        resource_app_id=MICROSOFT_INTUNE_APP_ID, permission_value="get_device_compliance"
    )

    response = client.get(app_url(requirement.feature.application))

    (item,) = response.context["manifest"].features[0].requirements
    assert item.permission == permission
    assert item.resource_name == "Microsoft Intune API"
    assert '<span class="resource-name">Microsoft Intune API</span>' in response.content.decode()


def test_microsoft_graph_is_not_named_on_each_permission(client):
    PermissionFactory(value="Device.Read.All")
    requirement = RequirementFactory(permission_value="Device.Read.All")

    response = client.get(app_url(requirement.feature.application))

    assert 'class="resource-name"' not in response.content.decode()


def test_the_summary_lists_each_permission_once_most_sensitive_first(client):
    application = ApplicationFactory()
    sync, portal = FeatureFactory.create_batch(2, application=application)
    PermissionFactory(value="User.Read.All", tier=Tier.USER_ACCESS)
    PermissionFactory(value="RoleManagement.ReadWrite.Directory", tier=Tier.CONTROL_PLANE)
    RequirementFactory(feature=sync, permission_value="User.Read.All")
    RequirementFactory(feature=sync, permission_value="Unknown.Permission")
    RequirementFactory(feature=portal, permission_value="User.Read.All")
    RequirementFactory(feature=portal, permission_value="RoleManagement.ReadWrite.Directory")

    response = client.get(app_url(application))

    summary = response.context["manifest"].permissions
    assert [(p.value, p.features) for p in summary] == [
        ("RoleManagement.ReadWrite.Directory", [portal]),
        ("User.Read.All", [sync, portal]),
        ("Unknown.Permission", [sync]),
    ]
    assert "Permissions this application asks for" in response.content.decode()


def test_an_application_without_a_manifest_says_how_to_import_one(client):
    application = ApplicationFactory(manifest_imported_at=None)

    response = client.get(app_url(application))

    html = response.content.decode()
    assert "No manifest yet" in html
    assert "manage.py import_manifest" in html
    assert reverse("permissions:application-manifest", args=[application.app_id]) not in html


def test_an_unknown_application_is_not_found(client):
    response = client.get(reverse("permissions:application-detail", args=[uuid.uuid4()]))

    assert response.status_code == 404
    assert "Not found" in response.content.decode()


def test_the_application_page_queries_do_not_grow_with_the_manifest(
    client, django_assert_max_num_queries
):
    application = ApplicationFactory()
    for f in range(15):
        feature = FeatureFactory(application=application)
        for r in range(8):
            value = f"Scope{f}x{r}.Read.All"
            PermissionFactory(value=value)
            RequirementFactory(feature=feature, permission_value=value)

    # The session and the user, the role check, the user's tenant in the header; the
    # application, its features, their requirements, the catalog's permissions.
    with django_assert_max_num_queries(8):
        response = client.get(app_url(application))

    assert response.status_code == 200
    assert len(response.context["manifest"].permissions) == 120


def test_the_manifest_export_is_the_applications_yaml(client):
    from permissions.manifests import manifest_export

    requirement = RequirementFactory(feature__application__name="AskCody")
    application = requirement.feature.application
    application.manifest_imported_at = IMPORTED_AT
    application.save()

    response = client.get(reverse("permissions:application-manifest", args=[application.app_id]))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/yaml; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="askcody.yaml"'
    assert response.content.decode() == manifest_export(application=application)
    assert "Device.Read.All" in response.content.decode()


def test_the_manifest_export_of_an_unknown_application_is_not_found(client):
    response = client.get(reverse("permissions:application-manifest", args=[uuid.uuid4()]))

    assert response.status_code == 404


# --- catalog -----------------------------------------------------------------------------


def test_the_catalog_lists_permissions_with_resource_consent_and_tier(client):
    permission = PermissionFactory(
        value="Device.Read.All",
        display_name="Read all devices",
        tier=Tier.CONTROL_PLANE,
        admin_consent_required=True,
        privilege_level=2,
    )

    response = client.get(catalog_url())

    html = response.content.decode()
    assert f'href="{permission_url(permission)}"><code>Device.Read.All</code></a>' in html
    assert "Read all devices" in html
    assert '<td class="nowrap">Microsoft Graph</td>' in html
    assert 'class="tag tier tier-ControlPlane">Control plane</span>' in html
    assert "Admin consent</span>" in html
    assert "Privilege level 2" in html
    assert '<form class="box catalog-filters" method="get"' in html


def values(response) -> list[str]:
    return [p.value for p in response.context["page_obj"]]


def test_the_catalog_search_matches_every_word_in_value_name_or_description(client):
    PermissionFactory(value="BitlockerKey.Read.All", description="Allows reading keys.")
    PermissionFactory(value="Device.Read.All", display_name="Read BitLocker-protected devices")
    PermissionFactory(value="Mail.Send", description="Sends mail as any user.")

    assert values(client.get(catalog_url(), {"q": "bitlocker read"})) == [
        "BitlockerKey.Read.All",
        "Device.Read.All",
    ]
    assert values(client.get(catalog_url(), {"q": "  MAIL  "})) == ["Mail.Send"]
    assert values(client.get(catalog_url(), {"q": "bitlocker mail"})) == []


def test_permissions_named_after_the_search_come_before_those_that_mention_it(client):
    PermissionFactory(value="AccessReview.Read.All", description="Reads reviews of groups.")
    PermissionFactory(value="Group.Read.All")
    PermissionFactory(value="Mail.Send")

    assert values(client.get(catalog_url(), {"q": "group"})) == [
        "Group.Read.All",
        "AccessReview.Read.All",
    ]


def test_a_search_from_htmx_gets_only_the_results_fragment(client):
    PermissionFactory(value="Mail.Send")
    PermissionFactory(value="Device.Read.All")

    response = client.get(catalog_url(), {"q": "mail"}, HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert "<html" not in html and "<form" not in html
    assert "Mail.Send" in html and "Device.Read.All" not in html
    assert html.lstrip().startswith('<p class="results-count" role="status">')
    assert "HX-Request" in response["Vary"]


def test_the_search_box_searches_as_you_type_and_the_form_works_without_javascript(client):
    html = client.get(catalog_url()).content.decode()

    assert f'method="get" action="{catalog_url()}"' in html
    assert 'hx-trigger="input changed delay:300ms, search"' in html
    assert 'hx-target="#catalog-results"' in html
    assert '<div id="catalog-results">' in html
    assert '<button class="button is-link" type="submit">Search</button>' in html


def test_htmx_restoring_history_gets_the_whole_page(client):
    response = client.get(
        catalog_url(),
        {"q": "mail"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_HISTORY_RESTORE_REQUEST="true",
    )

    assert "<html" in response.content.decode()


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"kind": "delegated"}, ["Calendars.Read"]),
        ({"tier": Tier.CONTROL_PLANE}, ["Directory.ReadWrite.All"]),
        ({"tier": "unclassified"}, ["get_device_compliance"]),
        ({"consent": "required"}, ["Directory.ReadWrite.All"]),
        ({"consent": "not-required"}, ["Calendars.Read"]),
        ({"consent": "unknown"}, ["get_device_compliance"]),
        ({"kind": "application", "tier": Tier.USER_ACCESS}, []),
        (
            {"tier": "NoSuchTier"},
            ["Calendars.Read", "Directory.ReadWrite.All", "get_device_compliance"],
        ),
    ],
)
def test_the_catalog_filters_by_kind_tier_and_consent(client, filters, expected):
    PermissionFactory(
        value="Directory.ReadWrite.All", tier=Tier.CONTROL_PLANE, admin_consent_required=True
    )
    PermissionFactory(
        value="Calendars.Read", kind=DELEGATED, tier=Tier.USER_ACCESS, admin_consent_required=False
    )
    PermissionFactory(
        resource=intune(),
        value="get_device_compliance",
        tier=Tier.UNCLASSIFIED,
        admin_consent_required=None,
    )

    response = client.get(catalog_url(), filters)

    assert response.status_code == 200
    assert values(response) == expected


def test_the_catalog_filters_by_resource(client):
    PermissionFactory(value="Device.Read.All")
    PermissionFactory(resource=intune(), value="get_device_compliance")
    resource = Resource.objects.get(app_id=MICROSOFT_INTUNE_APP_ID)

    response = client.get(catalog_url(), {"resource": resource.pk})

    assert values(response) == ["get_device_compliance"]
    assert f'<option value="{resource.pk}" selected>Microsoft Intune API</option>' in (
        response.content.decode()
    )


def test_the_catalog_pages_by_50_and_keeps_the_search_in_its_links(client):
    for n in range(60):
        PermissionFactory(value=f"Example{n:02}.Read.All")

    first = client.get(catalog_url(), {"q": "example", "kind": "application"})
    last = client.get(
        catalog_url(), {"q": "example", "kind": "application", "page": 2}, HTTP_HX_REQUEST="true"
    )

    assert len(first.context["page_obj"]) == 50
    assert "60 permissions, 1–50 shown" in first.content.decode()
    assert 'href="?q=example&amp;kind=application&amp;page=2"' in first.content.decode()
    assert values(last) == [f"Example{n}.Read.All" for n in range(50, 60)]
    assert 'hx-get="?q=example&amp;kind=application&amp;page=1"' in last.content.decode()


def test_the_empty_catalog_says_how_to_import_it(client):
    html = client.get(catalog_url()).content.decode()

    assert "The catalog is empty" in html
    assert "manage.py import_catalog --starter" in html


def test_a_search_without_match_says_so(client):
    PermissionFactory(value="Mail.Send")

    html = client.get(catalog_url(), {"q": "nothing-like-it"}).content.decode()

    assert "No permission matches" in html
    assert "The catalog is empty" not in html


def test_the_catalog_queries_do_not_grow_with_the_page(client, django_assert_max_num_queries):
    PermissionFactory.create_batch(50)
    PermissionFactory.create_batch(5, resource=intune())

    # The session and the user, the role check, the user's tenant in the header; resources
    # for the filter, the count, the page with its resources, the last catalog import.
    with django_assert_max_num_queries(8):
        response = client.get(catalog_url())

    assert response.status_code == 200
    assert len(response.context["page_obj"]) == 50  # a full page


# --- permission page ---------------------------------------------------------------------


def test_the_permission_page_shows_what_the_catalog_knows(client):
    permission = PermissionFactory(
        value="Device.Read.All",
        graph_id=uuid.UUID("7438b122-aefc-4978-80ed-43db9fcc7715"),
        display_name="Read all devices",
        description="Lets the app read devices' properties.",
        admin_consent_required=True,
        privilege_level=3,
        tier=Tier.MANAGEMENT_PLANE,
    )

    html = client.get(permission_url(permission)).content.decode()

    assert "<code>7438b122-aefc-4978-80ed-43db9fcc7715</code>" in html
    assert "<dt>Type</dt><dd>Application</dd>" in html
    assert "Microsoft Graph<br><code" in html
    assert "<dt>Admin consent</dt><dd>required</dd>" in html
    assert "<dt>Privilege level</dt><dd>3</dd>" in html
    assert "<dt>Tier</dt><dd>Management plane</dd>" in html
    assert "Lets the app read devices&#x27; properties." in html
    assert "Read all devices" in html


def test_the_permission_page_lists_the_features_that_require_it_with_their_reasons(client):
    permission = PermissionFactory(value="Group.Read.All")
    askcody = ApplicationFactory(name="AskCody")
    RequirementFactory(
        feature__application=askcody,
        feature__name="Entra ID user sync",
        permission_value="Group.Read.All",
        reason="Reads the groups chosen for the sync.",
    )
    # Same value, but delegated: another permission, not listed.
    RequirementFactory(
        feature__application=askcody,
        feature__name="Admin portal",
        kind=DELEGATED,
        permission_value="Group.Read.All",
    )

    html = client.get(permission_url(permission)).content.decode()

    assert f'<a href="{app_url(askcody)}">AskCody</a>' in html
    assert "Entra ID user sync" in html
    assert "Reads the groups chosen for the sync." in html
    assert "Admin portal" not in html


def test_the_permission_page_says_when_no_manifest_requires_it(client):
    permission = PermissionFactory()

    html = client.get(permission_url(permission)).content.decode()

    assert "No imported manifest requires this permission." in html
    assert "The catalog lists no API call for this permission." in html


def test_the_permission_page_lists_the_api_calls_it_allows(client):
    permission = PermissionFactory(value="Group.Read.All")
    PermissionApiCallFactory(
        permission=permission, method="GET", path="/groups/{id}/members", least_privileged=True
    )
    PermissionApiCallFactory(
        permission=permission,
        method="GET",
        path="/groups",
        scheme=PermissionApiCall.Scheme.DELEGATED_WORK,
    )

    response = client.get(permission_url(permission))

    assert [str(c) for c in response.context["page_obj"]] == [
        "GET /groups",
        "GET /groups/{id}/members",
    ]
    html = response.content.decode()
    assert '<code class="api-path">/groups/{id}/members</code>' in html
    assert "Delegated (work or school)" in html
    assert html.count('<span class="least-mark" aria-hidden="true">★</span> yes') == 1


def test_a_long_list_of_api_calls_is_paged_in_place_with_htmx(client):
    permission = PermissionFactory()
    PermissionApiCall.objects.bulk_create(
        PermissionApiCall(
            permission=permission,
            scheme=PermissionApiCall.Scheme.APPLICATION,
            method="GET",
            path=f"/things/{n:03}",
        )
        for n in range(250)
    )

    first = client.get(permission_url(permission))
    last = client.get(permission_url(permission), {"page": 3}, HTTP_HX_REQUEST="true")

    assert len(first.context["page_obj"]) == 100
    assert "250 calls across consent schemes, 1–100 shown" in first.content.decode()
    assert 'hx-target="#api-calls"' in first.content.decode()
    assert [c.path for c in last.context["page_obj"]][0] == "/things/200"
    assert "<html" not in last.content.decode()
    assert "Which features require it" not in last.content.decode()


def test_an_unknown_permission_is_not_found(client):
    assert client.get(reverse("permissions:permission-detail", args=[999999])).status_code == 404


# --- where a permission is granted ------------------------------------------------------


def holder(tenant, name: str, **grant) -> None:
    run = SyncRunFactory(tenant=tenant, succeeded=True)
    GrantFactory(
        client=ServicePrincipalFactory(tenant=tenant, display_name=name),
        first_seen_run=run,
        **grant,
    )


def test_the_permission_page_lists_the_applications_holding_it_in_the_users_tenants(
    bob_client, contoso, fabrikam
):
    permission = PermissionFactory(value="Device.Read.All")
    holder(contoso, "247connect", value="Device.Read.All")
    # The catalog's id names the role when the sync stored no value.
    holder(contoso, "AskCody", value="", permission_id=permission.graph_id)
    holder(contoso, "Delegated only", value="Device.Read.All", kind=DELEGATED)
    holder(contoso, "Gone", value="Device.Read.All", removed_in_run=SyncRunFactory(tenant=contoso))
    holder(fabrikam, "Fabrikam app", value="Device.Read.All")

    response = bob_client.get(permission_url(permission))

    (entry,) = response.context["holders"]
    assert entry.tenant == contoso and entry.total == 2
    assert [sp.display_name for sp in entry.clients] == ["247connect", "AskCody"]
    html = response.content.decode()
    assert "Fabrikam" not in html
    sp = entry.clients[0]
    page = reverse("tenants:application", args=[contoso.tenant_id, sp.app_id])
    assert f'<a href="{page}">247connect</a>' in html


def test_a_widely_held_permission_names_the_first_holders_and_counts_them_all(client, contoso):
    permission = PermissionFactory(value="User.Read.All")
    for n in range(27):
        holder(contoso, f"App {n:02}", value="User.Read.All")
    client.force_login(UserFactory(is_superuser=True))

    response = client.get(permission_url(permission))

    (entry,) = response.context["holders"]
    assert entry.total == 27 and len(entry.clients) == 25
    assert "27 applications hold it; the first 25 by name" in response.content.decode()


def test_someone_whose_tenants_hold_none_sees_that_no_application_holds_it(client):
    permission = PermissionFactory(value="Device.Read.All")
    holder(TenantFactory(), "247connect", value="Device.Read.All")

    html = client.get(permission_url(permission)).content.decode()

    assert "No application holds it in the tenants you can see." in html
    assert "247connect" not in html


def test_the_permission_page_queries_do_not_grow_with_tenants_or_holders(client):
    permission = PermissionFactory(value="User.Read.All")
    client.force_login(UserFactory(is_superuser=True))

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(permission_url(permission)).status_code == 200
        return len(captured)

    holder(TenantFactory(), "First", value="User.Read.All")
    few = queries()
    for n in range(4):
        tenant = TenantFactory()
        for m in range(30):
            holder(tenant, f"App {n}-{m}", value="User.Read.All")
    assert queries() == few
