"""Fixtures of the tenant pages' tests. The cast (alice, bob, charlie, erin, oscar, each
with a signed-in ``<name>_client``) and their tenants are in tests/conftest.py."""

import pytest

from permissions.models import Permission, Tier
from tests.factories import PermissionFactory


@pytest.fixture
def control_plane(db) -> Permission:
    return PermissionFactory(value="RoleManagement.ReadWrite.Directory", tier=Tier.CONTROL_PLANE)
