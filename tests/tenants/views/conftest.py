"""Fixtures of the tenant pages' tests: Contoso and Fabrikam, and the cast signed in.

alice is an admin and bob a reader of Contoso, charlie an admin of Fabrikam, oscar an
operator. A test module may define a fixture of the same name for its own needs.
"""

import pytest
from django.test import Client

from permissions.models import Permission, Tier
from tenants.models import Tenant
from tests.factories import PermissionFactory, TenantFactory
from tests.tenants.views.helpers import CONTOSO, OPERATOR_TENANT, member, signed_in


@pytest.fixture(autouse=True)
def _operator_tenant(settings):
    settings.PORTAL_OPERATOR_TENANT_ID = OPERATOR_TENANT


@pytest.fixture
def contoso(db) -> Tenant:
    return TenantFactory(
        name="Contoso", tenant_id=CONTOSO, default_domain="contoso.onmicrosoft.com"
    )


@pytest.fixture
def fabrikam(db) -> Tenant:
    return TenantFactory(name="Fabrikam")


@pytest.fixture
def admin(contoso) -> Client:
    """alice, an admin of Contoso."""
    return signed_in(member("alice", contoso, "Portal.Admin"))


@pytest.fixture
def reader(contoso) -> Client:
    """bob, a reader of Contoso."""
    return signed_in(member("bob", contoso, "Portal.Reader"))


@pytest.fixture
def outsider(fabrikam) -> Client:
    """charlie, an admin of Fabrikam."""
    return signed_in(member("charlie", fabrikam, "Portal.Admin"))


@pytest.fixture
def operator(db) -> Client:
    """oscar, an operator: reads every tenant."""
    return signed_in(member("oscar", OPERATOR_TENANT, "Portal.Operator"))


@pytest.fixture
def sent(monkeypatch) -> list[int]:
    """Run ids sent to the sync task, instead of a broker."""
    run_ids: list[int] = []
    monkeypatch.setattr("tenants.tasks.sync_tenant.delay", run_ids.append)
    return run_ids


@pytest.fixture
def control_plane(db) -> Permission:
    return PermissionFactory(value="RoleManagement.ReadWrite.Directory", tier=Tier.CONTROL_PLANE)
