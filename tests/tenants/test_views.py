"""The tenant pages: tenant list, a tenant's sync panel and applications, sync history and
what each sync changed. alice is staff; bob is signed in but not staff."""

import datetime as dt
import uuid

import pytest
from django.test import Client
from django.urls import reverse

from permissions.models import PermissionKind
from tenants.models import Grant, SyncRun, Tenant
from tests.factories import (
    ApplicationFactory,
    FeatureFactory,
    GrantFactory,
    RequirementFactory,
    ServicePrincipalFactory,
    SyncRunFactory,
    TenantFactory,
)

pytestmark = pytest.mark.django_db

SUCCEEDED = SyncRun.Status.SUCCEEDED
FAILED = SyncRun.Status.FAILED
STARTED = dt.datetime(2026, 3, 14, 9, 30, tzinfo=dt.UTC)
FINISHED = STARTED + dt.timedelta(seconds=12.5)
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="x", is_staff=True)


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="x")


@pytest.fixture
def staff(client: Client, alice) -> Client:
    client.force_login(alice)
    return client


@pytest.fixture
def contoso() -> Tenant:
    return TenantFactory(
        name="Contoso",
        tenant_id=uuid.UUID("1e1a0801-7f55-46e2-9fb2-3b09766f2844"),
        default_domain="contoso.onmicrosoft.com",
    )


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


# --- access ------------------------------------------------------------------------------


def all_urls(tenant: Tenant, run: SyncRun) -> list[str]:
    return [
        reverse("tenants:tenant-list"),
        tenant_url(tenant),
        history_url(tenant),
        run_url(run),
        status_url(run),
    ]


def test_signed_out_visitors_and_non_staff_are_sent_to_sign_in(client, bob, contoso):
    run = succeeded_run(contoso)
    for url in all_urls(contoso, run):
        assert client.get(url)["Location"].startswith(reverse("admin:login"))
    client.force_login(bob)
    for url in [*all_urls(contoso, run), sync_url(contoso)]:
        response = client.post(url) if url == sync_url(contoso) else client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login"))
    assert not SyncRun.objects.filter(trigger=SyncRun.Trigger.MANUAL).exists()


def test_the_tenants_link_is_shown_to_staff_only(client, alice, bob):
    link = f'href="{reverse("tenants:tenant-list")}"'
    client.force_login(bob)
    assert link not in client.get(reverse("permissions:catalog")).content.decode()
    client.force_login(alice)
    html = client.get(reverse("tenants:tenant-list")).content.decode()
    assert f'<a {link} aria-current="page">Tenants</a>' in html


def test_an_unknown_tenant_is_not_found(staff):
    assert staff.get(reverse("tenants:tenant-detail", args=[uuid.uuid4()])).status_code == 404
    assert staff.post(reverse("tenants:sync-now", args=[uuid.uuid4()])).status_code == 404


def test_a_run_is_only_found_under_its_own_tenant(staff, contoso):
    fabrikam_run = succeeded_run(TenantFactory(name="Fabrikam"))
    for name in ("tenants:run-detail", "tenants:run-status"):
        url = reverse(name, args=[contoso.tenant_id, fabrikam_run.pk])
        assert staff.get(url).status_code == 404
    assert staff.get(run_url(fabrikam_run)).status_code == 200


# --- tenant list -------------------------------------------------------------------------


def test_the_tenant_list_shows_last_good_sync_latest_status_and_next_sync(staff, contoso):
    succeeded_run(contoso)
    SyncRunFactory(tenant=contoso, status=FAILED, error="Graph said no")
    contoso.next_sync_at = dt.datetime(2099, 1, 2, 3, 4, tzinfo=dt.UTC)
    contoso.save()
    TenantFactory(name="Fabrikam", status=Tenant.Status.PAUSED)

    html = staff.get(reverse("tenants:tenant-list")).content.decode()

    assert f'<a href="{tenant_url(contoso)}">Contoso</a>' in html
    assert str(contoso.tenant_id) in html
    assert "14 Mar 2026, 09:30:12" in html  # the last good sync, not the failed one after it
    assert '<span class="tag run-status run-red">Failed</span>' in html
    assert "2 Jan 2099, 03:04:00" in html
    assert "Never synced" in html and "Paused" in html


