"""The risk score of an application in a tenant, from what the portal reads today.

The rule is permissions/risk.py's; this gathers its evidence from what the application's
page has loaded already, and one query of its credentials. Evidence the sync has not read
(tenants.facts: owners, credentials, publisher verification, an own app's sign-in
audience; tenants.signins: sign-in activity) is passed as unknown, so the page says so
instead of guessing.
"""

from collections.abc import Sequence

from django.conf import settings

from permissions.risk import HeldPermission, Ownership, RiskAssessment, RiskEvidence, assess
from tenants.models import Credential, ServicePrincipal, Tenant
from tenants.ownership import ownership_of
from tenants.selectors import ApplicationInTenant
from tenants.signins import is_inactive, sign_in_known


def application_risk(
    *,
    tenant: Tenant,
    service_principal: ServicePrincipal,
    detail: ApplicationInTenant,
    credentials: Sequence[Credential] | None = None,
) -> RiskAssessment:
    """``credentials``: the application's, where the caller has loaded them already (else
    one query asks whether any is on the service principal)."""
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
    return risk_assess(
        tenant=tenant,
        service_principal=service_principal,
        held=held,
        unused=detail.counts.unused,
        unexplained=detail.counts.unexplained,
        # Not asked before a sync has read the application's facts: it would count nothing.
        credentials_on_sp=service_principal.owners is not None
        and _credentials_on_sp(tenant, service_principal, credentials),
    )


def risk_assess(
    *,
    tenant: Tenant,
    service_principal: ServicePrincipal,
    held: tuple[HeldPermission, ...],
    unused: int,
    unexplained: int,
    credentials_on_sp: bool,
) -> RiskAssessment:
    """The score of one application in a tenant from what it holds, its revoke candidates
    and its service principal's facts: the application page's and the stored findings'
    (tenants.findings) one way of gathering the evidence. ``credentials_on_sp`` counts only
    once a sync has read the application's facts (its owners); until then it is unknown."""
    ownership = ownership_of(tenant=tenant, service_principal=service_principal)
    sp_owners = service_principal.owners
    return assess(
        RiskEvidence(
            permissions=held,
            unused=unused,
            unexplained=unexplained,
            ownership=ownership,
            multi_tenant=_multi_tenant(ownership, service_principal),
            publisher_verified=service_principal.verified_publisher,
            # Owners are None until a sync has read them: unknown, not "no owner".
            has_owner=None if sp_owners is None else bool(sp_owners),
            credentials_on_service_principal=None if sp_owners is None else credentials_on_sp,
            # Unknown where the tenant's sign-in activity cannot be read.
            inactive=is_inactive(service_principal.last_sign_in_at)
            if sign_in_known(tenant)
            else None,
            inactive_days=settings.INACTIVE_DAYS,
        )
    )


def _credentials_on_sp(
    tenant: Tenant, sp: ServicePrincipal, credentials: Sequence[Credential] | None
) -> bool:
    if credentials is not None:
        return any(not credential.on_application for credential in credentials)
    return Credential.objects.filter(
        tenant=tenant, service_principal=sp, on_application=False
    ).exists()


# The sign-in audiences that let other organizations' users sign in.
MULTI_TENANT_AUDIENCES = frozenset({"azureadmultipleorgs", "azureadandpersonalmicrosoftaccount"})


def _multi_tenant(ownership: Ownership, sp: ServicePrincipal) -> bool | None:
    # An app registered in another organization is multi-tenant, or it could not be in
    # this tenant; an own app's audience is what its registration says, once read.
    if ownership == Ownership.THIRD_PARTY:
        return True
    if not sp.sign_in_audience:
        return None
    return sp.sign_in_audience.lower() in MULTI_TENANT_AUDIENCES
