"""A tenant: its applications with their verdicts, the sync panel and "Sync now", the report."""

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from portal.htmx import render_page_or_fragment, vary_on_htmx, wants_fragment
from portal.http import AuthenticatedHttpRequest
from tenants import exports, selectors
from tenants.access import tenant_for
from tenants.forms import ApplicationFilterForm
from tenants.models import RevokeRequest, SyncRun, Tenant
from tenants.services import sync_run_request
from tenants.views.runs import SYNC_ENDED_EVENT, sync_context

APPLICATIONS_PER_PAGE = 50


@login_required
@require_safe
def tenant_detail(request: AuthenticatedHttpRequest, tenant_id: UUID) -> HttpResponse:
    tenant, role = tenant_for(request.user, tenant_id)
    form = ApplicationFilterForm(request.GET)
    # A stale or hand-edited filter is dropped rather than turning the page into an error.
    form.is_valid()
    shown = _applications(tenant, form.cleaned_data) if tenant.last_good_sync else []
    context = {
        **sync_context(tenant, tenant.sync_runs.first(), role),
        "form": form,
        "held_count": selectors.holding_clients([tenant.pk]).count(),
        "pending_approvals": tenant.revoke_requests.filter(
            status=RevokeRequest.Status.PENDING_APPROVAL
        ).count(),
        "page_obj": Paginator(shown, APPLICATIONS_PER_PAGE).get_page(request.GET.get("page")),
        "sync_ended_event": SYNC_ENDED_EVENT,
    }
    return render_page_or_fragment(
        request, "tenants/tenant_detail.html", "application-results", context
    )


def _applications(tenant: Tenant, filters: dict[str, Any]) -> list[selectors.HeldApplication]:
    """The applications holding grants in a synced tenant that pass the page's filters."""
    # Name and publisher narrow the query; verdicts exist only once worked out.
    q, party = filters.get("q", ""), filters.get("party", "")
    inactive = filters.get("activity") == "inactive"
    clients = (
        selectors.clients_matching(q=q, party=party, inactive=inactive)
        if q or party or inactive
        else None
    )
    held = selectors.held_applications([tenant], clients=clients)
    verdict = filters.get("verdict")
    return [item for item in held if not verdict or getattr(item.counts, verdict)]


@login_required
@require_POST
@vary_on_htmx
def sync_now(request: AuthenticatedHttpRequest, tenant_id: UUID) -> HttpResponse:
    tenant, role = tenant_for(request.user, tenant_id, write=True)
    run = sync_run_request(tenant=tenant, trigger=SyncRun.Trigger.MANUAL)
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
