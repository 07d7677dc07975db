"""The tenant pages: dashboard, matrix, a tenant's sync panel and applications, sync history,
what each sync changed, exports. alice is an admin and bob a reader of Contoso, charlie an
admin of Fabrikam, oscar an operator; erin has no portal role."""

import csv
import datetime as dt
import io
import json
import uuid

import pytest
from django.conf import settings
from django.db import connection
from django.shortcuts import resolve_url
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from permissions.models import PermissionKind, Tier
from tenants.exports import report_csv
from tenants.models import MICROSOFT_TENANT_IDS, Grant, SyncRun, Tenant
from tenants.report import tenant_report
from tests.factories import (
    ApplicationFactory,
    FeatureFactory,
    GrantFactory,
    PermissionFactory,
    RequirementFactory,
    ServicePrincipalFactory,
    SyncRunFactory,
    TenantFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

SUCCEEDED = SyncRun.Status.SUCCEEDED
FAILED = SyncRun.Status.FAILED
STARTED = dt.datetime(2026, 3, 14, 9, 30, tzinfo=dt.UTC)
FINISHED = STARTED + dt.timedelta(seconds=12.5)
HTMX = {"HTTP_HX_REQUEST": "true"}
OPERATOR_TENANT = "0e7a1c55-0000-4000-8000-00000000000f"
MICROSOFT = uuid.UUID(sorted(MICROSOFT_TENANT_IDS)[0])


@pytest.fixture(autouse=True)
def _operator_tenant(settings):
    settings.PORTAL_OPERATOR_TENANT_ID = OPERATOR_TENANT


@pytest.fixture
def contoso() -> Tenant:
    return TenantFactory(
        name="Contoso",
        tenant_id=uuid.UUID("1e1a0801-7f55-46e2-9fb2-3b09766f2844"),
        default_domain="contoso.onmicrosoft.com",
    )


@pytest.fixture
def fabrikam() -> Tenant:
    return TenantFactory(name="Fabrikam")


def member(name: str, tenant: Tenant | str, *roles: str):
    tenant_id = tenant if isinstance(tenant, str) else str(tenant.tenant_id)
    return UserFactory(username=name, entra_tenant_id=tenant_id, entra_roles=list(roles))


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin(contoso) -> Client:
    """alice, an admin of Contoso."""
    return signed_in(member("alice", contoso, "Portal.Admin"))


@pytest.fixture
def reader(contoso) -> Client:
    """bob, a reader of Contoso."""
    return signed_in(member("bob", contoso, "Portal.Reader"))


@pytest.fixture
def outsider(fabrikam) -> Client:
    """charlie, an admin of Fabrikam."""
    return signed_in(member("charlie", fabrikam, "Portal.Admin"))


@pytest.fixture
def operator() -> Client:
    """oscar, an operator: reads every tenant."""
    return signed_in(member("oscar", OPERATOR_TENANT, "Portal.Operator"))


@pytest.fixture
def sent(monkeypatch) -> list[int]:
    """Run ids sent to the sync task, instead of a broker."""
    run_ids: list[int] = []
    monkeypatch.setattr("tenants.tasks.sync_tenant.delay", run_ids.append)
    return run_ids


def succeeded_run(tenant: Tenant, **numbers: object) -> SyncRun:
    run = SyncRunFactory(
        tenant=tenant, status=SUCCEEDED, started_at=STARTED, finished_at=FINISHED, **numbers
    )
    Tenant.objects.filter(pk=tenant.pk).update(last_good_sync=run)
    tenant.refresh_from_db()
    return run


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


def app_url(tenant: Tenant, sp) -> str:
    return reverse("tenants:application", args=[tenant.tenant_id, sp.app_id])


@pytest.fixture
def control_plane():
    return PermissionFactory(value="RoleManagement.ReadWrite.Directory", tier=Tier.CONTROL_PLANE)


def with_verdicts(tenant: Tenant, run: SyncRun, name: str = "247connect"):
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


# --- signing in and roles ----------------------------------------------------------------


def test_signed_out_visitors_are_sent_to_sign_in(client, contoso):
    run = succeeded_run(contoso)
    login = resolve_url(settings.LOGIN_URL)
    for url in [dashboard_url(), tenant_url(contoso), history_url(contoso), run_url(run)]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(login), url
    assert client.post(sync_url(contoso))["Location"].startswith(login)
    assert not SyncRun.objects.filter(trigger=SyncRun.Trigger.MANUAL).exists()


def test_a_reader_sees_the_sync_panel_without_sync_now_and_may_not_post(reader, contoso, sent):
    succeeded_run(contoso)

    html = reader.get(tenant_url(contoso)).content.decode()

    assert "Only the tenant's admins can start a sync." in html
    assert sync_url(contoso) not in html
    assert reader.post(sync_url(contoso)).status_code == 403
    assert not SyncRun.objects.filter(trigger=SyncRun.Trigger.MANUAL).exists() and sent == []


def test_another_tenants_admin_finds_nothing(outsider, contoso):
    run = succeeded_run(contoso)

    for url in [tenant_url(contoso), history_url(contoso), run_url(run), status_url(run)]:
        assert outsider.get(url).status_code == 404, url
    assert outsider.post(sync_url(contoso)).status_code == 404


def test_an_unknown_tenant_is_not_found(admin):
    assert admin.get(reverse("tenants:tenant-detail", args=[uuid.uuid4()])).status_code == 404
    assert admin.post(reverse("tenants:sync-now", args=[uuid.uuid4()])).status_code == 404


def test_a_run_is_only_found_under_its_own_tenant(contoso, fabrikam):
    superuser = signed_in(UserFactory(username="root", is_superuser=True))
    fabrikam_run = succeeded_run(fabrikam)
    for name in ("tenants:run-detail", "tenants:run-status"):
        url = reverse(name, args=[contoso.tenant_id, fabrikam_run.pk])
        assert superuser.get(url).status_code == 404
    assert superuser.get(run_url(fabrikam_run)).status_code == 200


def test_the_dashboard_link_is_shown_to_signed_in_users(admin):
    html = admin.get(reverse("permissions:catalog")).content.decode()

    assert f'<a href="{dashboard_url()}">Dashboard</a>' in html


# --- dashboard ---------------------------------------------------------------------------


def test_the_dashboard_shows_the_users_tenant_with_its_counts(
    admin, contoso, fabrikam, control_plane
):
    run = succeeded_run(contoso)
    with_verdicts(contoso, run)
    with_verdicts(fabrikam, succeeded_run(fabrikam))
    SyncRunFactory(tenant=contoso, status=FAILED, error="Graph said no")

    response = admin.get(dashboard_url())

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


def test_operators_see_every_tenant_and_the_matrix_link(operator, contoso, fabrikam):
    succeeded_run(fabrikam)

    response = operator.get(dashboard_url())

    assert [o.tenant for o in response.context["overviews"]] == [contoso, fabrikam]
    html = response.content.decode()
    assert "Never synced" in html and "Not synced yet" in html
    assert f'href="{reverse("tenants:matrix")}"' in html


def test_a_user_without_a_portal_role_is_told_why_the_dashboard_is_empty(contoso):
    erin = signed_in(member("erin", contoso))

    html = erin.get(dashboard_url()).content.decode()

    assert "You have no role in the Permission Portal yet" in html
    assert "Contoso</a>" not in html


def test_a_user_from_a_tenant_not_onboarded_is_told_so(contoso):
    dave = signed_in(member("dave", str(uuid.uuid4()), "Portal.Admin"))

    assert "Your tenant isn't connected yet" in dave.get(dashboard_url()).content.decode()


def test_a_superuser_without_tenants_is_told_how_to_add_one():
    root = signed_in(UserFactory(username="root", is_superuser=True))

    html = root.get(dashboard_url()).content.decode()

    assert "No tenants yet" in html
    assert "manage.py add_tenant TENANT_ID --name NAME" in html


def test_a_tenant_whose_sync_is_overdue_is_due_now(admin, contoso):
    Tenant.objects.filter(pk=contoso.pk).update(next_sync_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))

    assert "Due now" in admin.get(dashboard_url()).content.decode()


