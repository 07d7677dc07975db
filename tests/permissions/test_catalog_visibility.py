"""Who sees what of the catalog (issue 12, item 5). What Microsoft publishes (its
reference, the built-in snapshot and starter) every user with a portal role sees; what
only a tenant's Graph told the portal (a custom API's name, roles and descriptions) only
the users of the tenants where it was seen. The catalog and application pages need a
portal role."""

import uuid

import pytest
from django.test import Client
from django.urls import reverse

from permissions.catalog import GraphPermission, catalog_apply_graph
from permissions.models import CatalogChange, Permission, PermissionKind, Resource
from tenants.graph import GraphClient
from tenants.services import sync_run_queue, tenant_add
from tenants.sync import sync_run_execute
from tests.factories import ApplicationFactory, PermissionFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db

CUSTOM_API = "7f0c3a55-5b1e-4f2a-9d3c-1e2f3a4b5c6d"
NORTHWIND = "9f3e40bb-3dc9-471b-bf34-13d1dc7ea28b"
WOODGROVE = "5a7d3e2b-9c41-4f8e-b6a0-1d2c3b4a5e6f"
WOODGROVE_PAYROLL = "7e1c2d3b-4a5f-4e6d-8c7b-9a0f1e2d3c4b"
CONTOSO_ID = "1e1a0801-7f55-46e2-9fb2-3b09766f2844"


def custom_api_entry(value: str = "Payroll.Export.All") -> GraphPermission:
    return GraphPermission(
        resource_app_id=CUSTOM_API,
        resource_name="Contoso Payroll API",
        kind=PermissionKind.APPLICATION,
        value=value,
        graph_id=str(uuid.uuid4()),
        display_name="Export every payslip",
        description="Lets the app export Contoso's payslips to the bank.",
        admin_consent_required=True,
        enabled=True,
    )


@pytest.fixture
def contoso():
    return TenantFactory(name="Contoso")


@pytest.fixture
def fabrikam():
    return TenantFactory(name="Fabrikam")


@pytest.fixture
def custom(contoso) -> Permission:
    """Contoso's own API, as Contoso's sync read it from Graph."""
    catalog_apply_graph(entries=[custom_api_entry()], tenant=contoso)
    return Permission.objects.get(value="Payroll.Export.All")


@pytest.fixture
def published() -> Permission:
    return PermissionFactory(value="Device.Read.All")


def as_user(tenant_id: object, *roles: str) -> Client:
    client = Client()
    client.force_login(UserFactory(entra_tenant_id=str(tenant_id), entra_roles=list(roles)))
    return client


def catalog_text(client: Client, **query: str) -> str:
    response = client.get(reverse("permissions:catalog"), query)
    assert response.status_code == 200
    return response.content.decode()


def test_the_tenant_where_it_was_seen_sees_its_custom_api(contoso, custom, published):
    alice = as_user(contoso.tenant_id, "Portal.Admin")

    page = catalog_text(alice)

    assert "Payroll.Export.All" in page and "Contoso Payroll API" in page
    assert "Device.Read.All" in page
    detail = alice.get(reverse("permissions:permission-detail", args=[custom.pk]))
    assert detail.status_code == 200 and b"export Contoso&#x27;s payslips" in detail.content


def test_another_tenants_admin_sees_nothing_of_it(fabrikam, custom, published):
    charlie = as_user(fabrikam.tenant_id, "Portal.Admin")
    custom.changes.create(
        resource_app_id=CUSTOM_API,
        kind=custom.kind,
        value="Payroll.Export.All",
        action=CatalogChange.Action.CHANGED,
        details={"value": ["Payroll.Dump.All", "Payroll.Export.All"]},
        source=Permission.Source.GRAPH,
    )

    page = catalog_text(charlie)
    searched = catalog_text(charlie, q="payroll")
    changes = charlie.get(reverse("permissions:catalog-changes")).content.decode()
    detail = charlie.get(reverse("permissions:permission-detail", args=[custom.pk]))

    assert "Device.Read.All" in page
    for shown in (page, searched, changes):
        assert "Payroll" not in shown and "Contoso Payroll API" not in shown
    assert detail.status_code == 404
    resource = Resource.objects.get(app_id=CUSTOM_API)
    filtered = charlie.get(reverse("permissions:catalog"), {"resource": resource.pk})
    assert "Payroll" not in filtered.content.decode()


