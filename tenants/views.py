"""Tenant pages: the tenant list, a tenant's sync status and applications, its sync history
and what each sync changed.

Staff only for now (``staff_member_required``): until Entra SSO and per-tenant roles
arrive, these pages show every tenant to whoever may see any of them, so only the
portal's own staff may.
"""

from collections import Counter
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.paginator import Page, Paginator
from django.db.models import BooleanField, ExpressionWrapper, OuterRef, Q, QuerySet, Subquery
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST
from django_htmx.http import HTMX_STOP_POLLING, trigger_client_event

# The page-or-fragment rule is the portal's one convention for htmx; it lives with the
# first pages that used it.
from permissions.views import HtmxHttpRequest, _render_page_or_fragment
from tenants.models import Grant, SyncRun, Tenant
from tenants.report import tenant_report
from tenants.selectors import run_diff
from tenants.services import sync_run_queue
from tenants.tasks import sync_tenant

TENANTS_PER_PAGE = 25
RUNS_PER_PAGE = 25
CHANGES_PER_PAGE = 50
# Sent when a watched run ends, so the tenant page reloads its applications summary.
SYNC_ENDED_EVENT = "sync-ended"
VERDICTS = ("needed", "unused", "unexplained", "missing")


@dataclass(frozen=True)
class ApplicationSummary:
    display_name: str
    app_id: str
    permissions: int
    verdicts: list[tuple[str, int]]  # (verdict, count) in VERDICTS order


@staff_member_required
def tenant_list(request: HtmxHttpRequest) -> HttpResponse:
    latest_status = SyncRun.objects.filter(tenant=OuterRef("pk")).order_by("-pk").values("status")
    tenants = Tenant.objects.select_related("last_good_sync").annotate(
        latest_status=Subquery(latest_status[:1])
    )
    page = Paginator(tenants, TENANTS_PER_PAGE).get_page(request.GET.get("page"))
    rows = [(tenant, _status(tenant.latest_status)) for tenant in page]
    context = {"page_obj": page, "rows": rows, "now": timezone.now()}
    return render(request, "tenants/tenant_list.html", context)


@staff_member_required
def tenant_detail(request: HtmxHttpRequest, tenant_id: UUID) -> HttpResponse:
    tenant = _tenant(tenant_id)
    context = {
        **_sync_context(tenant, tenant.sync_runs.first()),
        "applications": _application_summaries(tenant) if tenant.last_good_sync else [],
        "sync_ended_event": SYNC_ENDED_EVENT,
    }
    # htmx asks for the page again when a sync ends: only the applications are redrawn.
    return _render_page_or_fragment(request, "tenants/tenant_detail.html", "applications", context)


@staff_member_required
@require_POST
def sync_now(request: HtmxHttpRequest, tenant_id: UUID) -> HttpResponse:
    tenant = _tenant(tenant_id)
    run = sync_run_queue(tenant=tenant, trigger=SyncRun.Trigger.MANUAL)
    if run is None:
        # The database keeps one open run per tenant: show that one rather than a second.
        messages.info(request, "A sync of this tenant is already under way; here is its progress.")
    else:
        sync_tenant.delay_on_commit(run.pk)
    if request.htmx and not request.htmx.boosted:
        # An open run is always the tenant's newest, so the latest run is the one to show.
        context = _sync_context(tenant, tenant.sync_runs.first())
        return render(request, "tenants/tenant_detail.html#sync-panel", context)
    return redirect("tenants:tenant-detail", tenant_id=tenant.tenant_id)


@staff_member_required
def run_status(request: HtmxHttpRequest, tenant_id: UUID, run_id: int) -> HttpResponse:
    """The polled part of the sync panel; 286 once the run has ended stops the polling."""
    tenant = _tenant(tenant_id)
    run = get_object_or_404(SyncRun, pk=run_id, tenant=tenant)
    response = render(request, "tenants/tenant_detail.html#sync-run", _sync_context(tenant, run))
    if not run.is_open:
        response.status_code = HTMX_STOP_POLLING
        trigger_client_event(response, SYNC_ENDED_EVENT)
    return response


@staff_member_required
def run_list(request: HtmxHttpRequest, tenant_id: UUID) -> HttpResponse:
    tenant = _tenant(tenant_id)
    page = Paginator(tenant.sync_runs.all(), RUNS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"tenant": tenant, "page_obj": page, "rows": _with_status(page)}
    return render(request, "tenants/run_list.html", context)


@staff_member_required
def run_detail(request: HtmxHttpRequest, tenant_id: UUID, run_id: int) -> HttpResponse:
    tenant = _tenant(tenant_id)
    run = get_object_or_404(SyncRun, pk=run_id, tenant=tenant)
    diff = run_diff(run)
    changes = Paginator(_changes(diff.added, diff.removed, run), CHANGES_PER_PAGE)
    context = {
        **_sync_context(tenant, run),
        "since": diff.since,
        "added": diff.added.count(),
        "removed": diff.removed.count(),
        "page_obj": changes.get_page(request.GET.get("page")),
    }
    return _render_page_or_fragment(request, "tenants/run_detail.html", "changes", context)


def _tenant(tenant_id: UUID) -> Tenant:
    return get_object_or_404(Tenant.objects.select_related("last_good_sync"), tenant_id=tenant_id)


def _status(value: str | None) -> SyncRun.Status | None:
    # A status read from the database is a plain string; the choice carries the colour.
    return SyncRun.Status(value) if value else None


def _with_status(runs: Page) -> list[tuple[SyncRun, SyncRun.Status | None]]:
    return [(run, _status(run.status)) for run in runs]


def _sync_context(tenant: Tenant, run: SyncRun | None) -> dict[str, Any]:
    status = _status(run.status if run else None)
    return {"tenant": tenant, "run": run, "status": status, "now": timezone.now()}


def _changes(added: QuerySet[Grant], removed: QuerySet[Grant], run: SyncRun) -> QuerySet[Grant]:
    """Added and removed grants as one list, each marked, read application by application."""
    was_removed = Q(removed_in_run__isnull=False, removed_in_run_id__lte=run.pk)
    return (
        (added | removed)
        .annotate(was_removed=ExpressionWrapper(was_removed, output_field=BooleanField()))
        .order_by("client__display_name", "value", "kind", "pk")
    )


def _application_summaries(tenant: Tenant) -> list[ApplicationSummary]:
    summaries = []
    for app in tenant_report(tenant=tenant)["applications"]:
        counts = Counter(grant["verdict"] for grant in app["grants"])
        counts["missing"] = len(app["missing"])
        summaries.append(
            ApplicationSummary(
                display_name=app["display_name"],
                app_id=app["app_id"],
                permissions=len(app["grants"]),
                verdicts=[(verdict, counts[verdict]) for verdict in VERDICTS],
            )
        )
    return summaries
