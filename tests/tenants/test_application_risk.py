"""The risk level on an application's page in a tenant, from what the portal reads today;
the rest said to be unknown."""

import uuid

import pytest
from django.test import Client
from django.urls import reverse

from permissions.models import Tier
from permissions.risk import Ownership, RiskLevel
from tenants.models import MICROSOFT_TENANT_IDS, ServicePrincipal, SyncRun, Tenant
from tenants.risk import application_risk, ownership_of
from tenants.selectors import application_in_tenant
from tests.factories import (
    GrantFactory,
    PermissionFactory,
    ServicePrincipalFactory,
    SyncRunFactory,
    TenantFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

VENDOR_TENANT = uuid.UUID("5f2c0a61-3b7e-4c11-9d0a-1234567890ab")
MICROSOFT = uuid.UUID(sorted(MICROSOFT_TENANT_IDS)[0])


@pytest.fixture
def contoso() -> Tenant:
    tenant = TenantFactory(name="Contoso")
    run = SyncRunFactory(tenant=tenant, status=SyncRun.Status.SUCCEEDED)
    Tenant.objects.filter(pk=tenant.pk).update(last_good_sync=run)
    tenant.refresh_from_db()
    return tenant


def client_holding(tenant: Tenant, *values: str, **fields) -> ServicePrincipal:
    sp = ServicePrincipalFactory(tenant=tenant, **fields)
    for value in values:
        GrantFactory(client=sp, value=value, first_seen_run=tenant.last_good_sync)
    return sp


def page(tenant: Tenant, sp: ServicePrincipal) -> str:
    client = Client()
    client.force_login(
        UserFactory(entra_tenant_id=str(tenant.tenant_id), entra_roles=["Portal.Reader"])
    )
    response = client.get(reverse("tenants:application", args=[tenant.tenant_id, sp.app_id]))
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize(
    ("fields", "ownership"),
    [
        (
            {"service_principal_type": "ManagedIdentity", "app_owner_tenant_id": None},
            Ownership.MANAGED_IDENTITY,
        ),
        ({"app_owner_tenant_id": MICROSOFT}, Ownership.MICROSOFT),
        ({"app_owner_tenant_id": VENDOR_TENANT}, Ownership.THIRD_PARTY),
        ({"app_owner_tenant_id": None}, Ownership.UNKNOWN),
    ],
)
def test_ownership_comes_from_the_service_principal(contoso, fields, ownership):
    sp = ServicePrincipalFactory(tenant=contoso, **fields)

    assert ownership_of(tenant=contoso, service_principal=sp) == ownership


def test_an_app_of_the_tenant_itself_is_its_own(contoso):
    sp = ServicePrincipalFactory(tenant=contoso, app_owner_tenant_id=contoso.tenant_id)

    assert ownership_of(tenant=contoso, service_principal=sp) == Ownership.OWN


def test_the_page_shows_the_level_its_reasons_and_what_is_unknown(contoso):
    PermissionFactory(value="RoleManagement.ReadWrite.Directory", tier=Tier.CONTROL_PLANE)
    sp = client_holding(
        contoso, "RoleManagement.ReadWrite.Directory", app_owner_tenant_id=VENDOR_TENANT
    )

    html = page(contoso, sp)

    assert '<span class="tag risk-high">High</span>' in html
    assert "50 points" in html
    for points, text in [
        (40, "1 control-plane permission: RoleManagement.ReadWrite.Directory (application)"),
        (2, "1 unexplained grant (revoke candidates)"),
        (5, "third-party: registered in another organization"),
        (3, "multi-tenant: other organizations&#x27; users can sign in"),
    ]:
        assert f'<span class="risk-points">+{points}</span> {text}' in html
    assert (
        "Unknown until the portal reads this evidence, so not counted: publisher verification; "
        "sign-in activity (inactive or not); credentials on the service principal; owners."
    ) in html


def test_a_permission_the_catalog_cannot_rate_is_said_to_be_unknown(contoso):
    sp = client_holding(contoso, "Unheard.Of.All", app_owner_tenant_id=contoso.tenant_id)

    html = page(contoso, sp)

    assert '<span class="tag risk-low">Low</span>' in html
    assert (
        "the weight of 1 permission the catalog has no tier or privilege level for: Unheard.Of.All (application)"
        in html
    )


def test_the_score_reads_nothing_more_from_the_database(contoso, django_assert_num_queries):
    PermissionFactory(value="Mail.Read", tier=Tier.MANAGEMENT_PLANE)
    sp = client_holding(contoso, "Mail.Read", "Other.Read.All", app_owner_tenant_id=VENDOR_TENANT)
    sp = ServicePrincipal.objects.select_related("tenant").get(pk=sp.pk)
    detail = application_in_tenant(tenant=contoso, service_principal=sp)

    with django_assert_num_queries(0):
        risk = application_risk(tenant=contoso, service_principal=sp, detail=detail)

    # Mail.Read 10, two unexplained 4, third-party 5, multi-tenant 3.
    assert (risk.score, risk.level) == (22, RiskLevel.MEDIUM)
