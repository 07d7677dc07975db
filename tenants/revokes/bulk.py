"""Bulk revokes: every grant that nothing needs, one request each."""

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from permissions.verdicts import Verdict
from portal.models import User
from tenants.access import Role
from tenants.models import RevokeRequest, ServicePrincipal, Tenant
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
        str(sp.object_id): sp
        for sp in ServicePrincipal.objects.filter(
            tenant=tenant,
            object_id__in=[app["service_principal_id"] for app in report["applications"]],
        )
    }
    portal_app_id = settings.PORTAL_CLIENT_ID.lower()
    revocable = {Verdict.UNUSED.value, Verdict.UNEXPLAINED.value}
    return [
        GrantCandidate(
            client=clients[app["service_principal_id"]],
            slot=GrantSlot(
                resource_app_id=grant["resource_app_id"],
                kind=grant["type"],
                value=grant["permission"],
                consent=grant["consent"],
            ),
            verdict=grant["verdict"],
        )
        for app in report["applications"]
        if app["app_id"] != portal_app_id
        and (client is None or app["service_principal_id"] == str(client.object_id))
        for grant in app["grants"]
        if grant["verdict"] in revocable
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
