"""Tenant pages: the dashboard, the operators' matrix, a tenant's applications and sync
status, one application in a tenant (verdicts, feature switches, revokes), sync history,
revoke requests, the audit trail, exports.

Every view asks ``tenants.access`` who may see and change what: outsiders get 404,
readers get 403 on anything that changes state. Reads answer GET (and HEAD) only; only the
views that change state take a POST, so a reader's POST is refused, with one exception:
readers may *ask* for a revoke (which waits for an admin's approval), and cancel their own
request.
"""

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_htmx.http import HTMX_STOP_POLLING, trigger_client_event

from permissions.models import Feature, PermissionKind
from permissions.verdicts import Verdict

# The page-or-fragment rule is the portal's one convention for htmx; it lives with the
# first pages that used it.
from permissions.views import HtmxHttpRequest, _render_page_or_fragment
from tenants import selectors
from tenants.access import Role, is_operator, tenant_for, visible_tenants
from tenants.audit import audit_events
from tenants.models import AuditEvent, Grant, RevokeRequest, ServicePrincipal, SyncRun, Tenant
from tenants.report import report_csv, tenant_report
from tenants.revokes import (
    manual_steps,
    portal_can_write,
    revoke_bulk_candidates,
    revoke_bulk_create,
    revoke_request_approve,
    revoke_request_cancel,
    revoke_request_create,
    revoke_request_deny,
    revoke_restore,
)
from tenants.services import features_set, sync_run_queue
from tenants.tasks import sync_tenant

TENANTS_PER_PAGE = 24
APPLICATIONS_PER_PAGE = 50
MATRIX_ROWS_PER_PAGE = 50
RUNS_PER_PAGE = 25
CHANGES_PER_PAGE = 50
REVOKES_PER_PAGE = 25
AUDIT_EVENTS_PER_PAGE = 50
# Sent when a watched run ends, so the tenant page reloads its applications.
SYNC_ENDED_EVENT = "sync-ended"


# --- dashboard and matrix ----------------------------------------------------------------


@login_required
@require_safe
def dashboard(request: HtmxHttpRequest) -> HttpResponse:
    tenants = selectors.tenants_with_latest_status(visible_tenants(request.user))
    page = Paginator(tenants, TENANTS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "page_obj": page,
        "overviews": selectors.tenant_overviews(list(page)),
        "sees_all_tenants": request.user.is_superuser or is_operator(request.user),
        "now": timezone.now(),
    }
    return render(request, "tenants/dashboard.html", context)


@login_required
@require_safe
def matrix(request: HtmxHttpRequest) -> HttpResponse:
    """Applications x tenants, for whoever sees several tenants (operators)."""
    tenants = list(visible_tenants(request.user))
    applications = selectors.matrix_applications(tenants)
    page = Paginator(applications, MATRIX_ROWS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "tenants": tenants,
        "page_obj": page,
        "rows": selectors.matrix_rows(tenants, page),
    }
    return _render_page_or_fragment(request, "tenants/matrix.html", "matrix-table", context)


# --- a tenant ----------------------------------------------------------------------------


class ApplicationFilterForm(forms.Form):
    """The tenant page's filters; every field may be left empty."""

    q = forms.CharField(required=False, label="Application name")
    verdict = forms.ChoiceField(
        required=False,
        label="Verdicts",
        choices=[
            ("", "Any verdicts"),
            ("unused", "Has unused grants"),
            ("unexplained", "Has unexplained grants"),
            ("missing", "Has missing permissions"),
        ],
    )
    party = forms.ChoiceField(
        required=False,
        label="Publisher",
        choices=[("", "Any publisher"), ("third", "Third-party"), ("first", "Microsoft")],
    )


