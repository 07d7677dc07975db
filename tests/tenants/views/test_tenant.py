"""A tenant's page: its sync panel and applications, Sync now, the report exports
(tenants.views.tenant).
alice is an admin and bob a reader of Contoso, charlie an admin of Fabrikam, oscar an
operator; erin has no portal role (fixtures and helpers: conftest.py, helpers.py)."""

import csv
import io
import json
import uuid

import pytest
from django.conf import settings
from django.shortcuts import resolve_url
from django.urls import reverse

from permissions.models import PermissionKind
from tenants.exports import report_csv_chunks
from tenants.models import SyncRun
from tenants.report import tenant_report
from tests.factories import (
    ApplicationFactory,
    GrantFactory,
    RequirementFactory,
    ServicePrincipalFactory,
    SyncRunFactory,
)
from tests.helpers import signed_in
from tests.ids import MICROSOFT
from tests.tenants.views.helpers import (
    HTMX,
    STARTED,
    app_url,
    dashboard_url,
    history_url,
    run_url,
    status_url,
    succeeded_run,
    sync_url,
    tenant_url,
    with_verdicts,
)

pytestmark = pytest.mark.django_db


# --- signing in and roles ----------------------------------------------------------------


def test_signed_out_visitors_are_sent_to_sign_in(client, contoso):
    run = succeeded_run(contoso)
    login = resolve_url(settings.LOGIN_URL)
    for url in [dashboard_url(), tenant_url(contoso), history_url(contoso), run_url(run)]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(login), url
    assert client.post(sync_url(contoso))["Location"].startswith(login)
    assert not SyncRun.objects.filter(trigger=SyncRun.Trigger.MANUAL).exists()


def test_a_reader_sees_the_sync_panel_without_sync_now_and_may_not_post(
    bob_client, contoso, sent_syncs, django_capture_on_commit_callbacks
):
    succeeded_run(contoso)

    html = bob_client.get(tenant_url(contoso)).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        refused = bob_client.post(sync_url(contoso))

    assert "Only the tenant's admins can start a sync." in html
    assert sync_url(contoso) not in html
    assert refused.status_code == 403
    assert not SyncRun.objects.filter(trigger=SyncRun.Trigger.MANUAL).exists() and sent_syncs == []


def test_another_tenants_admin_finds_nothing(charlie_client, contoso):
    run = succeeded_run(contoso)

    for url in [tenant_url(contoso), history_url(contoso), run_url(run), status_url(run)]:
        assert charlie_client.get(url).status_code == 404, url
    assert charlie_client.post(sync_url(contoso)).status_code == 404


def test_an_unknown_tenant_is_not_found(alice_client):
    assert (
        alice_client.get(reverse("tenants:tenant-detail", args=[uuid.uuid4()])).status_code == 404
    )
    assert alice_client.post(reverse("tenants:sync-now", args=[uuid.uuid4()])).status_code == 404


# --- tenant page -------------------------------------------------------------------------


def test_the_tenant_page_shows_the_tenant_and_its_latest_run(alice_client, contoso):
    run = succeeded_run(
        contoso,
        service_principals=7,
        graph_requests=9,
        grants_added=3,
        grants_removed=1,
        grants_unchanged=40,
    )

    response = alice_client.get(tenant_url(contoso))

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


def test_a_failed_latest_run_shows_its_error_and_the_last_good_sync(alice_client, contoso):
    good = succeeded_run(contoso)
    SyncRunFactory(tenant=contoso, failed=True, error="Access denied: grant Application.Read.All")

    html = alice_client.get(tenant_url(contoso)).content.decode()

    assert "This sync failed:</strong> Access denied: grant Application.Read.All" in html
    assert f'href="{run_url(good)}">sync {good.pk}</a>' in html


def test_a_never_synced_tenant_page_says_how_to_sync_it(alice_client, contoso):
    html = alice_client.get(tenant_url(contoso)).content.decode()

    assert "Never synced" in html and "Not synced yet" in html
    assert f"manage.py sync_tenant {contoso.tenant_id}" in html
    assert '<button class="button is-link" type="submit">Sync now</button>' in html


def test_an_open_run_makes_the_panel_poll_its_status_every_2_seconds(alice_client, contoso):
    run = SyncRunFactory(tenant=contoso, running=True, started_at=STARTED)
    SyncRun.objects.filter(pk=run.pk).update(progress="Reading delegated grants")

    html = alice_client.get(tenant_url(contoso)).content.decode()

    assert f'hx-get="{status_url(run)}" hx-trigger="every 2s" hx-swap="outerHTML"' in html
    assert "Reading delegated grants&hellip;" in html
    assert 'type="submit" disabled>Sync now</button>' in html