def test_the_dashboard_queries_do_not_grow_with_tenants(operator):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert operator.get(dashboard_url()).status_code == 200
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


def test_the_matrix_shows_each_application_in_each_tenant(operator, contoso, fabrikam):
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

    response = operator.get(reverse("tenants:matrix"))

    rows = {row.display_name: row for row in response.context["rows"]}
    assert list(rows) == ["247connect", "AskCody"]
    (contoso_cell, fabrikam_cell) = [counts for _, counts in rows["247connect"].cells]
    assert (contoso_cell.unused, contoso_cell.unexplained, contoso_cell.missing) == (1, 2, 1)
    assert (fabrikam_cell.needed, fabrikam_cell.missing) == (1, 1)
    assert [counts for _, counts in rows["AskCody"].cells][0] is None
    html = response.content.decode()
    assert f'href="{app_url(fabrikam, connect)}"' in html
    assert "not granted anything" in html


def test_the_matrix_shows_only_the_users_tenants(admin, contoso, fabrikam):
    with_verdicts(contoso, succeeded_run(contoso))
    with_verdicts(fabrikam, succeeded_run(fabrikam), name="Fabrikam only")

    response = admin.get(reverse("tenants:matrix"))

    assert response.context["tenants"] == [contoso]
    assert [row.display_name for row in response.context["rows"]] == ["247connect"]
    assert "Fabrikam" not in response.content.decode()


