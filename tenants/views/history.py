"""A tenant's grants over time: its page, and the fragment the tenant and sync history
pages load when their "Grants over time" section scrolls into view (so that the history,
which walks every grant change, never slows those pages down)."""

from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from portal.htmx import vary_on_htmx, wants_fragment
from portal.http import AuthenticatedHttpRequest
from tenants.access import tenant_for
from tenants.charts import history_charts
from tenants.history import HISTORY_RUNS, grant_history


@login_required
@require_safe
@vary_on_htmx
def history(request: AuthenticatedHttpRequest, tenant_id: UUID) -> HttpResponse:
    """``?runs=N`` shows the newest N successful syncs (1 to HISTORY_RUNS, the default)."""
    tenant, _ = tenant_for(request.user, tenant_id)
    try:
        runs = min(max(int(request.GET.get("runs", HISTORY_RUNS)), 1), HISTORY_RUNS)
    except ValueError:
        runs = HISTORY_RUNS
    points = grant_history(tenant, runs=runs)
    context = {"tenant": tenant, "runs": len(points), "charts": history_charts(tenant, points)}
    # The section lives in charts.html, which this page and the placeholders share.
    template = (
        "tenants/charts.html#grant-history" if wants_fragment(request) else "tenants/history.html"
    )
    return render(request, template, context)