def test_the_tenant_page_counts_each_applications_grants_by_verdict(alice_client, contoso):
    connect = with_verdicts(contoso, succeeded_run(contoso))

    response = alice_client.get(tenant_url(contoso))

    (item,) = response.context["page_obj"]
    assert item.service_principal == connect and item.permissions == 4
    assert (item.needed, item.unused, item.unexplained, item.missing) == (1, 1, 2, 1)
    html = response.content.decode()
    assert '<span class="tag verdict-unexplained">2</span>' in html
    assert f'<a href="{app_url(contoso, connect)}">247connect</a>' in html


def test_the_tenant_pages_counts_agree_with_the_report(alice_client, contoso):
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

    items = alice_client.get(tenant_url(contoso)).context["page_obj"]

    report = tenant_report(tenant=contoso).applications
    assert [g.consent for g in report[1].grants] == ["admin", "user"]
    assert [i.service_principal.display_name for i in items] == [a.display_name for a in report]
    for item, app in zip(items, report, strict=True):
        verdicts = [g.verdict.value for g in app.grants] + ["missing"] * len(app.missing)
        for verdict in ("needed", "unused", "unexplained", "missing"):
            assert verdicts.count(verdict) == getattr(item, verdict), (app.display_name, verdict)


def test_the_tenant_page_shows_publishers_and_marks_microsofts_applications(alice_client, contoso):
    run = succeeded_run(contoso)
    vendor = ServicePrincipalFactory(tenant=contoso, publisher="AskCody ApS")
    teams = ServicePrincipalFactory(tenant=contoso, app_owner_tenant_id=MICROSOFT)
    for sp in (vendor, teams):
        GrantFactory(client=sp, first_seen_run=run)

    html = alice_client.get(tenant_url(contoso)).content.decode()

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
def test_the_tenant_page_filters_by_verdict_publisher_and_name(
    alice_client, contoso, filters, expected
):
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

    response = alice_client.get(tenant_url(contoso), filters)

    assert response.status_code == 200
    assert [i.service_principal.display_name for i in response.context["page_obj"]] == expected
    if expected == []:
        assert "No application matches" in response.content.decode()


def test_the_filters_work_as_a_plain_form_and_search_as_you_type(alice_client, contoso):
    succeeded_run(contoso)

    html = alice_client.get(tenant_url(contoso)).content.decode()

    assert f'method="get" action="{tenant_url(contoso)}" role="search"' in html
    assert 'hx-trigger="input changed delay:300ms, search"' in html
    assert 'hx-target="#application-results"' in html
    assert '<label class="label" for="id_verdict">Verdicts</label>' in html
    assert '<button class="button is-link" type="submit">Filter</button>' in html


def test_the_tenant_page_lists_50_applications_a_page(alice_client, contoso):
    run = succeeded_run(contoso)
    for n in range(52):
        GrantFactory(
            client=ServicePrincipalFactory(tenant=contoso, display_name=f"App {n:02}"),
            first_seen_run=run,
        )

    first = alice_client.get(tenant_url(contoso), {"verdict": "unexplained"})
    second = alice_client.get(tenant_url(contoso), {"verdict": "unexplained", "page": 2}, **HTMX)

    assert len(first.context["page_obj"]) == 50
    assert 'href="?verdict=unexplained&amp;page=2"' in first.content.decode()
    assert [i.service_principal.display_name for i in second.context["page_obj"]] == [
        "App 50",
        "App 51",
    ]
    assert "52 of 52 applications, 51–52 shown" in second.content.decode()


def test_a_synced_tenant_without_grants_says_no_application_holds_one(alice_client, contoso):
    succeeded_run(contoso)

    assert (
        "No application holds a permission"
        in alice_client.get(tenant_url(contoso)).content.decode()
    )


def test_htmx_asking_for_the_tenant_page_gets_only_the_applications(alice_client, contoso):
    succeeded_run(contoso)

    html = alice_client.get(tenant_url(contoso), {"q": "x"}, **HTMX).content.decode()

    assert html.lstrip().startswith('<p class="empty-state box">No application holds')
    assert "<html" not in html and "sync-panel" not in html and "<form" not in html


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_HX_REQUEST": "true", "HTTP_HX_BOOSTED": "true"},
        {"HTTP_HX_REQUEST": "true", "HTTP_HX_HISTORY_RESTORE_REQUEST": "true"},
    ],
    ids=["boosted", "history-restore"],
)
def test_a_boosted_link_or_a_history_restore_gets_the_whole_tenant_page(
    alice_client, contoso, headers
):
    succeeded_run(contoso)

    response = alice_client.get(tenant_url(contoso), {"q": "x"}, **headers)

    html = response.content.decode()
    assert "<html" in html and "sync-panel" in html
    assert "HX-Request" in response["Vary"]


