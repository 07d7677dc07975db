"""Whose application it is, as the tenant sees it: what the pages show as its kind, what
the risk score weighs and the report's ``kind``. A module of its own, importing only the
models, so that the report, the facts and the risk score can all use it."""

from permissions.risk import Ownership
from tenants.models import ServicePrincipal, Tenant


def ownership_of(*, tenant: Tenant, service_principal: ServicePrincipal) -> Ownership:
    sp = service_principal
    if sp.is_managed_identity:
        return Ownership.MANAGED_IDENTITY
    if sp.app_owner_tenant_id is None:
        return Ownership.UNKNOWN
    if sp.is_first_party:
        return Ownership.MICROSOFT
    if sp.app_owner_tenant_id == tenant.tenant_id:
        return Ownership.OWN
    return Ownership.THIRD_PARTY