def test_a_tenant_whose_sync_is_overdue_is_due_now(staff):
    TenantFactory(next_sync_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))

    assert "Due now" in staff.get(reverse("tenants:tenant-list")).content.decode()


def test_the_empty_tenant_list_says_how_to_add_a_tenant(staff):
    html = staff.get(reverse("tenants:tenant-list")).content.decode()

    assert "No tenants yet" in html
    assert "manage.py add_tenant TENANT_ID --name NAME" in html


# --- tenant page -------------------------------------------------------------------------


def test_the_tenant_page_shows_the_tenant_and_its_latest_run(staff, contoso):
    run = succeeded_run(
        contoso,
        service_principals=7,
        graph_requests=9,
        grants_added=3,
        grants_removed=1,
        grants_unchanged=40,
    )

    response = staff.get(tenant_url(contoso))

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


def test_a_failed_latest_run_shows_its_error_and_the_last_good_sync(staff, contoso):
    good = succeeded_run(contoso)
    SyncRunFactory(tenant=contoso, status=FAILED, error="Access denied: grant Application.Read.All")

    html = staff.get(tenant_url(contoso)).content.decode()

    assert "This sync failed:</strong> Access denied: grant Application.Read.All" in html
    assert f'href="{run_url(good)}">sync {good.pk}</a>' in html


def test_a_never_synced_tenant_page_says_how_to_sync_it(staff, contoso):
    html = staff.get(tenant_url(contoso)).content.decode()

    assert "Never synced" in html and "Not synced yet" in html
    assert f"manage.py sync_tenant {contoso.tenant_id}" in html
    assert '<button class="button is-link" type="submit">Sync now</button>' in html


def test_an_open_run_makes_the_panel_poll_its_status_every_2_seconds(staff, contoso):
    run = SyncRunFactory(tenant=contoso, status=SyncRun.Status.RUNNING, started_at=STARTED)
    SyncRun.objects.filter(pk=run.pk).update(progress="Reading delegated grants")

    html = staff.get(tenant_url(contoso)).content.decode()

    assert f'hx-get="{status_url(run)}" hx-trigger="every 2s" hx-swap="outerHTML"' in html
    assert "Reading delegated grants&hellip;" in html
    assert 'type="submit" disabled>Sync now</button>' in html


def test_the_tenant_page_counts_each_applications_grants_by_verdict(staff, contoso):
    run = succeeded_run(contoso)
    application = ApplicationFactory(name="247connect")
    on = FeatureFactory(application=application, default_enabled=True)
    off = FeatureFactory(application=application, default_enabled=False)
    RequirementFactory(feature=on, permission_value="Device.Read.All")
    RequirementFactory(feature=on, permission_value="Group.Read.All")  # not granted: missing
    RequirementFactory(feature=off, permission_value="Mail.Send")
    client = ServicePrincipalFactory(
        tenant=contoso, app_id=application.app_id, display_name="247connect"
    )
    for value in ("Device.Read.All", "Mail.Send", "Sites.Read.All", "Files.Read.All"):
        GrantFactory(client=client, value=value, first_seen_run=run)

    response = staff.get(tenant_url(contoso))

    (summary,) = response.context["applications"]
    assert summary.display_name == "247connect" and summary.permissions == 4
    assert summary.verdicts == [("needed", 1), ("unused", 1), ("unexplained", 2), ("missing", 1)]
    assert '<span class="tag verdict-unexplained">2</span>' in response.content.decode()


def test_a_synced_tenant_without_grants_says_no_application_holds_one(staff, contoso):
    succeeded_run(contoso)

    assert "No application holds a permission" in staff.get(tenant_url(contoso)).content.decode()