def test_the_applications_reload_themselves_when_a_watched_sync_ends(alice_client, contoso):
    succeeded_run(contoso)

    html = alice_client.get(tenant_url(contoso)).content.decode()

    assert (
        f'<div id="application-results" hx-get="{tenant_url(contoso)}" '
        'hx-trigger="sync-ended from:body" hx-include="#application-filters" '
        'hx-disinherit="hx-include">'
    ) in html


# --- sync now ----------------------------------------------------------------------------


def test_sync_now_queues_one_manual_run_and_sends_it_once_on_commit(
    alice_client, contoso, sent_syncs, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = alice_client.post(sync_url(contoso))
        assert sent_syncs == []  # not before the run row is committed

    run = SyncRun.objects.get(tenant=contoso)
    assert (run.status, run.trigger) == (SyncRun.Status.QUEUED, SyncRun.Trigger.MANUAL)
    assert len(callbacks) == 1 and sent_syncs == [run.pk]
    assert response.status_code == 302 and response["Location"] == tenant_url(contoso)


def test_sync_now_while_a_run_is_open_queues_none_and_shows_that_run(
    alice_client, contoso, sent_syncs, django_capture_on_commit_callbacks
):
    open_run = SyncRunFactory(tenant=contoso, running=True)

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(sync_url(contoso), follow=True)

    assert SyncRun.objects.filter(tenant=contoso).get() == open_run
    assert sent_syncs == []
    html = response.content.decode()
    assert "already under way" in html
    assert f'hx-get="{status_url(open_run)}"' in html


def test_sync_now_with_htmx_returns_only_the_sync_panel(
    alice_client, contoso, sent_syncs, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(sync_url(contoso), **HTMX)

    run = SyncRun.objects.get(tenant=contoso)
    html = response.content.decode()
    assert response.status_code == 200 and sent_syncs == [run.pk]
    assert html.lstrip().startswith('<section class="box sync-panel" id="sync-panel"')
    assert '<span class="tag run-status run-grey">Queued</span>' in html
    assert f'hx-get="{status_url(run)}" hx-trigger="every 2s"' in html
    assert "<html" not in html and 'id="applications"' not in html


def test_sync_now_says_it_answers_htmx_and_browsers_differently(alice_client, contoso, sent_syncs):
    page = alice_client.post(sync_url(contoso))
    fragment = alice_client.post(sync_url(contoso), **HTMX)

    assert page.status_code == 302 and fragment.status_code == 200
    assert "HX-Request" in page["Vary"] and "HX-Request" in fragment["Vary"]


def test_sync_now_refuses_get(alice_client, contoso):
    assert alice_client.get(sync_url(contoso)).status_code == 405
    assert not SyncRun.objects.exists()


def test_sync_now_refuses_a_post_without_the_csrf_token(alice, contoso):
    client = signed_in(alice, enforce_csrf_checks=True)

    assert client.post(sync_url(contoso)).status_code == 403
    assert not SyncRun.objects.exists()


# --- exports -----------------------------------------------------------------------------


def test_a_reader_exports_the_report_as_json_exactly_as_the_report_command(bob_client, contoso):
    with_verdicts(contoso, succeeded_run(contoso))

    response = bob_client.get(reverse("tenants:report-json", args=[contoso.tenant_id]))

    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == (
        f'attachment; filename="permissions-{contoso.tenant_id}-2026-03-14.json"'
    )
    body = response.getvalue().decode()
    assert body == json.dumps(tenant_report(tenant=contoso).as_json(), indent=2)
    (app,) = json.loads(body)["applications"]
    assert {g["verdict"] for g in app["grants"]} == {"needed", "unused", "unexplained"}


def test_the_csv_export_has_a_row_per_grant_and_per_missing_permission(bob_client, contoso):
    with_verdicts(contoso, succeeded_run(contoso))

    response = bob_client.get(reverse("tenants:report-csv", args=[contoso.tenant_id]))

    assert response["Content-Type"] == "text/csv; charset=utf-8" and response.streaming
    assert response["Content-Disposition"].startswith("attachment; filename=")
    body = response.getvalue().decode()
    assert body == "".join(report_csv_chunks(tenant_report(tenant=contoso).applications))
    rows = list(csv.DictReader(io.StringIO(body)))
    assert sorted(row["verdict"] for row in rows) == [
        "missing",
        "needed",
        "unexplained",
        "unexplained",
        "unused",
    ]