@pytest.mark.parametrize(
    "who", ["no role in an onboarded tenant", "a tenant never onboarded", "no tenant at all"]
)
def test_without_a_portal_role_the_catalog_and_applications_are_closed(contoso, custom, who):
    tenant_id, roles = {
        "no role in an onboarded tenant": (contoso.tenant_id, ()),
        "a tenant never onboarded": (NORTHWIND, ("Portal.Admin",)),
        "no tenant at all": ("", ()),
    }[who]
    client = as_user(tenant_id, *roles)
    application = ApplicationFactory()

    for url in (
        reverse("permissions:catalog"),
        reverse("permissions:catalog-changes"),
        reverse("permissions:permission-detail", args=[custom.pk]),
        reverse("permissions:application-list"),
        reverse("permissions:application-detail", args=[application.app_id]),
        reverse("permissions:application-manifest", args=[application.app_id]),
    ):
        response = client.get(url)
        assert response.status_code in (403, 404), url
        assert b"Payroll" not in response.content, url


def test_a_published_permission_seen_in_a_tenant_stays_visible_to_all(contoso, fabrikam, published):
    seen = custom_api_entry("Device.Read.All")
    catalog_apply_graph(
        entries=[
            GraphPermission(**{**seen.__dict__, "resource_app_id": str(published.resource.app_id)})
        ],
        tenant=contoso,
    )

    assert "Device.Read.All" in catalog_text(as_user(fabrikam.tenant_id, "Portal.Reader"))


def test_an_operator_sees_what_any_tenant_saw(settings, contoso, custom):
    settings.PORTAL_OPERATOR_TENANT_ID = str(uuid.uuid4())
    oscar = as_user(settings.PORTAL_OPERATOR_TENANT_ID, "Portal.Operator")

    assert "Payroll.Export.All" in catalog_text(oscar)


@pytest.mark.django_db(transaction=True)
def test_a_sync_records_where_its_custom_api_was_seen(emu):
    """Woodgrove's line-of-business API reaches the catalog through Woodgrove's sync:
    Woodgrove's admin sees it, Contoso's admin does not."""
    woodgrove = tenant_add(tenant_id=WOODGROVE, name="Woodgrove")[0]
    contoso = tenant_add(tenant_id=CONTOSO_ID, name="Contoso")[0]
    for tenant in (woodgrove, contoso):
        run = sync_run_queue(tenant=tenant)
        assert sync_run_execute(
            run_id=run.pk,
            client=GraphClient(tenant_id=str(tenant.tenant_id), sleep=lambda seconds: None),
        ).status == ("succeeded")
    payroll = Permission.objects.get(resource__app_id=WOODGROVE_PAYROLL, value="Payroll.Read.All")
    assert list(payroll.seen_in.all()) == [woodgrove]

    assert "Payroll.Read.All" in catalog_text(as_user(WOODGROVE, "Portal.Admin"), q="payroll")
    assert "Payroll.Read.All" not in catalog_text(as_user(CONTOSO_ID, "Portal.Admin"), q="payroll")


def test_the_refusal_says_how_to_get_a_role(contoso):
    response = as_user(contoso.tenant_id).get(reverse("permissions:catalog"))

    assert response.status_code == 403
    assert b"need a portal role" in response.content
    assert reverse("access").encode() in response.content


def test_the_navigation_offers_the_catalog_only_to_who_may_open_it(contoso):
    catalog = f'href="{reverse("permissions:catalog")}"'

    with_role = as_user(contoso.tenant_id, "Portal.Reader").get(reverse("digests:subscriptions"))
    without = as_user(contoso.tenant_id).get(reverse("access"))

    assert catalog in with_role.content.decode()
    assert without.status_code == 200 and catalog not in without.content.decode()
