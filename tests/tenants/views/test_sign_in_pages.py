"""Sign-in activity on the pages: the application page's words, the tenant page's
Inactive filter, the dashboard's count of inactive apps, the digest's line."""

import datetime as dt

import pytest
from django.utils import timezone

from digests.content import digest_build
from tenants.models import Tenant
from tests.factories import GrantFactory, ServicePrincipalFactory
from tests.tenants.views.helpers import app_url, dashboard_url, succeeded_run, tenant_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def apps(contoso: Tenant):
    """Three clients holding a grant: signed in 3 days ago, 300 days ago, never."""
    run = succeeded_run(contoso)
    Tenant.objects.filter(pk=contoso.pk).update(sign_in_status="")
    contoso.refresh_from_db()
    now = timezone.now()
    made = {}
    for name, last in (
        ("Recent App", now - dt.timedelta(days=3, hours=1)),
        ("Old App", now - dt.timedelta(days=300, hours=1)),
        ("Silent App", None),
    ):
        sp = ServicePrincipalFactory(tenant=contoso, display_name=name, last_sign_in_at=last)
        GrantFactory(client=sp, value="Device.Read.All", first_seen_run=run)
        made[name] = sp
    return made


def test_the_application_page_says_when_it_last_signed_in(alice_client, contoso, apps):
    def shown(name: str) -> str:
        return alice_client.get(app_url(contoso, apps[name])).content.decode()

    assert "last signed in 3 days ago" in shown("Recent App")
    assert "last signed in 300 days ago" in shown("Old App")
    assert "no sign-in on record" in shown("Silent App")
    assert ">inactive</span>" in shown("Old App")
    assert ">inactive</span>" not in shown("Recent App")


def test_unknown_sign_ins_say_why_and_how_to_enable(alice_client, contoso, apps):
    Tenant.objects.filter(pk=contoso.pk).update(sign_in_status="no_permission")
    html = alice_client.get(app_url(contoso, apps["Old App"])).content.decode()
    assert "unknown: the portal lacks AuditLog.Read.All" in html
    Tenant.objects.filter(pk=contoso.pk).update(sign_in_status="no_licence")
    html = alice_client.get(app_url(contoso, apps["Old App"])).content.decode()
    assert "unknown: the tenant has no Entra ID P1" in html
    assert ">inactive</span>" not in html


def test_the_inactive_filter_lists_only_inactive_apps(alice_client, contoso, apps):
    html = alice_client.get(tenant_url(contoso), {"activity": "inactive"}).content.decode()
    assert "Old App" in html and "Silent App" in html
    assert "Recent App" not in html
    unfiltered = alice_client.get(tenant_url(contoso)).content.decode()
    assert "Recent App" in unfiltered


def test_the_inactive_filter_lists_nothing_where_sign_ins_are_unknown(alice_client, contoso, apps):
    Tenant.objects.filter(pk=contoso.pk).update(sign_in_status="no_licence")
    html = alice_client.get(tenant_url(contoso), {"activity": "inactive"}).content.decode()
    assert "Old App" not in html and "Silent App" not in html


def test_the_dashboard_counts_inactive_apps_and_links_to_them(alice_client, contoso, apps):
    html = alice_client.get(dashboard_url()).content.decode()
    assert f'href="{tenant_url(contoso)}?activity=inactive" data-inactive-count="2"' in html
    Tenant.objects.filter(pk=contoso.pk).update(sign_in_status="failed")
    html = alice_client.get(dashboard_url()).content.decode()
    assert "data-inactive-count" not in html


def test_the_digest_says_how_many_apps_holding_permissions_are_inactive(contoso, apps, settings):
    digest = digest_build(
        tenant=contoso, floor=0, up_to_run=10**6, previous_findings=None, since=timezone.now()
    )
    assert digest.inactive_line == "2 apps hold permissions and have not signed in for 90 days"
    settings.INACTIVE_DAYS = 400
    digest = digest_build(
        tenant=contoso, floor=0, up_to_run=10**6, previous_findings=None, since=timezone.now()
    )
    assert digest.inactive_line == "1 app holds permissions and has not signed in for 400 days"