@login_required
@require_safe
def tenant_detail(request: HtmxHttpRequest, tenant_id: UUID) -> HttpResponse:
    tenant, role = tenant_for(request.user, tenant_id)
    form = ApplicationFilterForm(request.GET)
    # A stale or hand-edited filter is dropped rather than turning the page into an error.
    form.is_valid()
    filters = form.cleaned_data
    shown: list[selectors.HeldApplication] = []
    if tenant.last_good_sync:
        # Name and publisher narrow the query; verdicts exist only once worked out.
        q, party = filters.get("q", ""), filters.get("party", "")
        clients = selectors.clients_matching(q=q, party=party) if q or party else None
        held = selectors.held_applications([tenant], clients=clients)
        verdict = filters.get("verdict")
        shown = [item for item in held if not verdict or getattr(item.counts, verdict)]
    context = {
        **_sync_context(tenant, tenant.sync_runs.first(), role),
        "form": form,
        "held_count": selectors.holding_clients([tenant.pk]).count(),
        "pending_approvals": tenant.revoke_requests.filter(
            status=RevokeRequest.Status.PENDING_APPROVAL
        ).count(),
        "page_obj": Paginator(shown, APPLICATIONS_PER_PAGE).get_page(request.GET.get("page")),
        "sync_ended_event": SYNC_ENDED_EVENT,
    }
    return _render_page_or_fragment(
        request, "tenants/tenant_detail.html", "application-results", context
    )


@login_required
@require_POST
def sync_now(request: HtmxHttpRequest, tenant_id: UUID) -> HttpResponse:
    tenant, role = tenant_for(request.user, tenant_id, write=True)
    run = sync_run_queue(tenant=tenant, trigger=SyncRun.Trigger.MANUAL)
    if run is None:
        # The database keeps one open run per tenant: show that one rather than a second.
        messages.info(request, "A sync of this tenant is already under way; here is its progress.")
    else:
        sync_tenant.delay_on_commit(run.pk)
    if request.htmx and not request.htmx.boosted:
        # An open run is always the tenant's newest, so the latest run is the one to show.
        context = _sync_context(tenant, tenant.sync_runs.first(), role)
        return render(request, "tenants/tenant_detail.html#sync-panel", context)
    return redirect("tenants:tenant-detail", tenant_id=tenant.tenant_id)


@login_required
@require_safe
def run_status(request: HtmxHttpRequest, tenant_id: UUID, run_id: int) -> HttpResponse:
    """The polled part of the sync panel; 286 once the run has ended stops the polling."""
    tenant, role = tenant_for(request.user, tenant_id)
    run = get_object_or_404(SyncRun, pk=run_id, tenant=tenant)
    response = render(
        request, "tenants/tenant_detail.html#sync-run", _sync_context(tenant, run, role)
    )
    if not run.is_open:
        response.status_code = HTMX_STOP_POLLING
        trigger_client_event(response, SYNC_ENDED_EVENT)
    return response


@login_required
@require_safe
def run_list(request: HtmxHttpRequest, tenant_id: UUID) -> HttpResponse:
    tenant, _ = tenant_for(request.user, tenant_id)
    page = Paginator(tenant.sync_runs.all(), RUNS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "tenants/run_list.html", {"tenant": tenant, "page_obj": page})


@login_required
@require_safe
def run_detail(request: HtmxHttpRequest, tenant_id: UUID, run_id: int) -> HttpResponse:
    tenant, role = tenant_for(request.user, tenant_id)
    run = get_object_or_404(SyncRun, pk=run_id, tenant=tenant)
    diff = selectors.run_diff(run)
    changes = Paginator(_changes(diff.added, diff.removed, run), CHANGES_PER_PAGE)
    context = {
        **_sync_context(tenant, run, role),
        "since": diff.since,
        "added": diff.added.count(),
        "removed": diff.removed.count(),
        "page_obj": changes.get_page(request.GET.get("page")),
    }
    return _render_page_or_fragment(request, "tenants/run_detail.html", "changes", context)


@login_required
@require_safe
def report_json(request: HtmxHttpRequest, tenant_id: UUID) -> HttpResponse:
    tenant, _ = tenant_for(request.user, tenant_id)
    report = json.dumps(tenant_report(tenant=tenant), indent=2)
    return _attachment(report, "application/json", _report_filename(tenant, "json"))


