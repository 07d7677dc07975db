"""The facts a sync reads (tenants.facts) as the risk score's evidence."""

import uuid

import pytest

from tenants.models import Credential, SyncRun, Tenant
from tenants.risk import application_risk
from tenants.selectors import application_in_tenant
from tests.factories import GrantFactory, ServicePrincipalFactory, SyncRunFactory, TenantFactory

pytestmark = pytest.mark.django_db

VENDOR_TENANT = uuid.UUID("5f2c0a61-3b7e-4c11-9d0a-1234567890ab")


@pytest.fixture
def tenant() -> Tenant:
    tenant = TenantFactory(name="Contoso")
    run = SyncRunFactory(tenant=tenant, status=SyncRun.Status.SUCCEEDED)
    Tenant.objects.filter(pk=tenant.pk).update(last_good_sync=run)
    tenant.refresh_from_db()
    return tenant


def risk_of(tenant, **fields):
    sp = ServicePrincipalFactory(tenant=tenant, **fields)
    GrantFactory(client=sp, value="Mail.Read", first_seen_run=tenant.last_good_sync)
    return sp, lambda: application_risk(
        tenant=tenant,
        service_principal=sp,
        detail=application_in_tenant(tenant=tenant, service_principal=sp),
    )


def texts(risk) -> set[str]:
    return {reason.text for reason in risk.reasons}


def test_unread_facts_stay_unknown(tenant):
    _, risk = risk_of(tenant, app_owner_tenant_id=VENDOR_TENANT)
    unknown = risk().unknown
    assert "owners" in unknown and "credentials on the service principal" in unknown
    assert "publisher verification" in unknown


def test_no_owner_sp_credentials_and_unverified_publisher_are_reasons(tenant):
    sp, risk = risk_of(
        tenant, app_owner_tenant_id=VENDOR_TENANT, owners=[], verified_publisher=False
    )
    Credential.objects.create(
        tenant=tenant, service_principal=sp, kind="secret", key_id=uuid.uuid4()
    )
    found = risk()
    assert {
        "no owner: nobody answers for it",
        "credentials placed on the service principal",
        "publisher not verified",
    } <= texts(found)
    assert not {"owners", "credentials on the service principal", "publisher verification"} & set(
        found.unknown
    )


def test_an_owned_verified_app_with_credentials_on_its_registration_is_not_flagged(tenant):
    sp, risk = risk_of(
        tenant,
        app_owner_tenant_id=VENDOR_TENANT,
        owners=[{"id": "", "name": "Erin", "upn": "erin@contoso.com", "type": "user"}],
        verified_publisher=True,
    )
    Credential.objects.create(
        tenant=tenant, service_principal=sp, kind="secret", key_id=uuid.uuid4(), on_application=True
    )
    found = texts(risk())
    assert not found & {
        "no owner: nobody answers for it",
        "credentials placed on the service principal",
        "publisher not verified",
    }


@pytest.mark.parametrize(
    ("audience", "multi"),
    [("AzureADMyOrg", False), ("AzureADMultipleOrgs", True), ("", None)],
)
def test_an_own_apps_audience_decides_multi_tenant(tenant, audience, multi):
    _, risk = risk_of(tenant, app_owner_tenant_id=tenant.tenant_id, sign_in_audience=audience)
    found = risk()
    reason = "multi-tenant: other organizations' users can sign in"
    if multi is None:
        assert "sign-in audience (multi-tenant)" in found.unknown
    else:
        assert (reason in texts(found)) is multi
        assert "sign-in audience (multi-tenant)" not in found.unknown
