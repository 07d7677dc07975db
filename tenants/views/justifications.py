"""Justifying grants on the application page: "Keep, because ..." for one grant or several
at once, keeping one another term (also from the review e-mail's link), and removing one.

Admins justify and remove; a justification's reviewer may keep it another term too. Each
form posts here and comes back to the application page; htmx gets the page's grants
section alone (with the verdict counts, out of band), since a justification changes
verdicts.
"""

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from portal.htmx import vary_on_htmx, wants_fragment
from portal.http import AuthenticatedHttpRequest
from tenants import selectors
from tenants.access import Role, service_principal_for
from tenants.forms import GrantSlotForm, JustificationForm
from tenants.justifications import (
    JustificationError,
    justification_extend,
    justifications_remove,
    justifications_set,
    may_extend,
    tenant_users,
)
from tenants.models import Justification, ServicePrincipal
from tenants.views.application import application_context


@login_required
@require_POST
@vary_on_htmx
def justify(request: AuthenticatedHttpRequest, tenant_id: UUID, app_id: UUID) -> HttpResponse:
    """Justify the grants the form names with one reason, expiry and reviewer."""
    sp, role = service_principal_for(request.user, tenant_id, app_id, write=True)
    form = JustificationForm(request.POST, reviewers=tenant_users(sp.tenant))
    if not form.is_valid():
        return _done(request, role, sp, error=form.first_error())
    try:
        kept = justifications_set(
            tenant=sp.tenant,
            client=sp,
            slots=form.slots(),
            reason=form.cleaned_data["reason"],
            expires=form.cleaned_data["expires"],
            reviewer=form.reviewer_user(),
            actor=request.user,
        )
    except JustificationError as exc:
        return _done(request, role, sp, error=str(exc))
    names = ", ".join(justification.value for justification in kept)
    return _done(request, role, sp, notice=f"Kept {names}: {_until(kept[0])}.")


@login_required
@require_POST
@vary_on_htmx
def justify_extend(
    request: AuthenticatedHttpRequest, tenant_id: UUID, app_id: UUID
) -> HttpResponse:
    """Keep a justification another term: its admins, or its reviewer (from the e-mail)."""
    sp, role = service_principal_for(request.user, tenant_id, app_id)
    justification = _named(request, sp)
    if justification is None or not may_extend(request.user, justification):
        # Readers learn nothing here of which justifications exist.
        if role != Role.ADMIN:
            raise PermissionDenied("Only the tenant's admins or the reviewer can keep it")
        return _done(request, role, sp, error="That grant has no justification to keep.")
    try:
        kept = justification_extend(justification=justification, actor=request.user)
    except JustificationError as exc:
        return _done(request, role, sp, error=str(exc))
    return _done(request, role, sp, notice=f"Kept {kept.value} another term: {_until(kept)}.")


@login_required
@require_POST
@vary_on_htmx
def justify_remove(
    request: AuthenticatedHttpRequest, tenant_id: UUID, app_id: UUID
) -> HttpResponse:
    """Remove a grant's justification: it is judged by its manifest alone again."""
    sp, role = service_principal_for(request.user, tenant_id, app_id, write=True)
    form = GrantSlotForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("Name the grant: resource, kind, value and consent")
    removed = justifications_remove(
        tenant=sp.tenant, app_id=sp.app_id, slots=[form.slot()], actor=request.user
    )
    if not removed:
        # A second click, or another admin was first: nothing is left to remove.
        return _done(request, role, sp, notice=f"{form.slot().value} has no justification now.")
    return _done(request, role, sp, notice=f"Removed the justification of {removed[0].value}.")


def _named(request: AuthenticatedHttpRequest, sp: ServicePrincipal) -> Justification | None:
    form = GrantSlotForm(request.POST)
    if not form.is_valid():
        return None
    slot = form.slot()
    return (
        Justification.objects.select_related("tenant")
        .filter(
            tenant=sp.tenant,
            app_id=sp.app_id,
            resource_app_id=slot.resource_app_id,
            kind=slot.kind,
            value__iexact=slot.value,
            consent=slot.consent,
        )
        .first()
    )


def _until(justification: Justification) -> str:
    return f"until {justification.expires}" if justification.expires else "with no expiry"


def _done(
    request: AuthenticatedHttpRequest,
    role: Role,
    sp: ServicePrincipal,
    *,
    notice: str = "",
    error: str = "",
) -> HttpResponse:
    """The grants section again (htmx), or the application page with the message."""
    if wants_fragment(request):
        detail = selectors.application_in_tenant(tenant=sp.tenant, service_principal=sp)
        context = application_context(request, role, sp, detail)
        context.update(justify_notice=notice, justify_error=error)
        return render(request, "tenants/application_detail.html#grants-changed", context)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, notice)
    return redirect("tenants:application", tenant_id=sp.tenant.tenant_id, app_id=sp.app_id)