@login_required
@require_safe
def report_csv_export(request: HtmxHttpRequest, tenant_id: UUID) -> HttpResponse:
    tenant, _ = tenant_for(request.user, tenant_id)
    report = report_csv(tenant_report(tenant=tenant))
    return _attachment(report, "text/csv; charset=utf-8", _report_filename(tenant, "csv"))


def _report_filename(tenant: Tenant, extension: str) -> str:
    """Named after the tenant and the day of the sync it reports (today before any)."""
    synced = tenant.last_good_sync.finished_at if tenant.last_good_sync else None
    return f"permissions-{tenant.tenant_id}-{synced or timezone.now():%Y-%m-%d}.{extension}"


def _attachment(content: str, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- one application in a tenant ---------------------------------------------------------


class FeatureSwitchForm(forms.Form):
    """The features to have on; every other feature of the application is switched off."""

    enabled = forms.MultipleChoiceField(required=False)

    def __init__(self, *args: Any, features: list[Feature], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["enabled"].choices = [(feature.key, feature.name) for feature in features]


@login_required
@require_safe
def application_detail(request: HtmxHttpRequest, tenant_id: UUID, app_id: UUID) -> HttpResponse:
    tenant, role = tenant_for(request.user, tenant_id)
    sp = _service_principal(tenant, app_id)
    detail = selectors.application_in_tenant(tenant=tenant, service_principal=sp)
    checked = {state.feature.key for state in detail.features if state.enabled}
    return _application_page(request, tenant, role, sp, detail, checked=checked, preview=None)


@login_required
@require_safe
def features_preview(request: HtmxHttpRequest, tenant_id: UUID, app_id: UUID) -> HttpResponse:
    """What the proposed switches would change, before anyone saves them. It changes
    nothing, so readers may ask too. htmx gets the list alone, a browser the page."""
    tenant, role = tenant_for(request.user, tenant_id)
    sp = _service_principal(tenant, app_id)
    form = FeatureSwitchForm(request.GET, features=_features(sp))
    if not form.is_valid():
        return HttpResponseBadRequest("Unknown feature")
    proposed = set(form.cleaned_data["enabled"])
    if request.htmx and not request.htmx.boosted:
        preview = selectors.features_preview(tenant=tenant, service_principal=sp, enabled=proposed)
        context = {"tenant": tenant, "service_principal": sp, "preview": preview}
        return render(request, "tenants/application_detail.html#feature-preview", context)
    return _preview_page(request, tenant, role, sp, proposed)


@login_required
@require_POST
def features_save(request: HtmxHttpRequest, tenant_id: UUID, app_id: UUID) -> HttpResponse:
    """Save the switches; or, from a browser without JavaScript, preview them ("Preview"
    submits the admin's form here, so its CSRF token never lands in a URL)."""
    tenant, role = tenant_for(request.user, tenant_id, write=True)
    sp = _service_principal(tenant, app_id)
    features = _features(sp)
    if not features:
        return HttpResponseBadRequest("This application has no features to switch")
    form = FeatureSwitchForm(request.POST, features=features)
    if not form.is_valid():
        return HttpResponseBadRequest("Unknown feature")
    enable = form.cleaned_data["enabled"]
    if request.POST.get("action") == "preview":
        return _preview_page(request, tenant, role, sp, set(enable))
    features_set(
        tenant=tenant,
        application=features[0].application,
        enable=enable,
        disable=[feature.key for feature in features if feature.key not in enable],
    )
    messages.success(request, "Feature switches saved; the verdicts below follow them.")
    return redirect("tenants:application", tenant_id=tenant.tenant_id, app_id=sp.app_id)


def _preview_page(
    request: HtmxHttpRequest, tenant: Tenant, role: Role, sp: ServicePrincipal, proposed: set[str]
) -> HttpResponse:
    """The application page with the proposed switches ticked and what they would change."""
    preview = selectors.features_preview(tenant=tenant, service_principal=sp, enabled=proposed)
    detail = selectors.application_in_tenant(tenant=tenant, service_principal=sp)
    return _application_page(request, tenant, role, sp, detail, checked=proposed, preview=preview)


def _application_page(
    request: HtmxHttpRequest,
    tenant: Tenant,
    role: Role,
    sp: ServicePrincipal,
    detail: selectors.ApplicationInTenant,
    *,
    checked: set[str],
    preview: selectors.FeaturesPreview | None,
) -> HttpResponse:
    latest = selectors.latest_revoke_requests(tenant=tenant, client=sp)
    shown = [latest.pop(selectors.grant_slot(grant), None) for grant in detail.grants]
    # What is left names grants the client no longer holds: revoked ones, mostly, which
    # keep their Undo here.
    gone = sorted(latest.values(), key=lambda revoke: revoke.value.lower())
    rows = _revoke_rows([revoke for revoke in shown if revoke] + gone)
    by_pk = {row.revoke.pk: row for row in rows}
    context = {
        "tenant": tenant,
        "can_change": role == Role.ADMIN,
        "portal_can_write": portal_can_write(tenant),
        "service_principal": sp,
        "detail": detail,
        "grant_rows": [
            (grant, by_pk[revoke.pk] if revoke else None)
            for grant, revoke in zip(detail.grants, shown, strict=True)
        ],
        "revoked_rows": [by_pk[revoke.pk] for revoke in gone],
        "checked": checked,
        "preview": preview,
    }
    return render(request, "tenants/application_detail.html", context)


def _service_principal(tenant: Tenant, app_id: UUID) -> ServicePrincipal:
    sp = (
        ServicePrincipal.objects.filter(tenant=tenant, app_id=app_id, removed_at__isnull=True)
        .order_by("pk")
        .first()
    )
    if sp is None:
        raise Http404("No such application in this tenant")
    return sp


def _features(sp: ServicePrincipal) -> list[Feature]:
    features = Feature.objects.filter(application__app_id=sp.app_id).select_related("application")
    return list(features.order_by("position", "pk"))


# --- revoking one grant ------------------------------------------------------------------


class GrantSlotForm(forms.Form):
    """Names one grant of an application: the permission and the consent type."""

    resource_app_id = forms.UUIDField()
    kind = forms.ChoiceField(choices=PermissionKind.choices)
    value = forms.CharField(max_length=200)
    consent = forms.ChoiceField(choices=Grant.Consent.choices)
    # A needed grant goes only once someone has seen which features it breaks.
    confirm = forms.BooleanField(required=False)

    @property
    def slot(self) -> selectors.RevokeSlot:
        data = self.cleaned_data
        return (str(data["resource_app_id"]), data["kind"], data["value"].lower(), data["consent"])


@dataclass(frozen=True)
class RevokeRow:
    """A revoke request as the pages show it."""

    revoke: RevokeRequest
    undoable: bool
    manual_steps: list[str]


def _revoke_rows(revokes: Sequence[RevokeRequest]) -> list[RevokeRow]:
    undoable = selectors.undoable_revoke_ids(revokes)
    return [
        RevokeRow(
            revoke=revoke,
            undoable=revoke.pk in undoable,
            manual_steps=(
                manual_steps(revoke) if revoke.status == RevokeRequest.Status.MANUAL else []
            ),
        )
        for revoke in revokes
    ]


@login_required
@require_POST
def revoke_create(request: HtmxHttpRequest, tenant_id: UUID, app_id: UUID) -> HttpResponse:
    """Revoke one grant (admins) or ask the admins to (readers, who may post only this).

    A needed grant first answers with a confirmation naming the features that would break.
    """
    tenant, role = tenant_for(request.user, tenant_id)
    sp = _service_principal(tenant, app_id)
    form = GrantSlotForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("Name the grant: resource, kind, value and consent")
    detail = selectors.application_in_tenant(tenant=tenant, service_principal=sp)
    grant = next((g for g in detail.grants if selectors.grant_slot(g) == form.slot), None)
    if grant is None:
        return _revoke_refused(request, tenant, sp, "The application does not hold this now.")
    if grant.finding.verdict == Verdict.NEEDED and not form.cleaned_data["confirm"]:
        return _revoke_confirm(request, tenant, role, sp, grant)
    data = form.cleaned_data
    try:
        revoke, created = revoke_request_create(
            tenant=tenant,
            client=sp,
            resource_app_id=data["resource_app_id"],
            kind=data["kind"],
            value=data["value"],
            consent=data["consent"],
            actor=request.user,
            role=role,
        )
    except ValueError as exc:
        return _revoke_refused(request, tenant, sp, str(exc))
    if request.htmx and not request.htmx.boosted:
        return _revoke_block(request, tenant, role, revoke)
    if not created:
        messages.info(request, f"A request to revoke {revoke.value} is already open.")
    elif revoke.status == RevokeRequest.Status.PENDING_APPROVAL:
        messages.success(request, f"Asked the admins to revoke {revoke.value}.")
    else:
        messages.success(request, f"Revoking {revoke.value}: {revoke.get_status_display()}.")
    return redirect("tenants:application", tenant_id=tenant.tenant_id, app_id=sp.app_id)


def _revoke_confirm(
    request: HtmxHttpRequest,
    tenant: Tenant,
    role: Role,
    sp: ServicePrincipal,
    grant: selectors.GrantDetail,
) -> HttpResponse:
    breaks = [
        requirement
        for requirement in grant.requirements
        if requirement.feature.key in grant.finding.features
    ]
    context = {
        "tenant": tenant,
        "can_change": role == Role.ADMIN,
        "service_principal": sp,
        "grant": grant,
        "breaks": breaks,
    }
    return _render_page_or_fragment(
        request, "tenants/revoke_confirm.html", "revoke-confirm", context
    )


def _revoke_refused(
    request: HtmxHttpRequest, tenant: Tenant, sp: ServicePrincipal, reason: str
) -> HttpResponse:
    """Said where the button was (htmx) or at the top of the page it came from."""
    if request.htmx and not request.htmx.boosted:
        return render(request, "tenants/revoke_parts.html#revoke-refused", {"reason": reason})
    messages.error(request, reason)
    return redirect("tenants:application", tenant_id=tenant.tenant_id, app_id=sp.app_id)


@login_required
@require_safe
def revoke_status(request: HtmxHttpRequest, tenant_id: UUID, revoke_id: int) -> HttpResponse:
    """One request's status, polled while it is open; 286 once it has ended stops that."""
    tenant, role = tenant_for(request.user, tenant_id)
    revoke = _revoke_request(tenant, revoke_id)
    response = _revoke_block(request, tenant, role, revoke)
    if not revoke.is_open:
        response.status_code = HTMX_STOP_POLLING
    return response


@login_required
@require_POST
def revoke_approve(request: HtmxHttpRequest, tenant_id: UUID, revoke_id: int) -> HttpResponse:
    tenant, role = tenant_for(request.user, tenant_id, write=True)
    revoke = _revoke_request(tenant, revoke_id)
    return _revoke_decided(request, tenant, role, revoke, revoke_request_approve, "Approved")


@login_required
@require_POST
def revoke_deny(request: HtmxHttpRequest, tenant_id: UUID, revoke_id: int) -> HttpResponse:
    tenant, role = tenant_for(request.user, tenant_id, write=True)
    revoke = _revoke_request(tenant, revoke_id)
    return _revoke_decided(request, tenant, role, revoke, revoke_request_deny, "Denied")


@login_required
@require_POST
def revoke_cancel(request: HtmxHttpRequest, tenant_id: UUID, revoke_id: int) -> HttpResponse:
    """Admins may cancel any waiting request; a reader only the one they asked for."""
    tenant, role = tenant_for(request.user, tenant_id)
    revoke = _revoke_request(tenant, revoke_id)
    if role != Role.ADMIN and revoke.requested_by_id != request.user.pk:
        raise PermissionDenied("Only the tenant's admins and the requester can cancel this")
    return _revoke_decided(request, tenant, role, revoke, revoke_request_cancel, "Cancelled")


@login_required
@require_POST
def revoke_undo(request: HtmxHttpRequest, tenant_id: UUID, revoke_id: int) -> HttpResponse:
    """Give back what a succeeded revoke took: a restore request, queued at once."""
    tenant, role = tenant_for(request.user, tenant_id, write=True)
    revoke = _revoke_request(tenant, revoke_id)
    return _revoke_decided(request, tenant, role, revoke, revoke_restore, "Restoring")


def _revoke_decided(
    request: HtmxHttpRequest,
    tenant: Tenant,
    role: Role,
    revoke: RevokeRequest,
    decide: Callable[..., RevokeRequest],
    done: str,
) -> HttpResponse:
    """Run ``decide``; show the request it leaves (a restore makes a new one) in place of
    the old one (htmx), or go back to the page the button was on."""
    try:
        shown = decide(revoke=revoke, actor=request.user)
    except ValueError as exc:
        if request.htmx and not request.htmx.boosted:
            context = {"reason": str(exc)}
            return render(request, "tenants/revoke_parts.html#revoke-refused", context)
        messages.error(request, str(exc))
        return redirect(_back(request, tenant))
    if request.htmx and not request.htmx.boosted:
        return _revoke_block(request, tenant, role, shown)
    messages.success(request, f"{done}: {revoke.get_action_display().lower()} of {revoke.value}.")
    return redirect(_back(request, tenant))


def _back(request: HtmxHttpRequest, tenant: Tenant) -> str:
    """The page a button was on (its form's ``next``), else the tenant's revoke requests."""
    back = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(back, {request.get_host()}, require_https=False):
        return back
    return reverse("tenants:revoke-list", kwargs={"tenant_id": tenant.tenant_id})


def _revoke_block(
    request: HtmxHttpRequest, tenant: Tenant, role: Role, revoke: RevokeRequest
) -> HttpResponse:
    context = {
        "tenant": tenant,
        "can_change": role == Role.ADMIN,
        "row": _revoke_rows([revoke])[0],
    }
    return render(request, "tenants/revoke_parts.html#revoke-request", context)


def _revoke_request(tenant: Tenant, revoke_id: int) -> RevokeRequest:
    related = ("client", "requested_by", "decided_by", "regranted_in_run")
    return get_object_or_404(
        RevokeRequest.objects.select_related(*related), pk=revoke_id, tenant=tenant
    )


# --- a tenant's revoke requests, bulk revokes ---------------------------------------------


@login_required
@require_safe
def revoke_list(request: HtmxHttpRequest, tenant_id: UUID) -> HttpResponse:
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
        "pending": _revoke_rows(list(requests.filter(status=waiting).order_by("pk"))),
        "page_obj": history,
        "history": _revoke_rows(list(history)),
    }
    return _render_page_or_fragment(request, "tenants/revoke_list.html", "revoke-history", context)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def revoke_unused(
    request: HtmxHttpRequest, tenant_id: UUID, app_id: UUID | None = None
) -> HttpResponse:
    """Everything unused or unexplained, of one application or of the whole tenant: listed
    exactly (GET), then revoked by an admin, one request per grant (POST)."""
    tenant, role = tenant_for(request.user, tenant_id, write=request.method == "POST")
    sp = _service_principal(tenant, app_id) if app_id else None
    if request.method == "POST":
        created = revoke_bulk_create(tenant=tenant, actor=request.user, role=role, client=sp)
        messages.success(
            request, f"{len(created)} revoke request{'s' if len(created) != 1 else ''} created."
        )
        return redirect("tenants:revoke-list", tenant_id=tenant.tenant_id)
    context = {
        "tenant": tenant,
        "can_change": role == Role.ADMIN,
        "service_principal": sp,
        "candidates": revoke_bulk_candidates(tenant=tenant, client=sp),
        "portal_can_write": portal_can_write(tenant),
    }
    return render(request, "tenants/revoke_unused.html", context)


# --- the audit trail ---------------------------------------------------------------------


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(
        required=False, label="Action", choices=[("", "Any action"), *AuditEvent.Action.choices]
    )
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )


