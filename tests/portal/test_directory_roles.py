"""Entra directory roles (the id token's ``wids``) as portal roles: a Global Administrator
who connects their tenant gets in as its admin; a Global Reader reads. Against the
emulator's sign-in, whose demo registration asks for directory roles
(groupMembershipClaims: DirectoryRole) and whose tenant admins are Global Administrators."""

import uuid

import pytest
import yaml
from django.test import Client
from django.utils import timezone

from emulator.scenario import SCENARIOS_DIR
from portal.models import User
from portal.views import AccessNotice, access_notice
from tenants.access import (
    DIRECTORY_ROLE_ADMINS,
    DIRECTORY_ROLE_READERS,
    PORTAL_ADMIN,
    PORTAL_READER,
    Role,
    directory_portal_roles,
    role_in,
    visible_tenants,
)
from tenants.memberships import RoleHolders, role_holders_apply
from tests.factories import TenantFactory
from tests.ids import NORTHWIND, PORTAL_APP
from tests.portal.helpers import PORTAL_HOST, sign_in

GLOBAL_READER = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"
DEFAULT_USER_ROLE = "b79fbf4d-3ef9-4689-8143-76b194e85509"


@pytest.fixture
def northwind(db):
    return TenantFactory(tenant_id=uuid.UUID(NORTHWIND), name="Northwind")


@pytest.fixture
def portal(settings, contoso, northwind) -> Client:
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    return Client(HTTP_HOST=PORTAL_HOST)


def signed_in_user(portal: Client) -> User:
    return User.objects.get(pk=portal.session["_auth_user_id"])


def demo_scenario() -> dict:
    return yaml.safe_load((SCENARIOS_DIR / "demo.yaml").read_text())


def test_each_admin_role_makes_a_portal_admin_and_each_reader_role_a_reader():
    for role_id in DIRECTORY_ROLE_ADMINS:
        assert directory_portal_roles([DEFAULT_USER_ROLE, role_id.upper()]) == [PORTAL_ADMIN]
    for role_id in DIRECTORY_ROLE_READERS:
        assert directory_portal_roles([role_id]) == [PORTAL_READER]
    # The higher wins; other roles (the default User role) give nothing.
    assert directory_portal_roles([GLOBAL_READER, *DIRECTORY_ROLE_ADMINS]) == [PORTAL_ADMIN]
    assert directory_portal_roles([DEFAULT_USER_ROLE]) == []


def test_a_global_administrator_without_an_app_role_is_an_admin_of_their_tenant(
    emu, portal, browser, contoso, northwind
):
    done = sign_in(portal, browser, "nina@northwind.onmicrosoft.com")

    nina = signed_in_user(portal)
    assert (nina.entra_roles, nina.directory_roles) == ([], [PORTAL_ADMIN])
    assert role_in(nina, northwind) == Role.ADMIN
    # Only in the tenant she signed in to: never in another.
    assert role_in(nina, contoso) is None
    assert list(visible_tenants(nina)) == [northwind]
    assert done["Location"] != "/access/" and access_notice(nina) is None


def test_a_global_reader_reads(emu, portal, browser, northwind):
    scenario = demo_scenario()
    tenant = next(t for t in scenario["tenants"] if t["id"] == NORTHWIND)
    ivan = next(u for u in tenant["users"] if u["upn"].startswith("ivan@"))
    ivan["directory_roles"] = [GLOBAL_READER]
    emu.load(scenario)

    sign_in(portal, browser, "ivan@northwind.onmicrosoft.com")

    assert role_in(signed_in_user(portal), northwind) == Role.READER


def test_no_wids_without_the_registration_asking_for_them(emu, portal, browser, northwind):
    scenario = demo_scenario()
    app = next(a for a in scenario["applications"] if a["app_id"] == PORTAL_APP)
    del app["group_membership_claims"]
    emu.load(scenario)

    sign_in(portal, browser, "nina@northwind.onmicrosoft.com")

    nina = signed_in_user(portal)
    assert nina.directory_roles == [] and role_in(nina, northwind) is None
    assert access_notice(nina) == AccessNotice.NO_ROLE


def test_the_setting_turns_directory_roles_off(emu, portal, browser, northwind, settings):
    settings.ENTRA_DIRECTORY_ROLES = False

    sign_in(portal, browser, "nina@northwind.onmicrosoft.com")

    nina = signed_in_user(portal)
    assert nina.directory_roles == [] and role_in(nina, northwind) is None
    # Switched off later, roles already stored count no more either.
    nina.directory_roles = [PORTAL_ADMIN]
    assert role_in(nina, northwind) is None


def test_a_sync_reading_app_roles_leaves_directory_roles_alone(northwind):
    nina = User.objects.create(
        username="nina",
        entra_tenant_id=NORTHWIND,
        entra_object_id="11111111-1111-1111-1111-111111111111",
        entra_roles=[PORTAL_READER],
        directory_roles=[PORTAL_ADMIN],
    )

    # The sync finds no app role holder: nina's app role goes, her directory role stays.
    role_holders_apply(tenant=northwind, holders=RoleHolders({}, timezone.now()))

    nina.refresh_from_db()
    assert (nina.entra_roles, nina.directory_roles) == ([], [PORTAL_ADMIN])
    assert role_in(nina, northwind) == Role.ADMIN


def test_an_operators_directory_role_gives_nothing_in_other_tenants(oscar, fabrikam):
    oscar.directory_roles = [PORTAL_ADMIN]  # a Global Administrator of the operator tenant

    # Operators read every tenant; admin elsewhere only with the Portal.Admin app role.
    assert role_in(oscar, fabrikam) == Role.READER
