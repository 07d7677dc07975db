"""Sign-in activity read over HTTPS from the emulator through the real sync: stored per
service principal, in the report's ``sign_in``, and "unknown" (never a failed sync) where
the tenant has no Entra ID P1 or the portal lacks AuditLog.Read.All."""

import datetime as dt
import io
import json

import pytest
from django.core.management import call_command
from django.utils import timezone

from tenants.models import ServicePrincipal, Tenant
from tenants.services import tenant_add
from tenants.signins import Activity, SignIns, is_inactive, sign_ins_apply
from tests.helpers import demo_catalog, sync
from tests.ids import CONTOSO, FABRIKAM, WOODGROVE

pytestmark = pytest.mark.django_db(transaction=True)

RECENT = "8708fc71-9f71-4ad5-8445-a0746692feeb"  # 247connect: app-only 2 hours ago
OLD = "3c1a9d6e-5b2f-4e8a-9c7d-1f0e2b3a4c5d"  # Teams Rooms: 300 days ago
NONE = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"  # Lookout: no sign-in on record
BOTH = "6f4e2a1b-8c3d-4e5f-a6b7-c8d9e0f1a2b3"  # AskCody: app-only 10 days, delegated 3 hours


def report(tenant_id: str) -> dict[str, dict]:
    out = io.StringIO()
    call_command("report", tenant_id, "--format", "json", stdout=out)
    return {app["app_id"]: app for app in json.loads(out.getvalue())["applications"]}


def ago(moment: dt.datetime | None) -> dt.timedelta:
    assert moment is not None
    return timezone.now() - moment


def test_contoso_records_each_apps_last_sign_in(emu, contoso, client_for):
    demo_catalog()
    sync(contoso, client_for(CONTOSO))
    assert contoso.sign_in_status == ""
    sps = {str(sp.app_id): sp for sp in ServicePrincipal.objects.filter(tenant=contoso)}
    assert dt.timedelta(hours=1) < ago(sps[RECENT].last_sign_in_at) < dt.timedelta(hours=3)
    assert sps[RECENT].last_delegated_sign_in_at is None
    assert dt.timedelta(days=299) < ago(sps[OLD].last_app_sign_in_at) < dt.timedelta(days=301)
    assert sps[NONE].last_sign_in_at is None
    assert dt.timedelta(days=9) < ago(sps[BOTH].last_app_sign_in_at) < dt.timedelta(days=11)
    assert ago(sps[BOTH].last_delegated_sign_in_at) < dt.timedelta(hours=4)
    assert sps[BOTH].last_sign_in_at == sps[BOTH].last_delegated_sign_in_at

    apps = report(CONTOSO)
    assert apps[RECENT]["sign_in"]["inactive"] is False
    assert apps[RECENT]["sign_in"]["last"].endswith("Z")
    assert apps[OLD]["sign_in"]["inactive"] is True
    assert apps[NONE]["sign_in"] == {"last": None, "inactive": True}


def test_fabrikam_without_p1_syncs_and_its_sign_ins_are_unknown(emu, fabrikam, client_for):
    demo_catalog()
    run = sync(fabrikam, client_for(FABRIKAM))
    assert fabrikam.sign_in_status == "no_licence"
    assert any("Sign-in activity not read" in n and "P1" in n for n in run.notes)
    apps = report(FABRIKAM)
    assert apps and all(app["sign_in"] is None for app in apps.values())


def test_woodgrove_without_audit_log_permission_syncs_and_says_why(emu, client_for):
    tenant = tenant_add(tenant_id=WOODGROVE, name="Woodgrove")[0]
    run = sync(tenant, client_for(WOODGROVE))
    assert tenant.sign_in_status == "no_permission"
    assert any("AuditLog.Read.All" in n for n in run.notes)
    assert all(app["sign_in"] is None for app in report(WOODGROVE).values())


def test_a_failed_read_keeps_the_last_values_and_marks_the_tenant_unknown(db):
    tenant = Tenant.objects.create(tenant_id=CONTOSO, name="Contoso")
    sp = ServicePrincipal.objects.create(
        tenant=tenant, object_id=BOTH, app_id=RECENT, display_name="247connect"
    )
    when = timezone.now() - dt.timedelta(days=3)
    sign_ins_apply(tenant=tenant, sign_ins=SignIns(by_app_id={RECENT: Activity(last=when)}))
    sp.refresh_from_db()
    assert sp.last_sign_in_at == when
    sign_ins_apply(tenant=tenant, sign_ins=SignIns(status="failed"))
    sp.refresh_from_db()
    tenant.refresh_from_db()
    assert (sp.last_sign_in_at, tenant.sign_in_status) == (when, "failed")


def test_inactive_follows_the_setting(settings):
    now = timezone.now()
    settings.INACTIVE_DAYS = 30
    assert is_inactive(now - dt.timedelta(days=31), now)
    assert not is_inactive(now - dt.timedelta(days=29), now)
    assert is_inactive(None, now)


def test_risk_counts_inactivity_only_where_sign_ins_are_known(db):
    from tenants.risk import application_risk
    from tenants.selectors import application_in_tenant
    from tests.factories import GrantFactory, SyncRunFactory

    tenant = Tenant.objects.create(tenant_id=CONTOSO, name="Contoso", sign_in_status="")
    run = SyncRunFactory(tenant=tenant, succeeded=True, last_good=True)
    sp = ServicePrincipal.objects.create(
        tenant=tenant, object_id=BOTH, app_id=OLD, display_name="Teams Rooms"
    )
    GrantFactory(client=sp, value="Mail.Read", first_seen_run=run)
    tenant.refresh_from_db()

    def reasons() -> str:
        detail = application_in_tenant(tenant=tenant, service_principal=sp)
        return repr(application_risk(tenant=tenant, service_principal=sp, detail=detail))

    assert "inactive: no sign-in on record in the last 90 days" in reasons()
    tenant.sign_in_status = "no_licence"
    assert "inactive: no sign-in" not in reasons()
    assert "sign-in activity (inactive or not)" in reasons()