def _filtered_events(
    request: HtmxHttpRequest, tenant: Tenant | None
) -> tuple[AuditFilterForm, QuerySet[AuditEvent]]:
    form = AuditFilterForm(request.GET)
    # A stale or hand-edited filter is dropped rather than turning the page into an error.
    form.is_valid()
    day: date | None = form.cleaned_data.get("since")
    since = timezone.make_aware(datetime.combine(day, time.min)) if day else None
    events = audit_events(
        tenant=tenant, action=form.cleaned_data.get("action") or None, since=since
    )
    if tenant is None and not request.user.is_superuser:
        events = events.filter(tenant__in=visible_tenants(request.user))
    return form, events.select_related("tenant")


@login_required
@require_safe
def audit_list(request: HtmxHttpRequest, tenant_id: UUID) -> HttpResponse:
    tenant, _ = tenant_for(request.user, tenant_id)
    return _audit_page(request, tenant)


@login_required
@require_safe
def audit_all(request: HtmxHttpRequest) -> HttpResponse:
    """Every tenant the user sees, in one trail: for operators."""
    return _audit_page(request, None)


def _audit_page(request: HtmxHttpRequest, tenant: Tenant | None) -> HttpResponse:
    form, events = _filtered_events(request, tenant)
    page = Paginator(events, AUDIT_EVENTS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"tenant": tenant, "form": form, "page_obj": page}
    return _render_page_or_fragment(request, "tenants/audit.html", "audit-results", context)


