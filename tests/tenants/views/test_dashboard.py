"""The dashboard and the operators' applications x tenants matrix (tenants.views.dashboard).
alice is an admin and bob a reader of Contoso, charlie an admin of Fabrikam, oscar an
operator; erin has no portal role (fixtures and helpers: conftest.py, helpers.py)."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tenants.models import Tenant
from tests.factories import (
    GrantFactory,
    ServicePrincipalFactory,
    SyncRunFactory,
    TenantFactory,
    UserFactory,
)
from tests.helpers import signed_in
from tests.ids import NORTHWIND
from tests.tenants.views.helpers import (
    app_url,
    dashboard_url,
    succeeded_run,
    tenant_url,
    with_verdicts,
)

pytestmark = pytest.mark.django_db


# --- signing in --------------------------------------------------------------------------


def test_the_dashboard_link_is_shown_to_signed_in_users(alice_client):
    html = alice_client.get(reverse("permissions:catalog")).content.decode()

    assert f'<a href="{dashboard_url()}">Dashboard</a>' in html


# --- dashboard ---------------------------------------------------------------------------


def test_the_dashboard_shows_the_users_tenant_with_its_counts(
    alice_client, contoso, fabrikam, control_plane
):
    run = succeeded_run(contoso)
    with_verdicts(contoso, run)
    with_verdicts(fabrikam, succeeded_run(fabrikam))
    SyncRunFactory(tenant=contoso, failed=True)

    response = alice_client.get(dashboard_url())

    (overview,) = response.context["overviews"]
    assert overview.tenant == contoso and overview.applications == 1
    counts = overview.counts
    assert (counts.needed, counts.unused, counts.unexplained, counts.missing) == (1, 1, 2, 1)
    assert counts.control_plane == 1
    html = response.content.decode()
    assert f'<a href="{tenant_url(contoso)}">Contoso</a>' in html and "Fabrikam" not in html
    assert '<span class="tag run-status run-red">Failed</span>' in html  # the latest run
    assert "14 Mar 2026, 09:30:12" in html  # the last good one
    assert f'href="{tenant_url(contoso)}?verdict=unexplained"' in html
    assert '<span class="tag tier tier-ControlPlane">1</span>' in html
    assert reverse("tenants:matrix") not in html


def test_operators_see_every_tenant_and_the_matrix_link(oscar_client, contoso, fabrikam):
    succeeded_run(fabrikam)

    response = oscar_client.get(dashboard_url())

    assert [o.tenant for o in response.context["overviews"]] == [contoso, fabrikam]
    html = response.content.decode()
    assert "Never synced" in html and "Not synced yet" in html
    assert f'href="{reverse("tenants:matrix")}"' in html


def test_a_user_without_a_portal_role_is_told_why_the_dashboard_is_empty(erin_client):
    html = erin_client.get(dashboard_url()).content.decode()

    assert "You have no role in the Permission Portal yet" in html
    assert "Contoso</a>" not in html


def test_a_user_from_a_tenant_not_onboarded_is_told_so(contoso):
    dave = signed_in(UserFactory(entra_tenant_id=NORTHWIND, entra_roles=["Portal.Admin"]))

    assert "Your tenant isn't connected yet" in dave.get(dashboard_url()).content.decode()


def test_a_superuser_without_tenants_is_told_how_to_add_one():
    root = signed_in(UserFactory(username="root", is_superuser=True))

    html = root.get(dashboard_url()).content.decode()

    assert "No tenants yet" in html
    assert "manage.py add_tenant TENANT_ID --name NAME" in html


def test_a_tenant_whose_sync_is_overdue_is_due_now(alice_client, contoso):
    Tenant.objects.filter(pk=contoso.pk).update(next_sync_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))

    assert "Due now" in alice_client.get(dashboard_url()).content.decode()


def test_the_dashboard_queries_do_not_grow_with_tenants(oscar_client):
    def queries() -> int:
        # The first view stores the findings these factory-made tenants lack (a sync would).
        oscar_client.get(dashboard_url())
        with CaptureQueriesContext(connection) as captured:
            assert oscar_client.get(dashboard_url()).status_code == 200
        return len(captured)

    for n in range(2):
        tenant = TenantFactory()
        with_verdicts(tenant, succeeded_run(tenant), name=f"App {n}")
    few = queries()
    for n in range(2, 8):
        tenant = TenantFactory()
        with_verdicts(tenant, succeeded_run(tenant), name=f"App {n}")
    assert queries() == few <= 12


# --- matrix ------------------------------------------------------------------------------


def test_the_matrix_shows_each_application_in_each_tenant(oscar_client, contoso, fabrikam):
    connect = with_verdicts(contoso, succeeded_run(contoso))
    fabrikam_run = succeeded_run(fabrikam)
    GrantFactory(
        client=ServicePrincipalFactory(
            tenant=fabrikam, app_id=connect.app_id, display_name="247connect"
        ),
        value="Device.Read.All",
        first_seen_run=fabrikam_run,
    )
    only_fabrikam = ServicePrincipalFactory(tenant=fabrikam, display_name="AskCody")
    GrantFactory(client=only_fabrikam, first_seen_run=fabrikam_run)

    response = oscar_client.get(reverse("tenants:matrix"))

    rows = {row.display_name: row for row in response.context["rows"]}
    assert list(rows) == ["247connect", "AskCody"]
    (contoso_cell, fabrikam_cell) = [counts for _, counts in rows["247connect"].cells]
    assert (contoso_cell.unused, contoso_cell.unexplained, contoso_cell.missing) == (1, 2, 1)
    assert (fabrikam_cell.needed, fabrikam_cell.missing) == (1, 1)
    assert [counts for _, counts in rows["AskCody"].cells][0] is None
    html = response.content.decode()
    assert f'href="{app_url(fabrikam, connect)}"' in html
    assert "not granted anything" in html


def test_the_matrix_without_tenants_says_to_connect_one(oscar_client, contoso):
    contoso.delete()  # oscar stays an operator: the role names the operator tenant's id

    html = " ".join(oscar_client.get(reverse("tenants:matrix")).content.decode().split())

    assert f'No tenant is connected yet: <a href="{reverse("tenants:connect")}">' in html
    assert "No application holds a permission" not in html


def test_the_matrix_shows_only_the_users_tenants(alice_client, contoso, fabrikam):
    with_verdicts(contoso, succeeded_run(contoso))
    with_verdicts(fabrikam, succeeded_run(fabrikam), name="Fabrikam only")

    response = alice_client.get(reverse("tenants:matrix"))

    assert response.context["tenants"] == [contoso]
    assert [row.display_name for row in response.context["rows"]] == ["247connect"]
    assert "Fabrikam" not in response.content.decode()
