"""The portal's own application in the tenants it watches: its appId, the Microsoft Graph
application permissions it asks for, and which of them a tenant granted.

Every page, message and check that names one of these permissions takes it from here.
Read mode is what connecting a tenant grants; revoke mode adds the two write permissions,
which a tenant grants when it wants revokes in one click.
"""

from dataclasses import dataclass
from uuid import UUID

from django.conf import settings

from permissions.models import MICROSOFT_GRAPH_APP_ID, PermissionKind
from tenants.models import Grant, ServicePrincipal, Tenant
from tenants.selectors import current_service_principal


@dataclass(frozen=True)
class OwnPermission:
    """One Microsoft Graph application permission (app role) of the portal's app."""

    value: str
    # The app role's id, the same in every tenant.
    graph_id: str
    # Revoke mode's: it changes grants. The others only read.
    writes: bool
    # What it lets the portal do, as the health page says it.
    enables: str


APPLICATION_READ = OwnPermission(
    value="Application.Read.All",
    graph_id="9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
    writes=False,
    enables="Read mode: lists service principals and the application permissions they hold.",
)
DIRECTORY_READ = OwnPermission(
    value="Directory.Read.All",
    graph_id="7ab1d382-f21e-4acd-a863-ba3e13f7da61",
    writes=False,
    enables="Read mode: reads delegated grants and the organization's name and domain.",
)
# Not asked for: Directory.Read.All covers it, but a tenant may grant this one instead.
DELEGATED_GRANTS_READ = OwnPermission(
    value="DelegatedPermissionGrant.Read.All",
    graph_id="81b4724a-58aa-41c1-8a55-84ef97466587",
    writes=False,
    enables=f"Reads delegated grants; enough instead of {DIRECTORY_READ.value} for them.",
)
APP_ROLE_ASSIGNMENTS_WRITE = OwnPermission(
    value="AppRoleAssignment.ReadWrite.All",
    graph_id="06b708a9-e830-4db3-a914-8e69da51d44f",
    writes=True,
    enables="Revoke mode: takes application permissions away in one click.",
)
DELEGATED_GRANTS_WRITE = OwnPermission(
    value="DelegatedPermissionGrant.ReadWrite.All",
    graph_id="8e8e4742-1d95-4f68-9d56-6ee75648c72a",
    writes=True,
    enables="Revoke mode: takes delegated permissions away in one click.",
)

# Every one of them, in the order the health page lists them.
OWN_PERMISSIONS = (
    APPLICATION_READ,
    DIRECTORY_READ,
    DELEGATED_GRANTS_READ,
    APP_ROLE_ASSIGNMENTS_WRITE,
    DELEGATED_GRANTS_WRITE,
)
# What connecting a tenant asks for (read mode), and what revoke mode adds.
READ_PERMISSIONS = (APPLICATION_READ.value, DIRECTORY_READ.value)
WRITE_PERMISSIONS = tuple(p.value for p in OWN_PERMISSIONS if p.writes)

# What a refused Graph call says the portal lacks (GraphClient's ``needs``).
READ_NEEDS = f"{APPLICATION_READ.value} (or {DIRECTORY_READ.value})"
DELEGATED_READ_NEEDS = f"{DELEGATED_GRANTS_READ.value} (or {DIRECTORY_READ.value})"
WRITE_NEEDS = " and ".join(WRITE_PERMISSIONS)


def portal_app_id() -> UUID | None:
    """The portal's own appId (``PORTAL_CLIENT_ID``), or None when it is not a GUID."""
    try:
        return UUID(str(settings.PORTAL_CLIENT_ID).strip())
    except ValueError:
        return None


def is_portal_app(app_id: UUID | str) -> bool:
    portal = portal_app_id()
    return portal is not None and str(app_id).lower() == str(portal)


def portal_service_principal(tenant: Tenant) -> ServicePrincipal | None:
    """The portal's own service principal in the tenant, as the latest sync saw it."""
    app_id = portal_app_id()
    if app_id is None:
        return None
    return current_service_principal(tenant=tenant, app_id=app_id)


def portal_permissions_held(tenant: Tenant) -> set[str]:
    """The Graph application permissions the portal's app holds in the tenant, as the
    latest sync saw them."""
    app_id = portal_app_id()
    if app_id is None:
        return set()
    return set(
        Grant.objects.filter(
            tenant=tenant,
            removed_in_run__isnull=True,
            client__app_id=app_id,
            client__removed_at__isnull=True,
            kind=PermissionKind.APPLICATION,
            resource_app_id=MICROSOFT_GRAPH_APP_ID,
        ).values_list("value", flat=True)
    )


def portal_can_write(tenant: Tenant) -> bool:
    """Whether the latest good sync saw the portal's own app holding both write rights."""
    if tenant.last_good_sync_id is None:
        return False
    return set(WRITE_PERMISSIONS) <= portal_permissions_held(tenant)