# --- exports -----------------------------------------------------------------------------


def test_a_reader_exports_the_report_as_json_exactly_as_the_report_command(reader, contoso):
    with_verdicts(contoso, succeeded_run(contoso))

    response = reader.get(reverse("tenants:report-json", args=[contoso.tenant_id]))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == (
        f'attachment; filename="permissions-{contoso.tenant_id}-2026-03-14.json"'
    )
    assert json.loads(response.content) == tenant_report(tenant=contoso)
    (app,) = json.loads(response.content)["applications"]
    assert {g["verdict"] for g in app["grants"]} == {"needed", "unused", "unexplained"}


def test_the_csv_export_has_a_row_per_grant_and_per_missing_permission(reader, contoso):
    with_verdicts(contoso, succeeded_run(contoso))

    response = reader.get(reverse("tenants:report-csv", args=[contoso.tenant_id]))

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    assert response.content.decode() == report_csv(tenant_report(tenant=contoso))
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert sorted(row["verdict"] for row in rows) == [
        "missing",
        "needed",
        "unexplained",
        "unexplained",
        "unused",
    ]


# --- tenant page -------------------------------------------------------------------------


def test_the_tenant_page_shows_the_tenant_and_its_latest_run(admin, contoso):
    run = succeeded_run(
        contoso,
        service_principals=7,
        graph_requests=9,
        grants_added=3,
        grants_removed=1,
        grants_unchanged=40,
    )

    response = admin.get(tenant_url(contoso))

    html = response.content.decode()
    assert '<h1 class="title">Contoso</h1>' in html
    assert str(contoso.tenant_id) in html and "contoso.onmicrosoft.com" in html
    assert '<span class="tag run-status run-green">Succeeded</span>' in html
    assert f'href="{run_url(run)}">Sync {run.pk}</a>' in html
    assert "in 12.5 s" in html
    assert "+3<span" in html and "&minus;1<span" in html and "=40<span" in html
    assert f'action="{sync_url(contoso)}" hx-post="{sync_url(contoso)}"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert "every 2s" not in html


def test_a_failed_latest_run_shows_its_error_and_the_last_good_sync(admin, contoso):
    good = succeeded_run(contoso)
    SyncRunFactory(tenant=contoso, status=FAILED, error="Access denied: grant Application.Read.All")

    html = admin.get(tenant_url(contoso)).content.decode()

    assert "This sync failed:</strong> Access denied: grant Application.Read.All" in html
    assert f'href="{run_url(good)}">sync {good.pk}</a>' in html


