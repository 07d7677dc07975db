import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404

from tenants.access import Role, home_tenant, role_in, tenant_for, visible_tenants
from tests.factories import UserFactory
from tests.ids import NORTHWIND

pytestmark = pytest.mark.django_db


def test_an_admin_of_a_tenant_may_change_it_and_nothing_else(alice, contoso, fabrikam):
    assert tenant_for(alice, contoso.tenant_id, write=True) == (contoso, Role.ADMIN)
    with pytest.raises(Http404):
        tenant_for(alice, fabrikam.tenant_id)
    assert list(visible_tenants(alice)) == [contoso]


def test_a_reader_sees_their_tenant_but_may_not_change_it(bob, contoso):
    assert tenant_for(bob, contoso.tenant_id) == (contoso, Role.READER)
    with pytest.raises(PermissionDenied):
        tenant_for(bob, contoso.tenant_id, write=True)


def test_a_user_without_a_portal_role_sees_nothing(erin, contoso):
    assert role_in(erin, contoso) is None
    assert not visible_tenants(erin).exists()


def test_an_operator_reads_every_tenant_and_changes_them_only_as_admin(oscar, contoso, fabrikam):
    assert set(visible_tenants(oscar)) == {contoso, fabrikam}
    assert role_in(oscar, fabrikam) == Role.READER
    oscar.entra_roles = ["Portal.Operator", "Portal.Admin"]
    assert role_in(oscar, fabrikam) == Role.ADMIN


def test_the_operator_role_counts_only_in_the_operator_tenant(oscar, contoso, fabrikam):
    # oscar makes Contoso the operator tenant; the same role from Fabrikam counts for nothing.
    mallory = UserFactory(entra_tenant_id=str(fabrikam.tenant_id), entra_roles=["Portal.Operator"])
    assert role_in(mallory, contoso) is None
    assert list(visible_tenants(mallory)) == []


def test_anonymous_users_see_no_tenant(contoso):
    assert role_in(AnonymousUser(), contoso) is None
    assert not visible_tenants(AnonymousUser()).exists()


def test_the_home_tenant_is_the_onboarded_tenant_a_user_signed_in_from(alice, contoso):
    assert home_tenant(alice) == contoso
    # Entra's tid is a GUID in any case; the portal stores it lower case.
    assert home_tenant(UserFactory(entra_tenant_id=str(contoso.tenant_id).upper())) == contoso
    assert home_tenant(UserFactory(entra_tenant_id=NORTHWIND)) is None


def test_a_local_account_or_a_visitor_has_no_home_tenant():
    assert home_tenant(UserFactory(entra_tenant_id="")) is None
    assert home_tenant(UserFactory(entra_tenant_id="contoso.onmicrosoft.com")) is None
    assert home_tenant(AnonymousUser()) is None
