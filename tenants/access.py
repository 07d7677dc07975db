"""Who may see and change what: every tenant-scoped view and query goes through here.

A signed-in user belongs to the onboarded tenant whose id is their token's ``tid``, with
the portal app role Entra gave them there: ``Portal.Admin`` may change things,
``Portal.Reader`` may look and ask. Users of the operator tenant
(``PORTAL_OPERATOR_TENANT_ID``) with ``Portal.Operator`` see every tenant; they may change
things where they also hold ``Portal.Admin``. Superusers (Django admin) may do anything.

Outsiders get 404, so a tenant's existence is not disclosed; readers get 403 on writes.
"""

from enum import StrEnum
from uuid import UUID

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from tenants.models import Tenant

PORTAL_ADMIN = "Portal.Admin"
PORTAL_READER = "Portal.Reader"
PORTAL_OPERATOR = "Portal.Operator"


class Role(StrEnum):
    ADMIN = "admin"
    READER = "reader"


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


def is_operator(user) -> bool:  # a User or AnonymousUser
    operator_tenant = _guid(settings.PORTAL_OPERATOR_TENANT_ID)
    return bool(
        user.is_authenticated
        and operator_tenant
        and home_tenant_id(user) == operator_tenant
        and PORTAL_OPERATOR in user.entra_roles
    )


def role_in(user, tenant: Tenant) -> Role | None:
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    roles = set(user.entra_roles or [])
    home = home_tenant_id(user) == tenant.tenant_id
    if (home or is_operator(user)) and PORTAL_ADMIN in roles:
        return Role.ADMIN
    if (home and PORTAL_READER in roles) or is_operator(user):
        return Role.READER
    return None


def visible_tenants(user) -> QuerySet[Tenant]:
    tenants = Tenant.objects.all()
    if user.is_authenticated and (user.is_superuser or is_operator(user)):
        return tenants
    if not user.is_authenticated or not (
        {PORTAL_ADMIN, PORTAL_READER} & set(user.entra_roles or [])
    ):
        return tenants.none()
    home = home_tenant_id(user)
    return tenants.filter(tenant_id=home) if home else tenants.none()


def tenant_for(user, tenant_id: UUID, *, write: bool = False) -> tuple[Tenant, Role]:
    """The tenant if ``user`` may see it (else 404), and may change it when ``write`` (else 403)."""
    tenant = Tenant.objects.select_related("last_good_sync").filter(tenant_id=tenant_id).first()
    role = role_in(user, tenant) if tenant else None
    if tenant is None or role is None:
        raise Http404("No such tenant")
    if write and role != Role.ADMIN:
        raise PermissionDenied("Only the tenant's admins can change this")
    return tenant, role
