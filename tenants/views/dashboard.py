"""The portal's home page, and the applications x tenants matrix for operators."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from portal.htmx import render_page_or_fragment
from portal.http import AuthenticatedHttpRequest
from tenants import selectors
from tenants.access import is_operator, visible_tenants

TENANTS_PER_PAGE = 24
MATRIX_ROWS_PER_PAGE = 50


@login_required
@require_safe
def dashboard(request: AuthenticatedHttpRequest) -> HttpResponse:
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
def matrix(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Applications x tenants, for whoever sees several tenants (operators)."""
    tenants = list(visible_tenants(request.user))
    applications = selectors.matrix_applications(tenants)
    page = Paginator(applications, MATRIX_ROWS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "tenants": tenants,
        "page_obj": page,
        "rows": selectors.matrix_rows(tenants, page),
    }
    return render_page_or_fragment(request, "tenants/matrix.html", "matrix-table", context)