def test_a_never_synced_tenant_page_says_how_to_sync_it(admin, contoso):
    html = admin.get(tenant_url(contoso)).content.decode()

    assert "Never synced" in html and "Not synced yet" in html
    assert f"manage.py sync_tenant {contoso.tenant_id}" in html
    assert '<button class="button is-link" type="submit">Sync now</button>' in html


def test_an_open_run_makes_the_panel_poll_its_status_every_2_seconds(admin, contoso):
    run = SyncRunFactory(tenant=contoso, status=SyncRun.Status.RUNNING, started_at=STARTED)
    SyncRun.objects.filter(pk=run.pk).update(progress="Reading delegated grants")

    html = admin.get(tenant_url(contoso)).content.decode()

    assert f'hx-get="{status_url(run)}" hx-trigger="every 2s" hx-swap="outerHTML"' in html
    assert "Reading delegated grants&hellip;" in html
    assert 'type="submit" disabled>Sync now</button>' in html


def test_the_tenant_page_counts_each_applications_grants_by_verdict(admin, contoso):
    connect = with_verdicts(contoso, succeeded_run(contoso))

    response = admin.get(tenant_url(contoso))

    (item,) = response.context["page_obj"]
    assert item.service_principal == connect and item.counts.permissions == 4
    assert item.counts.by_verdict == [
        ("needed", 1),
        ("unused", 1),
        ("unexplained", 2),
        ("missing", 1),
    ]
    html = response.content.decode()
    assert '<span class="tag verdict-unexplained">2</span>' in html
    assert f'<a href="{app_url(contoso, connect)}">247connect</a>' in html


def test_the_tenant_pages_counts_agree_with_the_report(admin, contoso):
    run = succeeded_run(contoso)
    with_verdicts(contoso, run)
    askcody = ServicePrincipalFactory(tenant=contoso, display_name="AskCody")
    # Admin consent and two users' consents to one scope: two entries, as in the report.
    for principal in (None, uuid.uuid4(), uuid.uuid4()):
        GrantFactory(
            client=askcody,
            kind=PermissionKind.DELEGATED,
            value="Calendars.Read",
            permission_id=None,
            consent="user" if principal else "admin",
            principal_id=principal,
            first_seen_run=run,
        )

    items = admin.get(tenant_url(contoso)).context["page_obj"]

    report = tenant_report(tenant=contoso)["applications"]
    assert [g["consent"] for g in report[1]["grants"]] == ["admin", "user"]
    assert [i.service_principal.display_name for i in items] == [a["display_name"] for a in report]
    for item, app in zip(items, report, strict=True):
        verdicts = [g["verdict"] for g in app["grants"]] + ["missing"] * len(app["missing"])
        assert [(v, verdicts.count(v)) for v, _ in item.counts.by_verdict] == (
            item.counts.by_verdict
        )