def test_htmx_asking_for_the_tenant_page_gets_only_the_applications(staff, contoso):
    succeeded_run(contoso)

    html = staff.get(tenant_url(contoso), **HTMX).content.decode()

    assert html.lstrip().startswith('<section class="block" id="applications"')
    assert 'hx-trigger="sync-ended from:body"' in html
    assert "<html" not in html and "sync-panel" not in html


# --- sync now ----------------------------------------------------------------------------


def test_sync_now_queues_one_manual_run_and_sends_it_once_on_commit(
    staff, contoso, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = staff.post(sync_url(contoso))
        assert sent == []  # not before the run row is committed

    run = SyncRun.objects.get(tenant=contoso)
    assert (run.status, run.trigger) == (SyncRun.Status.QUEUED, SyncRun.Trigger.MANUAL)
    assert len(callbacks) == 1 and sent == [run.pk]
    assert response.status_code == 302 and response["Location"] == tenant_url(contoso)


def test_sync_now_while_a_run_is_open_queues_none_and_shows_that_run(
    staff, contoso, sent, django_capture_on_commit_callbacks
):
    open_run = SyncRunFactory(tenant=contoso, status=SyncRun.Status.RUNNING)

    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(sync_url(contoso), follow=True)

    assert SyncRun.objects.filter(tenant=contoso).get() == open_run
    assert sent == []
    html = response.content.decode()
    assert "already under way" in html
    assert f'hx-get="{status_url(open_run)}"' in html


def test_sync_now_with_htmx_returns_only_the_sync_panel(
    staff, contoso, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(sync_url(contoso), **HTMX)

    run = SyncRun.objects.get(tenant=contoso)
    html = response.content.decode()
    assert response.status_code == 200 and sent == [run.pk]
    assert html.lstrip().startswith('<section class="box sync-panel" id="sync-panel"')
    assert '<span class="tag run-status run-grey">Queued</span>' in html
    assert f'hx-get="{status_url(run)}" hx-trigger="every 2s"' in html
    assert "<html" not in html and 'id="applications"' not in html


def test_sync_now_refuses_get(staff, contoso):
    assert staff.get(sync_url(contoso)).status_code == 405
    assert not SyncRun.objects.exists()


def test_sync_now_refuses_a_post_without_the_csrf_token(alice, contoso):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    assert client.post(sync_url(contoso)).status_code == 403
    assert not SyncRun.objects.exists()


# --- run status (polled) -----------------------------------------------------------------


def test_the_status_of_an_open_run_keeps_polling(staff, contoso):
    run = SyncRunFactory(tenant=contoso)

    response = staff.get(status_url(run), **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith(
        f'<div id="sync-run" class="sync-run" hx-get="{status_url(run)}" hx-trigger="every 2s"'
    )
    assert "Waiting for a worker" in html and "<html" not in html
    assert "HX-Trigger" not in response.headers


def test_the_status_of_an_ended_run_stops_polling_with_286_and_shows_its_final_state(
    staff, contoso
):
    run = succeeded_run(contoso, service_principals=7)

    response = staff.get(status_url(run), **HTMX)

    html = response.content.decode()
    assert response.status_code == 286
    assert response.headers["HX-Trigger"] == '{"sync-ended": {}}'
    assert "hx-trigger" not in html
    assert '<span class="tag run-status run-green">Succeeded</span>' in html
    assert "<dd>7</dd>" in html
    assert 'type="submit">Sync now</button>' in html


# --- sync history ------------------------------------------------------------------------


def test_the_history_lists_each_run_with_its_numbers(staff, contoso):
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

    html = staff.get(history_url(contoso)).content.decode()

    assert f'href="{run_url(run)}">Sync {run.pk}</a>' in html
    assert '<span class="tag run-status run-green">Succeeded</span>' in html
    assert '<td data-label="Trigger">Sync now</td>' in html
    assert ">09:30:00</time>" in html and ">09:30:12</time>" in html  # the date is in the title
    assert "12.5 s" in html
    assert ">23</td>" in html and "2 (3.5 s)" in html and ">11</td>" in html
    assert "+5<span" in html and "&minus;2<span" in html and "=30<span" in html


def test_the_history_shows_a_failed_runs_error_prominently(staff, contoso):
    run = SyncRunFactory(tenant=contoso, status=FAILED, error="Graph answered 403")

    html = staff.get(history_url(contoso)).content.decode()

    assert '<span class="tag run-status run-red">Failed</span>' in html
    assert f'run-error"><strong>Sync {run.pk} failed:</strong> Graph answered 403' in html


def test_the_history_shows_25_runs_a_page_newest_first(staff, contoso):
    runs = [SyncRunFactory(tenant=contoso, status=SUCCEEDED) for _ in range(27)]

    first = staff.get(history_url(contoso))
    second = staff.get(history_url(contoso), {"page": 2})

    assert [run for run, _ in first.context["rows"]] == runs[:-26:-1]
    assert [run for run, _ in second.context["rows"]] == runs[1::-1]


def test_the_history_of_a_never_synced_tenant_says_so(staff, contoso):
    assert "No sync yet" in staff.get(history_url(contoso)).content.decode()


# --- run detail and diff -----------------------------------------------------------------


def test_the_run_page_shows_grants_added_and_removed_since_the_previous_good_run(staff, contoso):
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

    response = staff.get(run_url(second))

    html = response.content.decode()
    assert f'Changes since <a href="{run_url(first)}">sync {first.pk}</a>' in html
    assert '2 added</span>, <span class="count-removed">1 removed' in html
    changes = {(g.value, g.was_removed) for g in response.context["page_obj"]}
    assert changes == {("Calendars.Read", True), ("Mail.Send", False), ("", False)}
    assert kept.value not in html
    assert 'unknown role <code class="nowrap">00000000-0000-0000-0000-000000000007</code>' in html
    assert "aaaaaaaa-0000-4000-8000-000000000001" in html and "User consent" in html
    assert html.count("&minus; Removed") == 1 and html.count("+ Added") == 2


def test_the_first_sync_shows_all_its_grants_as_new(staff, contoso):
    run = succeeded_run(contoso)
    GrantFactory.create_batch(3, client=ServicePrincipalFactory(tenant=contoso), first_seen_run=run)

    html = staff.get(run_url(run)).content.decode()

    assert "First sync: all 3 grants are new" in html


def test_a_sync_that_changed_nothing_says_so(staff, contoso):
    first = succeeded_run(contoso)
    GrantFactory(client=ServicePrincipalFactory(tenant=contoso), first_seen_run=first)
    second = succeeded_run(contoso)

    html = staff.get(run_url(second)).content.decode()

    assert f"No changes: the grants are the same as sync {first.pk} read them." in html


def test_a_failed_run_page_shows_its_error_and_that_it_changed_nothing(staff, contoso):
    run = SyncRunFactory(tenant=contoso, status=FAILED, error="Token refused")

    html = staff.get(run_url(run)).content.decode()

    assert "This sync failed:</strong> Token refused" in html
    assert "this one changed nothing" in html


def test_a_long_diff_is_paginated_and_htmx_gets_only_the_changes(staff, contoso):
    run = succeeded_run(contoso)
    GrantFactory.create_batch(
        51, client=ServicePrincipalFactory(tenant=contoso), first_seen_run=run
    )

    first = staff.get(run_url(run))
    second = staff.get(run_url(run), {"page": 2}, **HTMX)

    assert len(first.context["page_obj"]) == 50
    assert 'hx-target="#changes"' in first.content.decode()
    html = second.content.decode()
    assert len(second.context["page_obj"]) == 1 and "51–51 shown" in html
    assert "<html" not in html and "<h1" not in html
