import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404

from portal.models import User
from tenants.access import Role, home_tenant, role_in, tenant_for, visible_tenants
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

OPERATOR_TENANT = "1e1a0801-7f55-46e2-9fb2-3b09766f2844"


@pytest.fixture(autouse=True)
def _operator_tenant(settings):
    settings.PORTAL_OPERATOR_TENANT_ID = OPERATOR_TENANT


def user(name: str, tenant, *roles: str) -> User:
    return User.objects.create(username=name, entra_tenant_id=str(tenant), entra_roles=list(roles))


def test_an_admin_of_a_tenant_may_change_it_and_nothing_else():
    contoso, fabrikam = TenantFactory(), TenantFactory()
    alice = user("alice", contoso.tenant_id, "Portal.Admin")
    assert tenant_for(alice, contoso.tenant_id, write=True) == (contoso, Role.ADMIN)
    with pytest.raises(Http404):
        tenant_for(alice, fabrikam.tenant_id)
    assert list(visible_tenants(alice)) == [contoso]


def test_a_reader_sees_their_tenant_but_may_not_change_it():
    contoso = TenantFactory()
    bob = user("bob", contoso.tenant_id, "Portal.Reader")
    assert tenant_for(bob, contoso.tenant_id) == (contoso, Role.READER)
    with pytest.raises(PermissionDenied):
        tenant_for(bob, contoso.tenant_id, write=True)


def test_a_user_without_a_portal_role_sees_nothing():
    contoso = TenantFactory()
    erin = user("erin", contoso.tenant_id)
    assert role_in(erin, contoso) is None
    assert not visible_tenants(erin).exists()


def test_an_operator_reads_every_tenant_and_changes_them_only_as_admin():
    contoso, fabrikam = TenantFactory(), TenantFactory()
    oscar = user("oscar", OPERATOR_TENANT, "Portal.Operator")
    assert set(visible_tenants(oscar)) == {contoso, fabrikam}
    assert role_in(oscar, fabrikam) == Role.READER
    oscar.entra_roles = ["Portal.Operator", "Portal.Admin"]
    assert role_in(oscar, fabrikam) == Role.ADMIN


def test_the_operator_role_counts_only_in_the_operator_tenant():
    contoso, fabrikam = TenantFactory(), TenantFactory()
    mallory = user("mallory", contoso.tenant_id, "Portal.Operator")
    assert role_in(mallory, fabrikam) is None
    assert list(visible_tenants(mallory)) == []


def test_anonymous_users_see_no_tenant():
    contoso = TenantFactory()
    assert role_in(AnonymousUser(), contoso) is None
    assert not visible_tenants(AnonymousUser()).exists()


def test_the_home_tenant_is_the_onboarded_tenant_a_user_signed_in_from():
    contoso = TenantFactory()
    assert home_tenant(user("alice", contoso.tenant_id)) == contoso
    # Entra's tid is a GUID in any case; the portal stores it lower case.
    assert home_tenant(user("bob", str(contoso.tenant_id).upper())) == contoso
    assert home_tenant(user("erin", "9f3e40bb-3dc9-471b-bf34-13d1dc7ea28b")) is None


def test_a_local_account_or_a_visitor_has_no_home_tenant():
    assert home_tenant(user("root", "")) is None
    assert home_tenant(user("odd", "contoso.onmicrosoft.com")) is None
    assert home_tenant(AnonymousUser()) is None
