"""What the digests' tests share besides the story (conftest.py)."""

from tenants.models import Grant, ServicePrincipal, SyncRun
from tests.factories import GrantFactory

CONTROL_PLANE = "RoleManagement.ReadWrite.Directory"


def grant(rooms: ServicePrincipal, value: str, run: SyncRun) -> Grant:
    """``rooms`` holds ``value`` from ``run`` on."""
    return GrantFactory(client=rooms, value=value, first_seen_run=run)
