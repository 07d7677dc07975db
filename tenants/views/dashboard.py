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
from tenants.findings import findings_current
from tenants.views.sorting import sort_headers

TENANTS_PER_PAGE = 24
# The dashboard's "look at these first": the riskiest applications across the user's tenants.
RISKIEST_SHOWN = 10
MATRIX_ROWS_PER_PAGE = 50
MATRIX_TENANTS_PER_PAGE = 12
MATRIX_COLUMNS = [("name", "Application"), ("risk", "Risk")]


@login_required
@require_safe
def dashboard(request: AuthenticatedHttpRequest) -> HttpResponse:
    visible = visible_tenants(request.user)
    tenants = selectors.tenants_with_latest_status(visible)
    page = Paginator(tenants, TENANTS_PER_PAGE).get_page(request.GET.get("page"))
    shown = list(page)
    context = {
        "page_obj": page,
        # Stored counts (tenants.findings), worked out here only where missing or stale.
        "overviews": selectors.tenant_overviews(shown, findings_current(shown)),
        "riskiest": selectors.riskiest_applications(visible, limit=RISKIEST_SHOWN),
        "sees_all_tenants": request.user.is_superuser or is_operator(request.user),
        "now": timezone.now(),
    }
    return render(request, "tenants/dashboard.html", context)


@login_required
@require_safe
def matrix(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Applications x tenants, for whoever sees several tenants (operators): a page of
    tenants as columns, a page of the applications they hold as rows, by name or risk."""
    sort = request.GET.get("sort", "")
    sort = sort if sort.removeprefix("-") in selectors.MATRIX_ORDERS else "name"
    columns = Paginator(visible_tenants(request.user), MATRIX_TENANTS_PER_PAGE).get_page(
        request.GET.get("tenants")
    )
    tenants = list(columns)
    findings_current(tenants)
    page = selectors.matrix_page(
        tenants,
        sort=sort,
        number=_page_number(request.GET.get("page")),
        per_page=MATRIX_ROWS_PER_PAGE,
    )
    context = {
        "tenants": tenants,
        "columns": columns,
        "page": page,
        "rows": page.rows,
        "headers": sort_headers(sort, MATRIX_COLUMNS),
    }
    return render_page_or_fragment(request, "tenants/matrix.html", "matrix-table", context)


# Beyond any real matrix; a larger number would only make the database count further.
MATRIX_MAX_PAGE = 10_000


def _page_number(text: str | None) -> int:
    """A page number from the query string; anything else is the first page."""
    try:
        return min(max(1, int(text or 1)), MATRIX_MAX_PAGE)
    except ValueError:
        return 1
