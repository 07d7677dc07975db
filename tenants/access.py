"""Who may see and change what: every tenant-scoped view and query goes through here.

A signed-in user belongs to the onboarded tenant whose id is their token's ``tid``, with
the portal app role Entra gave them there: ``Portal.Admin`` may change things,
``Portal.Reader`` may look and ask; or with the role their Entra directory role gives
(``wids``, :data:`DIRECTORY_ROLE_ADMINS`, :data:`DIRECTORY_ROLE_READERS`): the higher of
the two counts. Users of the operator tenant
(``PORTAL_OPERATOR_TENANT_ID``) with ``Portal.Operator`` see every tenant; an operator who
also holds ``Portal.Admin`` there is an *operator admin*, who may change things (approve,
revoke, undo) in every tenant. Superusers (Django admin) may do anything.

Outsiders get 404, so a tenant's existence is not disclosed; readers get 403 on writes.
Every object a view names by id is found through one helper here (``tenant_for``,
``run_for``, ``revoke_request_for``, ``service_principal_for``), which looks for it only
inside a tenant the user may see.
"""

from collections.abc import Iterable
from enum import StrEnum
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from portal.models import User
from tenants.models import RevokeRequest, ServicePrincipal, SyncRun, Tenant
from tenants.selectors import current_service_principal

PORTAL_ADMIN = "Portal.Admin"
PORTAL_READER = "Portal.Reader"
PORTAL_OPERATOR = "Portal.Operator"

# Entra's built-in directory roles by role template id (the same in every tenant; the id
# token's ``wids``), and the portal role each gives in the user's own tenant: those who
# may consent for the tenant, or manage its applications, administer it here; its
# tenant-wide readers read. Never Portal.Operator: that one is an app role only.
DIRECTORY_ROLE_ADMINS = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
    "158c047a-c907-4556-b7ef-446551a6b5f7": "Cloud Application Administrator",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": "Application Administrator",
}
DIRECTORY_ROLE_READERS = {
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451": "Global Reader",
    "5d6b6bb7-de71-4623-b4af-96380a352509": "Security Reader",
}


class Role(StrEnum):
    ADMIN = "admin"
    READER = "reader"


def directory_portal_roles(wids: Iterable[str]) -> list[str]:
    """The portal roles that these directory role template ids give (the higher only)."""
    held = {str(role_id).lower() for role_id in wids}
    if held & DIRECTORY_ROLE_ADMINS.keys():
        return [PORTAL_ADMIN]
    if held & DIRECTORY_ROLE_READERS.keys():
        return [PORTAL_READER]
    return []


def _guid(value: str | None) -> UUID | None:
    try:
        return UUID(value or "")
    except ValueError:
        return None


def home_tenant_id(user) -> UUID | None:  # a User or AnonymousUser
    """The id of the tenant the user signed in from (their token's ``tid``); None for
    anyone who did not sign in with Entra (a local superuser, an anonymous visitor)."""
    return _guid(getattr(user, "entra_tenant_id", None))


def home_tenant(user) -> Tenant | None:
    """The onboarded tenant the user signed in from, if any."""
    tenant_id = home_tenant_id(user)
    return Tenant.objects.filter(tenant_id=tenant_id).first() if tenant_id else None


def is_operator(user: User | AnonymousUser) -> bool:
    operator_tenant = _guid(settings.PORTAL_OPERATOR_TENANT_ID)
    return bool(
        user.is_authenticated
        and operator_tenant
        and home_tenant_id(user) == operator_tenant
        and PORTAL_OPERATOR in user.entra_roles
    )


def role_in(user: User | AnonymousUser, tenant: Tenant) -> Role | None:
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    # In their own tenant, every role they hold there; elsewhere (an operator's view),
    # only the app roles: a directory role speaks for its own tenant alone.
    home = home_tenant_id(user) == tenant.tenant_id
    roles = user.portal_roles if home else frozenset()
    operator = is_operator(user)
    if PORTAL_ADMIN in roles or (operator and PORTAL_ADMIN in user.entra_roles):
        return Role.ADMIN
    if PORTAL_READER in roles or operator:
        return Role.READER
    return None


def visible_tenants(user: User | AnonymousUser) -> QuerySet[Tenant]:
    tenants = Tenant.objects.all()
    if user.is_authenticated and (user.is_superuser or is_operator(user)):
        return tenants
    if not user.is_authenticated or not ({PORTAL_ADMIN, PORTAL_READER} & user.portal_roles):
        return tenants.none()
    home = home_tenant_id(user)
    return tenants.filter(tenant_id=home) if home else tenants.none()


def decides_revokes(user: User | AnonymousUser) -> bool:
    """Whether the approval queue is for this user: an operator (who reads every tenant's
    queue, and decides where an operator admin), a superuser, or an admin of their home
    tenant. Asks no query (every page's nav asks it): whether that tenant is onboarded is
    the access notice's business, which closes the nav's tenant pages."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser or is_operator(user):
        return True
    return home_tenant_id(user) is not None and PORTAL_ADMIN in user.portal_roles


def has_portal_role(user: User) -> bool:
    """Whether the user sees some tenant (a portal role in an onboarded tenant), is an
    operator or a superuser: who may read the catalog and the applications' pages."""
    if not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or is_operator(user) or visible_tenants(user).exists()


def tenant_for(user: User, tenant_id: UUID, *, write: bool = False) -> tuple[Tenant, Role]:
    """The tenant if ``user`` may see it (else 404), and may change it when ``write`` (else 403)."""
    tenant = Tenant.objects.select_related("last_good_sync").filter(tenant_id=tenant_id).first()
    role = role_in(user, tenant) if tenant else None
    if tenant is None or role is None:
        raise Http404("No such tenant")
    if write and role != Role.ADMIN:
        raise PermissionDenied("Only the tenant's admins can change this")
    return tenant, role


# Each helper below finds its object through the tenant's related manager, so the object's
# ``tenant`` is the one tenant_for checked, without another query.


def run_for(
    user: User, tenant_id: UUID, run_id: int, *, write: bool = False
) -> tuple[SyncRun, Role]:
    """A sync run of a tenant the user may see (else 404), as :func:`tenant_for`."""
    tenant, role = tenant_for(user, tenant_id, write=write)
    run = tenant.sync_runs.filter(pk=run_id).first()
    if run is None:
        raise Http404("No such sync run in this tenant")
    return run, role


def revoke_request_for(
    user: User, tenant_id: UUID, revoke_id: int, *, write: bool = False
) -> tuple[RevokeRequest, Role]:
    """A revoke request of a tenant the user may see (else 404), as :func:`tenant_for`;
    with the people and the run its block names."""
    tenant, role = tenant_for(user, tenant_id, write=write)
    related = ("client", "requested_by", "decided_by", "regranted_in_run")
    revoke = tenant.revoke_requests.select_related(*related).filter(pk=revoke_id).first()
    if revoke is None:
        raise Http404("No such revoke request in this tenant")
    return revoke, role


def service_principal_for(
    user: User, tenant_id: UUID, app_id: UUID, *, write: bool = False
) -> tuple[ServicePrincipal, Role]:
    """The application's current service principal in a tenant the user may see (else
    404), as :func:`tenant_for`. One that a sync found removed is gone from the tenant."""
    tenant, role = tenant_for(user, tenant_id, write=write)
    sp = current_service_principal(tenant=tenant, app_id=app_id)
    if sp is None:
        raise Http404("No such application in this tenant")
    sp.tenant = tenant  # the checked one: no second query for it
    return sp, role
