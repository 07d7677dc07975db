"""The portal's own application: its permissions (one home, pages included), which of them
a tenant granted, and the current service principal of an application in a tenant."""

import uuid

import pytest
from django.template import Context, Template, TemplateSyntaxError
from django.utils import timezone

from permissions.catalog import catalog_import_starter
from permissions.models import Permission
from tenants.portal_app import (
    OWN_PERMISSIONS,
    READ_NEEDS,
    READ_PERMISSIONS,
    WRITE_PERMISSIONS,
    is_portal_app,
    portal_app_id,
    portal_can_write,
    portal_permissions_held,
    portal_service_principal,
)
from tenants.selectors import current_service_principal
from tests.factories import GrantFactory, ServicePrincipalFactory, SyncRunFactory, TenantFactory
from tests.ids import PORTAL_APP


@pytest.fixture(autouse=True)
def _portal_app(settings):
    settings.PORTAL_CLIENT_ID = PORTAL_APP


def test_read_mode_asks_for_two_permissions_and_revoke_mode_adds_the_two_that_write():
    assert READ_PERMISSIONS == ("Application.Read.All", "Directory.Read.All")
    assert WRITE_PERMISSIONS == (
        "AppRoleAssignment.ReadWrite.All",
        "DelegatedPermissionGrant.ReadWrite.All",
    )
    assert READ_NEEDS == "Application.Read.All (or Directory.Read.All)"


@pytest.mark.django_db
def test_the_permissions_ids_are_microsoft_graphs_app_role_ids():
    catalog_import_starter()
    catalog = dict(
        Permission.objects.filter(
            kind="application", value__in=[p.value for p in OWN_PERMISSIONS]
        ).values_list("value", "graph_id")
    )
    assert {p.value: uuid.UUID(p.graph_id) for p in OWN_PERMISSIONS} == catalog


def test_the_portal_app_is_known_by_its_client_id_in_any_spelling(settings):
    assert portal_app_id() == uuid.UUID(PORTAL_APP)
    assert is_portal_app(uuid.UUID(PORTAL_APP)) and is_portal_app(PORTAL_APP.upper())
    assert not is_portal_app(uuid.uuid4())
    settings.PORTAL_CLIENT_ID = "not-configured"
    assert portal_app_id() is None and not is_portal_app(PORTAL_APP)


@pytest.mark.django_db
def test_the_current_service_principal_is_the_one_the_latest_sync_still_saw():
    tenant = TenantFactory()
    app_id = uuid.uuid4()
    ServicePrincipalFactory(tenant=tenant, app_id=app_id, removed_at=timezone.now())
    current = ServicePrincipalFactory(tenant=tenant, app_id=app_id)
    ServicePrincipalFactory(app_id=app_id)  # the same application in another tenant

    assert current_service_principal(tenant=tenant, app_id=app_id) == current
    assert current_service_principal(tenant=tenant, app_id=uuid.uuid4()) is None


@pytest.mark.django_db
def test_a_service_principal_removed_from_the_tenant_is_not_current():
    tenant = TenantFactory()
    gone = ServicePrincipalFactory(tenant=tenant, removed_at=timezone.now())
    assert current_service_principal(tenant=tenant, app_id=gone.app_id) is None


def grant_portal(tenant, *values, removed=False):
    portal = ServicePrincipalFactory(
        tenant=tenant,
        app_id=PORTAL_APP,
        removed_at=timezone.now() if removed else None,
    )
    for value in values:
        GrantFactory(client=portal, value=value)
    return portal


@pytest.mark.django_db
def test_revoke_mode_needs_both_write_permissions_and_a_good_sync():
    tenant = TenantFactory()
    portal = grant_portal(tenant, *READ_PERMISSIONS, WRITE_PERMISSIONS[0])
    assert portal_service_principal(tenant) == portal
    assert portal_permissions_held(tenant) == {*READ_PERMISSIONS, WRITE_PERMISSIONS[0]}
    tenant.last_good_sync = SyncRunFactory(tenant=tenant, succeeded=True)
    assert not portal_can_write(tenant)

    GrantFactory(client=portal, value=WRITE_PERMISSIONS[1])
    assert portal_can_write(tenant)
    tenant.last_good_sync = None
    assert not portal_can_write(tenant)


@pytest.mark.django_db
def test_what_a_removed_service_principal_held_does_not_count():
    tenant = TenantFactory(last_good_sync=None)
    grant_portal(tenant, *WRITE_PERMISSIONS, removed=True)
    tenant.last_good_sync = SyncRunFactory(tenant=tenant, succeeded=True)
    assert portal_service_principal(tenant) is None
    assert portal_permissions_held(tenant) == set()
    assert not portal_can_write(tenant)


def test_templates_name_the_permissions_from_the_same_place():
    template = Template(
        '{% load portal_app %}{% portal_permissions "write" as names %}{{ names|join:"," }}'
    )
    assert template.render(Context()) == ",".join(WRITE_PERMISSIONS)
    with pytest.raises(TemplateSyntaxError, match="'writ' is not read or write"):
        Template('{% load portal_app %}{% portal_permissions "writ" %}').render(Context())