def test_the_tenant_page_shows_publishers_and_marks_microsofts_applications(admin, contoso):
    run = succeeded_run(contoso)
    vendor = ServicePrincipalFactory(tenant=contoso, publisher="AskCody ApS")
    teams = ServicePrincipalFactory(tenant=contoso, app_owner_tenant_id=MICROSOFT)
    for sp in (vendor, teams):
        GrantFactory(client=sp, first_seen_run=run)

    html = admin.get(tenant_url(contoso)).content.decode()

    assert 'AskCody ApS <span class="tag party-third">Third-party</span>' in html
    assert '<span class="tag party-first">Microsoft</span>' in html


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"verdict": "unused"}, ["247connect"]),
        ({"verdict": "missing"}, ["247connect"]),
        ({"verdict": "unexplained"}, ["247connect", "Teams"]),
        ({"party": "first"}, ["Teams"]),
        ({"party": "third"}, ["247connect", "Contoso HR"]),
        ({"q": "  contoso hr "}, ["Contoso HR"]),
        ({"q": "hr", "verdict": "unused"}, []),
        ({"verdict": "no-such-verdict"}, ["247connect", "Contoso HR", "Teams"]),
    ],
)
def test_the_tenant_page_filters_by_verdict_publisher_and_name(admin, contoso, filters, expected):
    run = succeeded_run(contoso)
    with_verdicts(contoso, run)
    hr_app = ApplicationFactory(name="Contoso HR")
    RequirementFactory(feature__application=hr_app, permission_value="User.Read.All")
    hr = ServicePrincipalFactory(tenant=contoso, app_id=hr_app.app_id, display_name="Contoso HR")
    GrantFactory(client=hr, value="User.Read.All", first_seen_run=run)
    teams = ServicePrincipalFactory(
        tenant=contoso, display_name="Teams", app_owner_tenant_id=MICROSOFT
    )
    GrantFactory(client=teams, first_seen_run=run)

    response = admin.get(tenant_url(contoso), filters)

    assert response.status_code == 200
    assert [i.service_principal.display_name for i in response.context["page_obj"]] == expected
    if expected == []:
        assert "No application matches" in response.content.decode()


def test_the_filters_work_as_a_plain_form_and_search_as_you_type(admin, contoso):
    succeeded_run(contoso)

    html = admin.get(tenant_url(contoso)).content.decode()

    assert f'method="get" action="{tenant_url(contoso)}" role="search"' in html
    assert 'hx-trigger="input changed delay:300ms, search"' in html
    assert 'hx-target="#application-results"' in html
    assert '<label class="label" for="id_verdict">Verdicts</label>' in html
    assert '<button class="button is-link" type="submit">Filter</button>' in html


def test_the_tenant_page_lists_50_applications_a_page(admin, contoso):
    run = succeeded_run(contoso)
    for n in range(52):
        GrantFactory(
            client=ServicePrincipalFactory(tenant=contoso, display_name=f"App {n:02}"),
            first_seen_run=run,
        )

    first = admin.get(tenant_url(contoso), {"verdict": "unexplained"})
    second = admin.get(tenant_url(contoso), {"verdict": "unexplained", "page": 2}, **HTMX)

    assert len(first.context["page_obj"]) == 50
    assert 'href="?verdict=unexplained&amp;page=2"' in first.content.decode()
    assert [i.service_principal.display_name for i in second.context["page_obj"]] == [
        "App 50",
        "App 51",
    ]
    assert "52 of 52 applications, 51–52 shown" in second.content.decode()


def test_a_synced_tenant_without_grants_says_no_application_holds_one(admin, contoso):
    succeeded_run(contoso)

    assert "No application holds a permission" in admin.get(tenant_url(contoso)).content.decode()


def test_htmx_asking_for_the_tenant_page_gets_only_the_applications(admin, contoso):
    succeeded_run(contoso)

    html = admin.get(tenant_url(contoso), {"q": "x"}, **HTMX).content.decode()

    assert html.lstrip().startswith('<p class="empty-state box">No application holds')
    assert "<html" not in html and "sync-panel" not in html and "<form" not in html


def test_the_applications_reload_themselves_when_a_watched_sync_ends(admin, contoso):
    succeeded_run(contoso)

    html = admin.get(tenant_url(contoso)).content.decode()

    assert (
        f'<div id="application-results" hx-get="{tenant_url(contoso)}" '
        'hx-trigger="sync-ended from:body" hx-include="#application-filters">'
    ) in html


# --- sync now ----------------------------------------------------------------------------