@login_required
@require_safe
def audit_csv(request: HtmxHttpRequest, tenant_id: UUID) -> HttpResponse:
    tenant, _ = tenant_for(request.user, tenant_id)
    _, events = _filtered_events(request, tenant)
    filename = f"audit-{tenant.tenant_id}-{timezone.now():%Y-%m-%d}.csv"
    return _attachment(_audit_rows(events), "text/csv; charset=utf-8", filename)


@login_required
@require_safe
def audit_all_csv(request: HtmxHttpRequest) -> HttpResponse:
    _, events = _filtered_events(request, None)
    filename = f"audit-{timezone.now():%Y-%m-%d}.csv"
    return _attachment(_audit_rows(events), "text/csv; charset=utf-8", filename)


def _audit_rows(events: QuerySet[AuditEvent]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["at", "tenant_id", "tenant", "actor", "action", "target", "details"])
    for event in events.iterator():
        tenant = event.tenant
        writer.writerow(
            [
                event.at.isoformat(),
                tenant.tenant_id if tenant else "",
                tenant.name if tenant else "",
                event.actor_name,
                event.action,
                event.target,
                json.dumps(event.details, sort_keys=True),
            ]
        )
    return out.getvalue()


# --- helpers -----------------------------------------------------------------------------


def _sync_context(tenant: Tenant, run: SyncRun | None, role: Role) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "run": run,
        "now": timezone.now(),
        "can_change": role == Role.ADMIN,
    }


def _changes(added: QuerySet[Grant], removed: QuerySet[Grant], run: SyncRun) -> QuerySet[Grant]:
    """Added and removed grants as one list, each marked, read application by application."""
    was_removed = Q(removed_in_run__isnull=False, removed_in_run_id__lte=run.pk)
    return (
        (added | removed)
        .annotate(was_removed=ExpressionWrapper(was_removed, output_field=BooleanField()))
        .order_by("client__display_name", "value", "kind", "pk")
    )
