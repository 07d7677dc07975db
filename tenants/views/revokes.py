"""Revoking grants: one grant (or asking the admins to), a request's approval, denial,
cancelling and undo, a tenant's revoke requests, and revoking everything unused at once.

The revoke logic is ``tenants.revokes``'; these views name the grant, ask it, and show
the request it leaves: in place (htmx), or on the page the button was on.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_htmx.http import HTMX_STOP_POLLING

from permissions.verdicts import Verdict
from portal.htmx import render_page_or_fragment, vary_on_htmx, wants_fragment
from portal.http import AuthenticatedHttpRequest
from tenants import selectors
from tenants.access import (
    Role,
    revoke_request_for,
    role_in,
    service_principal_for,
    tenant_for,
    visible_tenants,
)
from tenants.forms import GrantSlotForm
from tenants.models import REASON_MAX_LENGTH, RevokeRequest, ServicePrincipal, Tenant
from tenants.revokes import (
    bulk_token_parse,
    grant_undo,
    manual_steps,
    portal_can_write,
    portal_grant,
    revoke_bulk_create,
    revoke_bulk_plan,
    revoke_request_approve,
    revoke_request_cancel,
    revoke_request_create,
    revoke_request_deny,
    revoke_restore,
    undoable_grant_ids,
)
from tenants.revokes.guard import read_refusal

REVOKES_PER_PAGE = 25


@dataclass(frozen=True)
class RevokeRow:
    """A revoke request as the pages show it."""

    revoke: RevokeRequest
    undoable: bool
    manual_steps: list[str]
    # While it waits for approval: the grant as it stands (verdict, the features it would
    # break), what the admin weighs; None once the application no longer holds it.
    grant: selectors.GrantDetail | None = None


def revoke_rows(revokes: Sequence[RevokeRequest]) -> list[RevokeRow]:
    undoable = selectors.undoable_revoke_ids(revokes) | undoable_grant_ids(revokes)
    # What approving would break: only a revoke waiting for approval has that to weigh.
    impacts = selectors.revoke_impacts(
        [
            revoke
            for revoke in revokes
            if revoke.status == RevokeRequest.Status.PENDING_APPROVAL
            and revoke.action == RevokeRequest.Action.REVOKE
        ]
    )
    return [
        RevokeRow(
            revoke=revoke,
            undoable=revoke.pk in undoable,
            manual_steps=(
                manual_steps(revoke) if revoke.status == RevokeRequest.Status.MANUAL else []
            ),
            grant=impacts.get(revoke.pk),
        )
        for revoke in revokes
    ]


# --- revoking one grant ------------------------------------------------------------------


@login_required
@require_POST
@vary_on_htmx
def revoke_create(request: AuthenticatedHttpRequest, tenant_id: UUID, app_id: UUID) -> HttpResponse:
    """Revoke one grant (admins) or ask the admins to (readers, who may post only this).

    A needed grant first answers with a confirmation naming the features that would break.
    The portal's own read permissions are refused; its write permissions go only once an
    admin typed the permission's name (``acknowledge``).
    """
    sp, role = service_principal_for(request.user, tenant_id, app_id)
    tenant = sp.tenant
    form = GrantSlotForm(request.POST)
    if not form.is_valid():
        if "reason" in form.errors:
            return HttpResponseBadRequest(
                f"The reason is longer than {REASON_MAX_LENGTH} characters: say it shorter"
            )
        return HttpResponseBadRequest("Name the grant: resource, kind, value and consent")
    detail = selectors.application_in_tenant(tenant=tenant, service_principal=sp)
    grant = next((g for g in detail.grants if g.slot == form.slot()), None)
    if grant is None:
        return _revoke_refused(request, tenant, sp, "The application does not hold this now.")
    reason = form.cleaned_data["reason"].strip()
    if role != Role.ADMIN and not reason:
        return _reason_missing(request, tenant, sp, grant)
    own = portal_grant(sp, grant.slot)
    if own == "read":
        return _revoke_refused(request, tenant, sp, read_refusal(tenant, grant.slot))
    acknowledged = False
    if own == "write" and role == Role.ADMIN:
        typed = form.cleaned_data["acknowledge"].strip()
        if typed != grant.slot.value:
            return _revoke_self_confirm(request, tenant, sp, grant, typed=typed)
        acknowledged = True
    elif grant.finding.verdict == Verdict.NEEDED and not form.cleaned_data["confirm"]:
        return _revoke_confirm(request, tenant, role, sp, grant, reason=reason)
    try:
        revoke, created = revoke_request_create(
            tenant=tenant,
            client=sp,
            slot=form.slot(),
            actor=request.user,
            role=role,
            acknowledge_self=acknowledged,
            reason=reason,
        )
    except ValueError as exc:
        return _revoke_refused(request, tenant, sp, str(exc))
    if wants_fragment(request):
        return _revoke_block(request, tenant, role, revoke)
    if not created:
        messages.info(request, f"A request to revoke {revoke.value} is already open.")
    elif revoke.status == RevokeRequest.Status.PENDING_APPROVAL:
        messages.success(request, f"Asked the admins to revoke {revoke.value}.")
    else:
        messages.success(request, f"Revoking {revoke.value}: {revoke.get_status_display()}.")
    return redirect("tenants:application", tenant_id=tenant.tenant_id, app_id=sp.app_id)


def _revoke_confirm(
    request: AuthenticatedHttpRequest,
    tenant: Tenant,
    role: Role,
    sp: ServicePrincipal,
    grant: selectors.GrantDetail,
    *,
    reason: str,
) -> HttpResponse:
    context = {
        "tenant": tenant,
        "can_change": role == Role.ADMIN,
        "service_principal": sp,
        "grant": grant,
        "breaks": grant.breaks,
        "reason": reason,
    }
    return render_page_or_fragment(
        request, "tenants/revoke_confirm.html", "revoke-confirm", context
    )


def _reason_missing(
    request: AuthenticatedHttpRequest,
    tenant: Tenant,
    sp: ServicePrincipal,
    grant: selectors.GrantDetail,
) -> HttpResponse:
    """A reader's request without a reason: the admins decide on it by that reason, so the
    button comes back asking for one (a browser's ``required`` usually stops it first)."""
    said = "Say why it should go: the admins read your reason before they decide."
    if not wants_fragment(request):
        messages.error(request, said)
        return redirect("tenants:application", tenant_id=tenant.tenant_id, app_id=sp.app_id)
    context = {
        "tenant": tenant,
        "can_change": False,
        "service_principal": sp,
        "grant": grant,
        "portal_can_write": portal_can_write(tenant),
        "reason_error": said,
    }
    return render(request, "tenants/application_detail.html#revoke-button", context)


def _revoke_self_confirm(
    request: AuthenticatedHttpRequest,
    tenant: Tenant,
    sp: ServicePrincipal,
    grant: selectors.GrantDetail,
    *,
    typed: str,
) -> HttpResponse:
    """Revoking the portal's own write permission: never one click. The admin types the
    permission's name; the page says what follows (undo by hand, it runs last)."""
    context = {
        "tenant": tenant,
        "can_change": True,
        "service_principal": sp,
        "grant": grant,
        "typed": typed,
        "breaks": grant.breaks,
    }
    return render_page_or_fragment(
        request, "tenants/revoke_self_confirm.html", "revoke-self-confirm", context
    )


def _revoke_refused(
    request: AuthenticatedHttpRequest, tenant: Tenant, sp: ServicePrincipal, reason: str
) -> HttpResponse:
    """Said where the button was (htmx) or at the top of the page it came from."""
    if wants_fragment(request):
        return render(request, "tenants/revoke_parts.html#revoke-refused", {"reason": reason})
    messages.error(request, reason)
    return redirect("tenants:application", tenant_id=tenant.tenant_id, app_id=sp.app_id)


# --- one request: its status, approving, denying, cancelling, undoing ---------------------


@login_required
@require_safe
def revoke_status(
    request: AuthenticatedHttpRequest, tenant_id: UUID, revoke_id: int
) -> HttpResponse:
    """One request's status, polled while it is open; 286 once it has ended stops that."""
    revoke, role = revoke_request_for(request.user, tenant_id, revoke_id)
    response = _revoke_block(request, revoke.tenant, role, revoke)
    if not revoke.is_open:
        response.status_code = HTMX_STOP_POLLING
    return response


@login_required
@require_POST
@vary_on_htmx
def revoke_approve(
    request: AuthenticatedHttpRequest, tenant_id: UUID, revoke_id: int
) -> HttpResponse:
    """Approve a reader's request; one for a grant that enabled features need first answers
    with a confirmation naming them (``confirm`` posts past it)."""
    revoke, role = revoke_request_for(request.user, tenant_id, revoke_id, write=True)
    if revoke.status == RevokeRequest.Status.PENDING_APPROVAL and not request.POST.get("confirm"):
        grant = selectors.revoke_impacts([revoke]).get(revoke.pk)
        if grant is not None and grant.breaks:
            context = {
                "tenant": revoke.tenant,
                "row": RevokeRow(revoke=revoke, undoable=False, manual_steps=[], grant=grant),
                "back": _back(request, revoke.tenant),
            }
            return render_page_or_fragment(
                request, "tenants/revoke_approve_confirm.html", "approve-confirm", context
            )
    return _revoke_decided(request, role, revoke, revoke_request_approve, "Approved")


@login_required
@require_POST
@vary_on_htmx
def revoke_deny(request: AuthenticatedHttpRequest, tenant_id: UUID, revoke_id: int) -> HttpResponse:
    revoke, role = revoke_request_for(request.user, tenant_id, revoke_id, write=True)
    return _revoke_decided(request, role, revoke, revoke_request_deny, "Denied")


@login_required
@require_POST
@vary_on_htmx
def revoke_cancel(
    request: AuthenticatedHttpRequest, tenant_id: UUID, revoke_id: int
) -> HttpResponse:
    """Admins may cancel any waiting request; a reader only the one they asked for."""
    revoke, role = revoke_request_for(request.user, tenant_id, revoke_id)
    if role != Role.ADMIN and revoke.requested_by_id != request.user.pk:
        raise PermissionDenied("Only the tenant's admins and the requester can cancel this")
    return _revoke_decided(request, role, revoke, revoke_request_cancel, "Cancelled")


@login_required
@require_POST
@vary_on_htmx
def revoke_undo(request: AuthenticatedHttpRequest, tenant_id: UUID, revoke_id: int) -> HttpResponse:
    """Give back what a succeeded revoke took: a restore request, queued at once; or take
    back what a succeeded grant gave: a revoke."""
    revoke, role = revoke_request_for(request.user, tenant_id, revoke_id, write=True)
    if revoke.action == RevokeRequest.Action.GRANT:
        return _revoke_decided(request, role, revoke, grant_undo, "Taking back")
    return _revoke_decided(request, role, revoke, revoke_restore, "Restoring")


def _revoke_decided(
    request: AuthenticatedHttpRequest,
    role: Role,
    revoke: RevokeRequest,
    decide: Callable[..., RevokeRequest],
    done: str,
) -> HttpResponse:
    """Run ``decide``; show the request it leaves (a restore makes a new one) in place of
    the old one (htmx), or go back to the page the button was on."""
    tenant = revoke.tenant
    try:
        shown = decide(revoke=revoke, actor=request.user)
    except ValueError as exc:
        if wants_fragment(request):
            context = {"reason": str(exc)}
            return render(request, "tenants/revoke_parts.html#revoke-refused", context)
        messages.error(request, str(exc))
        return redirect(_back(request, tenant))
    if wants_fragment(request):
        return _revoke_block(request, tenant, role, shown)
    messages.success(request, f"{done}: {revoke.get_action_display().lower()} of {revoke.value}.")
    return redirect(_back(request, tenant))


def _back(request: AuthenticatedHttpRequest, tenant: Tenant) -> str:
    """The page a button was on (its form's ``next``), else the tenant's revoke requests."""
    back = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(back, {request.get_host()}, require_https=False):
        return back
    return reverse("tenants:revoke-list", kwargs={"tenant_id": tenant.tenant_id})


def _revoke_block(
    request: AuthenticatedHttpRequest, tenant: Tenant, role: Role, revoke: RevokeRequest
) -> HttpResponse:
    context = {
        "tenant": tenant,
        "can_change": role == Role.ADMIN,
        "row": revoke_rows([revoke])[0],
    }
    return render(request, "tenants/revoke_parts.html#revoke-request", context)


# --- every tenant's requests waiting for approval ------------------------------------------


@dataclass(frozen=True)
class QueueEntry:
    row: RevokeRow
    # Whether the user may decide on it: an admin of its tenant (an operator admin is one
    # in every tenant); an operator without Portal.Admin reads the queue only.
    can_change: bool


@login_required
@require_safe
def approval_queue(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Every request waiting for approval in the tenants the user sees, oldest first, each
    with its verdict, the features it would break and its reason: one queue for operators
    and for admins (who see their own tenant's). Paginated."""
    waiting = (
        RevokeRequest.objects.filter(
            tenant__in=visible_tenants(request.user),
            status=RevokeRequest.Status.PENDING_APPROVAL,
        )
        .select_related("tenant", "client", "requested_by", "decided_by", "regranted_in_run")
        .order_by("pk")
    )
    page = Paginator(waiting, REVOKES_PER_PAGE).get_page(request.GET.get("page"))
    revokes = list(page)
    roles = {revoke.tenant_id: role_in(request.user, revoke.tenant) for revoke in revokes}
    entries = [
        QueueEntry(row=row, can_change=roles[row.revoke.tenant_id] == Role.ADMIN)
        for row in revoke_rows(revokes)
    ]
    context = {"page_obj": page, "entries": entries}
    return render_page_or_fragment(request, "tenants/approvals.html", "approval-queue", context)


# --- a tenant's revoke requests, bulk revokes ---------------------------------------------


@login_required
@require_safe
def revoke_list(request: AuthenticatedHttpRequest, tenant_id: UUID) -> HttpResponse:
    """Requests waiting for approval first, then every other one, newest first."""
    tenant, role = tenant_for(request.user, tenant_id)
    requests = tenant.revoke_requests.select_related(
        "client", "requested_by", "decided_by", "regranted_in_run"
    )
    waiting = RevokeRequest.Status.PENDING_APPROVAL
    history = Paginator(requests.exclude(status=waiting), REVOKES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {
        "tenant": tenant,
        "can_change": role == Role.ADMIN,
        "pending": revoke_rows(list(requests.filter(status=waiting).order_by("pk"))),
        "page_obj": history,
        "history": revoke_rows(list(history)),
    }
    return render_page_or_fragment(request, "tenants/revoke_list.html", "revoke-history", context)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def revoke_unused(
    request: AuthenticatedHttpRequest, tenant_id: UUID, app_id: UUID | None = None
) -> HttpResponse:
    """Everything unused or unexplained, of one application or of the whole tenant: listed
    exactly (GET, each grant also a hidden field of the form), then revoked by an admin,
    one request per grant the form carries back (POST): the list shown, never one
    recomputed in its place."""
    write = request.method == "POST"
    sp: ServicePrincipal | None = None
    if app_id:
        sp, role = service_principal_for(request.user, tenant_id, app_id, write=write)
        tenant = sp.tenant
    else:
        tenant, role = tenant_for(request.user, tenant_id, write=write)
    if write:
        return _revoke_shown(request, tenant, role, sp)
    plan = revoke_bulk_plan(tenant=tenant, client=sp)
    context = {
        "tenant": tenant,
        "can_change": role == Role.ADMIN,
        "service_principal": sp,
        "candidates": plan.candidates,
        "left_out": plan.left_out,
        "portal_can_write": portal_can_write(tenant),
    }
    return render(request, "tenants/revoke_unused.html", context)


def _revoke_shown(
    request: AuthenticatedHttpRequest, tenant: Tenant, role: Role, sp: ServicePrincipal | None
) -> HttpResponse:
    try:
        shown = [bulk_token_parse(token) for token in request.POST.getlist("grant")]
    except ValueError as exc:
        return HttpResponseBadRequest(str(exc))
    if not shown:
        messages.warning(request, "Nothing was revoked: the form named no grant.")
        return redirect(request.path)
    result = revoke_bulk_create(
        tenant=tenant, actor=request.user, role=role, shown=shown, client=sp
    )
    count = len(result.requests)
    messages.success(request, f"{count} revoke request{'s' if count != 1 else ''} created.")
    for reason in result.skipped:
        messages.warning(request, reason)
    if not result.requests:
        return redirect("tenants:revoke-list", tenant_id=tenant.tenant_id)
    return redirect(_results_url(tenant, [revoke.pk for revoke in result.requests]))


def _results_url(tenant: Tenant, revoke_ids: Sequence[int]) -> str:
    address = reverse("tenants:revoke-results", kwargs={"tenant_id": tenant.tenant_id})
    return f"{address}?{urlencode({'request': list(revoke_ids)}, doseq=True)}"


# A bulk revoke's results name their requests in the address; more than this is no page.
RESULTS_MAX = 500


def _named_requests(request: AuthenticatedHttpRequest, tenant: Tenant) -> list[RevokeRequest]:
    """The tenant's requests that the query string or the form names (``request``, repeated);
    ids of other tenants' requests, or no request at all, find nothing."""
    source = request.POST if request.method == "POST" else request.GET
    ids = {int(value) for value in source.getlist("request")[:RESULTS_MAX] if value.isdigit()}
    revokes = tenant.revoke_requests.filter(pk__in=ids).select_related(
        "client", "requested_by", "decided_by", "regranted_in_run"
    )
    return list(revokes.order_by("client__display_name", "value", "pk"))


@login_required
@require_safe
def revoke_results(request: AuthenticatedHttpRequest, tenant_id: UUID) -> HttpResponse:
    """What a bulk revoke (or its undo) left: each request, polling its own status until it
    ends, with its application (reachable even once it holds nothing), and one button that
    undoes every one of them that succeeded."""
    tenant, role = tenant_for(request.user, tenant_id)
    revokes = _named_requests(request, tenant)
    context = {
        "tenant": tenant,
        "can_change": role == Role.ADMIN,
        "rows": revoke_rows(revokes),
        "undoing": bool(revokes) and all(r.action == RevokeRequest.Action.RESTORE for r in revokes),
    }
    return render(request, "tenants/revoke_results.html", context)


@login_required
@require_POST
def revoke_undo_all(request: AuthenticatedHttpRequest, tenant_id: UUID) -> HttpResponse:
    """Undo every named revoke that succeeded and can still be undone (the per-request undo,
    each its own restore request); the others are said, not guessed at."""
    tenant, _role = tenant_for(request.user, tenant_id, write=True)
    revokes = [
        r for r in _named_requests(request, tenant) if r.action == RevokeRequest.Action.REVOKE
    ]
    undoable = selectors.undoable_revoke_ids(revokes)
    restores: list[int] = []
    for revoke in revokes:
        if revoke.pk not in undoable:
            messages.warning(
                request,
                f"{revoke.value} of {revoke.client.display_name}: not undone "
                f"({revoke.get_status_display().lower()}, nothing to put back).",
            )
            continue
        try:
            restores.append(revoke_restore(revoke=revoke, actor=request.user).pk)
        except ValueError as exc:
            messages.warning(request, f"{revoke.value} of {revoke.client.display_name}: {exc}")
    if not restores:
        messages.info(request, "Nothing was undone.")
        return redirect(_back(request, tenant))
    count = len(restores)
    messages.success(request, f"Undoing {count} revoke{'s' if count != 1 else ''}.")
    return redirect(_results_url(tenant, restores))
