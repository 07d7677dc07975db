"""What the tenant pages' tests share besides fixtures (those are in conftest.py): a
succeeded run, a client with verdicts of each kind, the pages' URLs."""

import datetime as dt

from django.urls import reverse

from tenants.models import ServicePrincipal, SyncRun, Tenant
from tests.factories import (
    ApplicationFactory,
    FeatureFactory,
    GrantFactory,
    RequirementFactory,
    ServicePrincipalFactory,
    SyncRunFactory,
)

STARTED = dt.datetime(2026, 3, 14, 9, 30, tzinfo=dt.UTC)
FINISHED = STARTED + dt.timedelta(seconds=12.5)
HTMX = {"HTTP_HX_REQUEST": "true"}


def succeeded_run(tenant: Tenant, **numbers: object) -> SyncRun:
    """A succeeded run that is the tenant's last good sync."""
    return SyncRunFactory(
        tenant=tenant,
        succeeded=True,
        last_good=True,
        started_at=STARTED,
        finished_at=FINISHED,
        **numbers,
    )


def with_verdicts(tenant: Tenant, run: SyncRun, name: str = "247connect") -> ServicePrincipal:
    """A client holding one needed, one unused and two unexplained grants (one of them of
    RoleManagement.ReadWrite.Directory), and missing one permission."""
    application = ApplicationFactory(name=name)
    on = FeatureFactory(application=application, default_enabled=True)
    off = FeatureFactory(application=application, default_enabled=False)
    RequirementFactory(feature=on, permission_value="Device.Read.All")
    RequirementFactory(feature=on, permission_value="Group.Read.All")  # not granted: missing
    RequirementFactory(feature=off, permission_value="Mail.Send")
    client = ServicePrincipalFactory(tenant=tenant, app_id=application.app_id, display_name=name)
    for value in ("Device.Read.All", "Mail.Send", "Sites.Read.All"):
        GrantFactory(client=client, value=value, first_seen_run=run)
    GrantFactory(client=client, value="RoleManagement.ReadWrite.Directory", first_seen_run=run)
    return client


def dashboard_url() -> str:
    return reverse("tenants:dashboard")


def tenant_url(tenant: Tenant) -> str:
    return reverse("tenants:tenant-detail", args=[tenant.tenant_id])


def sync_url(tenant: Tenant) -> str:
    return reverse("tenants:sync-now", args=[tenant.tenant_id])


def history_url(tenant: Tenant) -> str:
    return reverse("tenants:run-list", args=[tenant.tenant_id])


def run_url(run: SyncRun) -> str:
    return reverse("tenants:run-detail", args=[run.tenant.tenant_id, run.pk])


def status_url(run: SyncRun) -> str:
    return reverse("tenants:run-status", args=[run.tenant.tenant_id, run.pk])


def app_url(tenant: Tenant, sp: ServicePrincipal) -> str:
    return reverse("tenants:application", args=[tenant.tenant_id, sp.app_id])
