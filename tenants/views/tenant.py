"""A tenant: its applications with their verdicts, the sync panel and "Sync now", the report."""

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.db.models.query import EmptyQuerySet
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.functional import cached_property
from django.views.decorators.http import require_POST, require_safe

from portal.htmx import render_page_or_fragment, vary_on_htmx, wants_fragment
from portal.http import AuthenticatedHttpRequest
from tenants import exports, selectors
from tenants.access import tenant_for
from tenants.findings import findings_current
from tenants.forms import ApplicationFilterForm
from tenants.models import ApplicationFinding, FindingSummary, RevokeRequest, SyncRun, Tenant
from tenants.services import sync_run_request
from tenants.views.runs import SYNC_ENDED_EVENT, sync_context
from tenants.views.sorting import sort_headers

APPLICATIONS_PER_PAGE = 50


class CountedPaginator(Paginator):
    """A paginator told how many objects there are, rather than counting them."""

    def __init__(self, object_list: QuerySet, per_page: int, *, count: int) -> None:
        super().__init__(object_list, per_page)
        self.known_count = count

    @cached_property
    def count(self) -> int:
        return self.known_count


# The columns a heading link sorts by (selectors.APPLICATION_ORDERS), left to right.
SORTABLE_COLUMNS = [
    ("name", "Application"),
    ("risk", "Risk"),
    ("privilege", "Privilege"),
    ("permissions", "Permissions"),
    ("unused", "Unused"),
    ("unexplained", "Unexplained"),
    ("missing", "Missing"),
    ("control_plane", "Control plane"),
]


@login_required
@require_safe
def tenant_detail(request: AuthenticatedHttpRequest, tenant_id: UUID) -> HttpResponse:
    tenant, role = tenant_for(request.user, tenant_id)
    form = ApplicationFilterForm(request.GET)
    form.is_valid()
    filters = form.filters()
    # Stored when a sync (or a switch, a justification...) changed them; worked out here
    # first only where they are missing or out of date (tenants.findings).
    summary = findings_current([tenant]).get(tenant.pk)
    context = {
        **sync_context(tenant, tenant.sync_runs.first(), role),
        "form": form,
        "headers": sort_headers(filters.sort or "name", SORTABLE_COLUMNS),
        "held_count": summary.applications if summary else 0,
        "pending_approvals": tenant.revoke_requests.filter(
            status=RevokeRequest.Status.PENDING_APPROVAL
        ).count(),
        "page_obj": _applications_page(tenant, summary, filters, request.GET.get("page")),
        "sync_ended_event": SYNC_ENDED_EVENT,
    }
    return render_page_or_fragment(
        request, "tenants/tenant_detail.html", "application-results", context
    )


def _applications_page(
    tenant: Tenant,
    summary: FindingSummary | None,
    filters: selectors.ApplicationFilters,
    number: str | None,
) -> Page:
    """The page of the tenant's stored findings that ``filters`` ask for; counted from the
    summary where it knows (no filter, or one), else by the database."""
    if summary is None:  # not synced yet
        return Paginator(ApplicationFinding.objects.none(), APPLICATIONS_PER_PAGE).get_page(1)
    shown = selectors.application_findings(tenant, filters)
    count = selectors.stored_count(summary, filters)
    if count is None or isinstance(shown, EmptyQuerySet):
        return Paginator(shown, APPLICATIONS_PER_PAGE).get_page(number)
    return CountedPaginator(shown, APPLICATIONS_PER_PAGE, count=count).get_page(number)


@login_required
@require_POST
@vary_on_htmx
def sync_now(request: AuthenticatedHttpRequest, tenant_id: UUID) -> HttpResponse:
    tenant, role = tenant_for(request.user, tenant_id, write=True)
    run = sync_run_request(tenant=tenant, trigger=SyncRun.Trigger.MANUAL, requested_by=request.user)
    if run is None:
        # The database keeps one open run per tenant: show that one rather than a second.
        messages.info(request, "A sync of this tenant is already under way; here is its progress.")
    if wants_fragment(request):
        # An open run is always the tenant's newest, so the latest run is the one to show.
        context = sync_context(tenant, tenant.sync_runs.first(), role)
        return render(request, "tenants/tenant_detail.html#sync-panel", context)
    return redirect("tenants:tenant-detail", tenant_id=tenant.tenant_id)


@login_required
@require_safe
def report_json(request: AuthenticatedHttpRequest, tenant_id: UUID) -> StreamingHttpResponse:
    tenant, _ = tenant_for(request.user, tenant_id)
    return exports.streamed_attachment(
        exports.tenant_report_json(tenant=tenant),
        content_type="application/json",
        filename=_report_filename(tenant, "json"),
    )


@login_required
@require_safe
def report_csv_export(request: AuthenticatedHttpRequest, tenant_id: UUID) -> StreamingHttpResponse:
    tenant, _ = tenant_for(request.user, tenant_id)
    return exports.streamed_attachment(
        exports.tenant_report_csv(tenant=tenant),
        content_type="text/csv; charset=utf-8",
        filename=_report_filename(tenant, "csv"),
    )


def _report_filename(tenant: Tenant, extension: str) -> str:
    """Named after the tenant and the day of the sync it reports (today before any)."""
    synced = tenant.last_good_sync.finished_at if tenant.last_good_sync else None
    return f"permissions-{tenant.tenant_id}-{synced or timezone.now():%Y-%m-%d}.{extension}"
