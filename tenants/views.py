"""Tenant pages: the dashboard, the operators' matrix, a tenant's applications and sync
status, one application in a tenant (verdicts, feature switches), sync history, exports.

Every view asks ``tenants.access`` who may see and change what: outsiders get 404,
readers get 403 on anything that changes state. Reads answer GET (and HEAD) only; only the
views that change state take a POST, so a reader's POST is always refused.
"""

import json
from typing import Any
from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Page, Paginator
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe
from django_htmx.http import HTMX_STOP_POLLING, trigger_client_event

from permissions.models import Feature

# The page-or-fragment rule is the portal's one convention for htmx; it lives with the
# first pages that used it.
from permissions.views import HtmxHttpRequest, _render_page_or_fragment
from tenants import selectors
from tenants.access import Role, is_operator, tenant_for, visible_tenants
from tenants.models import Grant, ServicePrincipal, SyncRun, Tenant
from tenants.report import report_csv, tenant_report
from tenants.services import features_set, sync_run_queue
from tenants.tasks import sync_tenant

TENANTS_PER_PAGE = 24
APPLICATIONS_PER_PAGE = 50
MATRIX_ROWS_PER_PAGE = 50
RUNS_PER_PAGE = 25
CHANGES_PER_PAGE = 50
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
    context = {"tenant": tenant, "page_obj": page, "rows": _with_status(page)}
    return render(request, "tenants/run_list.html", context)


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
    context = {
        "tenant": tenant,
        "can_change": role == Role.ADMIN,
        "service_principal": sp,
        "detail": detail,
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


# --- helpers -----------------------------------------------------------------------------


def _status(value: str | None) -> SyncRun.Status | None:
    # A status read from the database is a plain string; the choice carries the colour.
    return SyncRun.Status(value) if value else None


def _with_status(runs: Page) -> list[tuple[SyncRun, SyncRun.Status | None]]:
    return [(run, _status(run.status)) for run in runs]


def _sync_context(tenant: Tenant, run: SyncRun | None, role: Role) -> dict[str, Any]:
    status = _status(run.status if run else None)
    return {
        "tenant": tenant,
        "run": run,
        "status": status,
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
