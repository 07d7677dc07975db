"""Bulk revokes: every grant that nothing needs, one request each."""

from dataclasses import dataclass

from django.db import transaction

from portal.models import User
from tenants.access import Role
from tenants.models import RevokeRequest, ServicePrincipal, Tenant
from tenants.portal_app import is_portal_app
from tenants.report import tenant_report
from tenants.revokes._shared import Status
from tenants.revokes.decisions import notify_admins, request_create
from tenants.slots import GrantSlot


@dataclass(frozen=True)
class GrantCandidate:
    """A grant that nothing needs, as a bulk revoke would take it away."""

    client: ServicePrincipal
    slot: GrantSlot
    verdict: str


def revoke_bulk_candidates(
    *, tenant: Tenant, client: ServicePrincipal | None = None
) -> list[GrantCandidate]:
    """Every unused or unexplained grant of the tenant (or of one client), exactly what a
    bulk revoke would take away. The portal's own app is left out: its write rights are
    "unused" until a tenant switches revoking on, and taking its read rights would stop
    every sync."""
    report = tenant_report(tenant=tenant, app_id=client.app_id if client else None)
    clients = {
        sp.object_id: sp
        for sp in ServicePrincipal.objects.filter(
            tenant=tenant,
            object_id__in=[app.service_principal_id for app in report.applications],
        )
    }
    return [
        GrantCandidate(
            client=clients[app.service_principal_id],
            slot=GrantSlot(
                resource_app_id=grant.resource_app_id,
                kind=grant.kind,
                value=grant.permission,
                consent=grant.consent,
            ),
            verdict=grant.verdict.value,
        )
        for app in report.applications
        if not is_portal_app(app.app_id)
        and (client is None or app.service_principal_id == client.object_id)
        for grant in app.grants
        if grant.is_revoke_candidate
    ]


def revoke_bulk_create(
    *, tenant: Tenant, actor: User | None, role: Role, client: ServicePrincipal | None = None
) -> list[RevokeRequest]:
    """One request per candidate (an open one is reused); readers' requests go to the
    admins in one e-mail rather than one each."""
    with transaction.atomic():
        results = [
            request_create(
                tenant=tenant,
                client=candidate.client,
                slot=candidate.slot,
                actor=actor,
                role=role,
                queue=True,
            )
            for candidate in revoke_bulk_candidates(tenant=tenant, client=client)
        ]
        pending = [r for r, created in results if created and r.status == Status.PENDING_APPROVAL]
        if pending:
            notify_admins(tenant, pending)
    return [revoke for revoke, _created in results]