def test_sync_now_queues_one_manual_run_and_sends_it_once_on_commit(
    admin, contoso, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin.post(sync_url(contoso))
        assert sent == []  # not before the run row is committed

    run = SyncRun.objects.get(tenant=contoso)
    assert (run.status, run.trigger) == (SyncRun.Status.QUEUED, SyncRun.Trigger.MANUAL)
    assert len(callbacks) == 1 and sent == [run.pk]
    assert response.status_code == 302 and response["Location"] == tenant_url(contoso)


def test_sync_now_while_a_run_is_open_queues_none_and_shows_that_run(
    admin, contoso, sent, django_capture_on_commit_callbacks
):
    open_run = SyncRunFactory(tenant=contoso, status=SyncRun.Status.RUNNING)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(sync_url(contoso), follow=True)

    assert SyncRun.objects.filter(tenant=contoso).get() == open_run
    assert sent == []
    html = response.content.decode()
    assert "already under way" in html
    assert f'hx-get="{status_url(open_run)}"' in html


def test_sync_now_with_htmx_returns_only_the_sync_panel(
    admin, contoso, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(sync_url(contoso), **HTMX)

    run = SyncRun.objects.get(tenant=contoso)
    html = response.content.decode()
    assert response.status_code == 200 and sent == [run.pk]
    assert html.lstrip().startswith('<section class="box sync-panel" id="sync-panel"')
    assert '<span class="tag run-status run-grey">Queued</span>' in html
    assert f'hx-get="{status_url(run)}" hx-trigger="every 2s"' in html
    assert "<html" not in html and 'id="applications"' not in html


def test_sync_now_refuses_get(admin, contoso):
    assert admin.get(sync_url(contoso)).status_code == 405
    assert not SyncRun.objects.exists()


def test_sync_now_refuses_a_post_without_the_csrf_token(contoso):
    client = Client(enforce_csrf_checks=True)
    client.force_login(member("alice", contoso, "Portal.Admin"))

    assert client.post(sync_url(contoso)).status_code == 403
    assert not SyncRun.objects.exists()


# --- run status (polled) -----------------------------------------------------------------


def test_the_status_of_an_open_run_keeps_polling(admin, contoso):
    run = SyncRunFactory(tenant=contoso)

    response = admin.get(status_url(run), **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith(
        f'<div id="sync-run" class="sync-run" hx-get="{status_url(run)}" hx-trigger="every 2s"'
    )
    assert "Waiting for a worker" in html and "<html" not in html
    assert "HX-Trigger" not in response.headers


def test_the_status_of_an_ended_run_stops_polling_with_286_and_shows_its_final_state(
    admin, contoso
):
    run = succeeded_run(contoso, service_principals=7)

    response = admin.get(status_url(run), **HTMX)

    html = response.content.decode()
    assert response.status_code == 286
    assert response.headers["HX-Trigger"] == '{"sync-ended": {}}'
    assert "hx-trigger" not in html
    assert '<span class="tag run-status run-green">Succeeded</span>' in html
    assert "<dd>7</dd>" in html
    assert 'type="submit">Sync now</button>' in html


# --- sync history ------------------------------------------------------------------------


def test_the_history_lists_each_run_with_its_numbers(admin, contoso):
    run = succeeded_run(
        contoso,
        trigger=SyncRun.Trigger.MANUAL,
        graph_requests=23,
        throttled_waits=2,
        throttled_seconds=3.5,
        service_principals=11,
        grants_added=5,
        grants_removed=2,
        grants_unchanged=30,
    )

    html = admin.get(history_url(contoso)).content.decode()

    assert f'href="{run_url(run)}">Sync {run.pk}</a>' in html
    assert '<span class="tag run-status run-green">Succeeded</span>' in html
    assert '<td data-label="Trigger">Sync now</td>' in html
    assert ">09:30:00</time>" in html and ">09:30:12</time>" in html  # the date is in the title
    assert "12.5 s" in html
    assert ">23</td>" in html and "2 (3.5 s)" in html and ">11</td>" in html
    assert "+5<span" in html and "&minus;2<span" in html and "=30<span" in html


def test_the_history_shows_a_failed_runs_error_prominently(admin, contoso):
    run = SyncRunFactory(tenant=contoso, status=FAILED, error="Graph answered 403")

    html = admin.get(history_url(contoso)).content.decode()

    assert '<span class="tag run-status run-red">Failed</span>' in html
    assert f'run-error"><strong>Sync {run.pk} failed:</strong> Graph answered 403' in html


def test_the_history_shows_25_runs_a_page_newest_first(admin, contoso):
    runs = [SyncRunFactory(tenant=contoso, status=SUCCEEDED) for _ in range(27)]

    first = admin.get(history_url(contoso))
    second = admin.get(history_url(contoso), {"page": 2})

    assert list(first.context["page_obj"]) == runs[:-26:-1]
    assert list(second.context["page_obj"]) == runs[1::-1]


def test_the_history_of_a_never_synced_tenant_says_so(admin, contoso):
    assert "No sync yet" in admin.get(history_url(contoso)).content.decode()


# --- run detail and diff -----------------------------------------------------------------


def test_the_run_page_shows_grants_added_and_removed_since_the_previous_good_run(admin, contoso):
    first = succeeded_run(contoso)
    client = ServicePrincipalFactory(tenant=contoso, display_name="AskCody")
    kept = GrantFactory(client=client, value="User.Read.All", first_seen_run=first)
    gone = GrantFactory(client=client, value="Calendars.Read", first_seen_run=first)
    SyncRunFactory(tenant=contoso, status=FAILED)  # in between: changes nothing
    second = succeeded_run(contoso)
    Grant.objects.filter(pk=gone.pk).update(removed_in_run=second)
    GrantFactory(
        client=client,
        kind=PermissionKind.DELEGATED,
        value="Mail.Send",
        consent="user",
        principal_id=uuid.UUID("aaaaaaaa-0000-4000-8000-000000000001"),
        first_seen_run=second,
    )
    GrantFactory(client=client, value="", permission_id=uuid.UUID(int=7), first_seen_run=second)

    response = admin.get(run_url(second))

    html = response.content.decode()
    assert f'Changes since <a href="{run_url(first)}">sync {first.pk}</a>' in html
    assert '2 added</span>, <span class="count-removed">1 removed' in html
    changes = {(g.value, g.was_removed) for g in response.context["page_obj"]}
    assert changes == {("Calendars.Read", True), ("Mail.Send", False), ("", False)}
    assert kept.value not in html
    assert 'unknown role <code class="nowrap">00000000-0000-0000-0000-000000000007</code>' in html
    assert "aaaaaaaa-0000-4000-8000-000000000001" in html and "User consent" in html
    assert html.count("&minus; Removed") == 1 and html.count("+ Added") == 2


def test_the_first_sync_shows_all_its_grants_as_new(admin, contoso):
    run = succeeded_run(contoso)
    GrantFactory.create_batch(3, client=ServicePrincipalFactory(tenant=contoso), first_seen_run=run)

    html = admin.get(run_url(run)).content.decode()

    assert "First sync: all 3 grants are new" in html


def test_a_sync_that_changed_nothing_says_so(admin, contoso):
    first = succeeded_run(contoso)
    GrantFactory(client=ServicePrincipalFactory(tenant=contoso), first_seen_run=first)
    second = succeeded_run(contoso)

    html = admin.get(run_url(second)).content.decode()

    assert f"No changes: the grants are the same as sync {first.pk} read them." in html


def test_a_failed_run_page_shows_its_error_and_that_it_changed_nothing(admin, contoso):
    run = SyncRunFactory(tenant=contoso, status=FAILED, error="Token refused")

    html = admin.get(run_url(run)).content.decode()

    assert "This sync failed:</strong> Token refused" in html
    assert "this one changed nothing" in html


def test_a_long_diff_is_paginated_and_htmx_gets_only_the_changes(admin, contoso):
    run = succeeded_run(contoso)
    GrantFactory.create_batch(
        51, client=ServicePrincipalFactory(tenant=contoso), first_seen_run=run
    )

    first = admin.get(run_url(run))
    second = admin.get(run_url(run), {"page": 2}, **HTMX)

    assert len(first.context["page_obj"]) == 50
    assert 'hx-target="#changes"' in first.content.decode()
    html = second.content.decode()
    assert len(second.context["page_obj"]) == 1 and "51–51 shown" in html
    assert "<html" not in html and "<h1" not in html
