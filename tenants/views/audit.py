"""The audit trail, of one tenant or of every tenant the user sees, as a page and as CSV."""

from datetime import date, datetime, time, timedelta
from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.http import require_safe

from portal.htmx import render_page_or_fragment
from portal.http import AuthenticatedHttpRequest
from tenants import exports
from tenants.access import tenant_for, visible_tenants
from tenants.audit import audit_events, event_link
from tenants.forms import AuditFilterForm
from tenants.models import AuditEvent, Tenant

AUDIT_EVENTS_PER_PAGE = 50


@login_required
@require_safe
def audit_list(request: AuthenticatedHttpRequest, tenant_id: UUID) -> HttpResponse:
    tenant, _ = tenant_for(request.user, tenant_id)
    return _audit_page(request, tenant)


@login_required
@require_safe
def audit_all(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Every tenant the user sees, in one trail: for operators."""
    return _audit_page(request, None)


@login_required
@require_safe
def audit_csv(request: AuthenticatedHttpRequest, tenant_id: UUID) -> StreamingHttpResponse:
    tenant, _ = tenant_for(request.user, tenant_id)
    _, events = _filtered_events(request, tenant)
    filename = f"audit-{tenant.tenant_id}-{timezone.now():%Y-%m-%d}.csv"
    return _csv_download(events, filename)


@login_required
@require_safe
def audit_all_csv(request: AuthenticatedHttpRequest) -> StreamingHttpResponse:
    _, events = _filtered_events(request, None)
    return _csv_download(events, f"audit-{timezone.now():%Y-%m-%d}.csv")


def _csv_download(events: QuerySet[AuditEvent], filename: str) -> StreamingHttpResponse:
    """Streamed from a server-side cursor: a trail of years costs no more memory than a day's."""
    return exports.streamed_attachment(
        exports.audit_csv(events), content_type="text/csv; charset=utf-8", filename=filename
    )


def _audit_page(request: AuthenticatedHttpRequest, tenant: Tenant | None) -> HttpResponse:
    form, events = _filtered_events(request, tenant)
    page = Paginator(events, AUDIT_EVENTS_PER_PAGE).get_page(request.GET.get("page"))
    rows = [(event, event_link(event)) for event in page]
    context = {"tenant": tenant, "form": form, "page_obj": page, "rows": rows}
    return render_page_or_fragment(request, "tenants/audit.html", "audit-results", context)


def _filtered_events(
    request: AuthenticatedHttpRequest, tenant: Tenant | None
) -> tuple[AuditFilterForm, QuerySet[AuditEvent]]:
    form = AuditFilterForm(request.GET)
    # A stale or hand-edited filter is dropped rather than turning the page into an error.
    form.is_valid()
    data = form.cleaned_data
    last_day: date | None = data.get("until")
    events = audit_events(
        tenant=tenant,
        action=data.get("action") or None,
        since=_day_start(data.get("since")),
        # "Until" a day includes that day: the events before the next one begins.
        before=_day_start(last_day + timedelta(days=1) if last_day else None),
        actor=(data.get("actor") or "").strip(),
        application=(data.get("application") or "").strip(),
        hide_sign_ins=bool(data.get("hide_sign_ins")),
    )
    if tenant is None and not request.user.is_superuser:
        events = events.filter(tenant__in=visible_tenants(request.user))
    return form, events.select_related("tenant")


def _day_start(day: date | None) -> datetime | None:
    return timezone.make_aware(datetime.combine(day, time.min)) if day else None
