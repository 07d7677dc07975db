"""The risk score of an application in a tenant, from what the portal reads today.

The rule is permissions/risk.py's; this gathers its evidence from what the application's
page has loaded already (no query of its own). What the sync does not read yet (sign-in
owners, credentials, publisher verification, an own app's sign-in audience) is
passed as unknown, so the page says so instead of guessing.
"""

from django.conf import settings

from permissions.risk import HeldPermission, Ownership, RiskAssessment, RiskEvidence, assess
from tenants.models import ServicePrincipal, Tenant
from tenants.selectors import ApplicationInTenant
from tenants.signins import is_inactive, sign_in_known


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


def application_risk(
    *, tenant: Tenant, service_principal: ServicePrincipal, detail: ApplicationInTenant
) -> RiskAssessment:
    ownership = ownership_of(tenant=tenant, service_principal=service_principal)
    held = tuple(
        HeldPermission(
            value=grant.finding.permission.value,
            kind=grant.finding.permission.kind,
            tier=grant.permission.tier if grant.permission else "",
            privilege_level=grant.permission.privilege_level if grant.permission else None,
            resource_app_id=grant.finding.permission.resource_app_id,
        )
        for grant in detail.grants
    )
    return assess(
        RiskEvidence(
            permissions=held,
            unused=detail.counts.unused,
            unexplained=detail.counts.unexplained,
            ownership=ownership,
            # An app registered in another organization is multi-tenant, or it could not
            # be in this tenant; an own app's audience is not read yet.
            multi_tenant=True if ownership == Ownership.THIRD_PARTY else None,
            # Unknown where the tenant's sign-in activity cannot be read.
            inactive=is_inactive(service_principal.last_sign_in_at)
            if sign_in_known(tenant)
            else None,
            inactive_days=settings.INACTIVE_DAYS,
        )
    )
