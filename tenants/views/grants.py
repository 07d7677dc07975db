"""Granting a missing permission from the application's page: an admin's click queues the
grant (or gives the manual steps where the portal may not write), a reader's asks the
admins, as a revoke does. The request then shows where the missing permission was."""

from dataclasses import dataclass
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from portal.htmx import vary_on_htmx, wants_fragment
from portal.http import AuthenticatedHttpRequest
from tenants import selectors
from tenants.access import service_principal_for
from tenants.forms import GrantSlotForm
from tenants.models import RevokeRequest, ServicePrincipal, Tenant
from tenants.revokes import GrantPlan, grant_plans, grant_request_create, grant_steps
from tenants.slots import GrantSlot
from tenants.views.revokes import RevokeRow, _revoke_block, _revoke_refused, revoke_rows


@login_required
@require_POST
@vary_on_htmx
def grant_create(request: AuthenticatedHttpRequest, tenant_id: UUID, app_id: UUID) -> HttpResponse:
    """Grant one missing permission (admins) or ask the admins to (readers)."""
    sp, role = service_principal_for(request.user, tenant_id, app_id)
    form = GrantSlotForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("Name the permission: resource, kind, value and consent")
    try:
        grant, created = grant_request_create(
            tenant=sp.tenant,
            client=sp,
            permission=form.slot().permission,
            actor=request.user,
            role=role,
        )
    except ValueError as exc:
        return _revoke_refused(request, sp.tenant, sp, str(exc))
    if wants_fragment(request):
        return _revoke_block(request, sp.tenant, role, grant)
    if not created:
        messages.info(request, f"A request about {grant.value} is already open.")
    elif grant.status == RevokeRequest.Status.PENDING_APPROVAL:
        messages.success(request, f"Asked the admins to grant {grant.value}.")
    else:
        messages.success(request, f"Granting {grant.value}: {grant.get_status_display()}.")
    return redirect("tenants:application", tenant_id=sp.tenant.tenant_id, app_id=sp.app_id)


@dataclass(frozen=True)
class MissingRow:
    """A missing permission as the application's page shows it: what granting it takes,
    the latest request about it, and (where the portal may only read) the manual steps."""

    missing: selectors.MissingDetail
    plan: GrantPlan
    row: RevokeRow | None
    steps: list[str]

    @property
    def slot(self) -> GrantSlot:
        return self.plan.slot


def missing_rows(
    *,
    tenant: Tenant,
    sp: ServicePrincipal,
    detail: selectors.ApplicationInTenant,
    latest: dict[GrantSlot, RevokeRequest],
    can_write: bool,
) -> list[MissingRow]:
    """One row per missing permission; takes the requests about them out of ``latest``."""
    plans = grant_plans(
        tenant=tenant,
        client=sp,
        missing=[
            (m.finding.permission, m.permission.graph_id if m.permission else None)
            for m in detail.missing
        ],
    )
    requests = [latest.pop(plan.slot, None) for plan in plans]
    rows = {row.revoke.pk: row for row in revoke_rows([r for r in requests if r])}
    return [
        MissingRow(
            missing=missing,
            plan=plan,
            row=rows[request.pk] if request else None,
            steps=[] if can_write else grant_steps(plan),
        )
        for missing, plan, request in zip(detail.missing, plans, requests, strict=True)
    ]
