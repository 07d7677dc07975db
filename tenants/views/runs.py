"""A tenant's sync runs: the sync panel's polled status, the history, what one run changed."""

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe
from django_htmx.http import HTMX_STOP_POLLING, trigger_client_event

from portal.htmx import render_page_or_fragment
from portal.http import AuthenticatedHttpRequest
from tenants import selectors
from tenants.access import Role, run_for, tenant_for
from tenants.models import Grant, HeldSnapshot, SyncRun, Tenant
from tenants.sync import HeldSyncError, sync_run_apply_held, sync_run_discard_held

RUNS_PER_PAGE = 25
CHANGES_PER_PAGE = 50
# Sent when a watched run ends, so the tenant page reloads its applications.
SYNC_ENDED_EVENT = "sync-ended"


def sync_context(tenant: Tenant, run: SyncRun | None, role: Role) -> dict[str, Any]:
    """What the sync panel (``tenants/tenant_detail.html#sync-panel``) shows of ``run``,
    and the tenant's held run, if any, that waits for an admin."""
    return {
        "tenant": tenant,
        "run": run,
        "held_run": tenant.sync_runs.filter(status=SyncRun.Status.HELD).first(),
        "now": timezone.now(),
        "can_change": role == Role.ADMIN,
    }


@login_required
@require_safe
def run_status(request: AuthenticatedHttpRequest, tenant_id: UUID, run_id: int) -> HttpResponse:
    """The polled part of the sync panel; 286 once the run has ended stops the polling."""
    run, role = run_for(request.user, tenant_id, run_id)
    context = sync_context(run.tenant, run, role)
    response = render(request, "tenants/tenant_detail.html#sync-run", context)
    if not run.is_open:
        response.status_code = HTMX_STOP_POLLING
        trigger_client_event(response, SYNC_ENDED_EVENT)
    return response


@login_required
@require_safe
def run_list(request: AuthenticatedHttpRequest, tenant_id: UUID) -> HttpResponse:
    tenant, _ = tenant_for(request.user, tenant_id)
    runs = tenant.sync_runs.select_related("requested_by")
    page = Paginator(runs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "tenants/run_list.html", {"tenant": tenant, "page_obj": page})


@login_required
@require_safe
def run_detail(request: AuthenticatedHttpRequest, tenant_id: UUID, run_id: int) -> HttpResponse:
    run, role = run_for(request.user, tenant_id, run_id)
    diff = selectors.run_diff(run)
    changes = Paginator(_changes(diff.added, diff.removed, run), CHANGES_PER_PAGE)
    page = changes.get_page(request.GET.get("page"))
    page.object_list = selectors.consenting_users_named(run.tenant, page.object_list)
    context = {
        **sync_context(run.tenant, run, role),
        "since": diff.since,
        "added": diff.added.count(),
        "removed": diff.removed.count(),
        "page_obj": page,
        "would_remove": _would_remove(run),
    }
    return render_page_or_fragment(request, "tenants/run_detail.html", "changes", context)


def _would_remove(run: SyncRun) -> QuerySet[Grant] | None:
    """A held run's removals, as far as its page lists them (None for other runs)."""
    if run.status != SyncRun.Status.HELD:
        return None
    held = HeldSnapshot.objects.filter(run=run).values_list("removed_grants", flat=True).first()
    return (
        Grant.objects.filter(tenant_id=run.tenant_id, pk__in=held or [])
        .select_related("client")
        .order_by("client__display_name", "value", "kind", "pk")
    )


@login_required
@require_POST
def run_apply(request: AuthenticatedHttpRequest, tenant_id: UUID, run_id: int) -> HttpResponse:
    """Apply a held run's snapshot (admins)."""
    run, _ = run_for(request.user, tenant_id, run_id, write=True)
    try:
        sync_run_apply_held(run=run, actor=request.user)
    except HeldSyncError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Sync {run.pk} applied: {run.grants_removed} grants removed, "
            f"{run.grants_added} added.",
        )
    return redirect("tenants:tenant-detail", tenant_id=run.tenant.tenant_id)


@login_required
@require_POST
def run_discard(request: AuthenticatedHttpRequest, tenant_id: UUID, run_id: int) -> HttpResponse:
    """Discard a held run's snapshot (admins); the tenant keeps its previous one."""
    run, _ = run_for(request.user, tenant_id, run_id, write=True)
    try:
        sync_run_discard_held(run=run, actor=request.user)
    except HeldSyncError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Sync {run.pk} discarded; nothing it read was applied.")
    return redirect("tenants:tenant-detail", tenant_id=run.tenant.tenant_id)


def _changes(added: QuerySet[Grant], removed: QuerySet[Grant], run: SyncRun) -> QuerySet[Grant]:
    """Added and removed grants as one list, each marked, read application by application."""
    was_removed = Q(removed_in_run__isnull=False, removed_in_run_id__lte=run.pk)
    return (
        (added | removed)
        .annotate(was_removed=ExpressionWrapper(was_removed, output_field=BooleanField()))
        .order_by("client__display_name", "value", "kind", "pk")
    )
