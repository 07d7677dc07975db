"""A tenant's sync runs: the polled status, the history, what each sync changed
(tenants.views.runs).
alice is an admin and bob a reader of Contoso, charlie an admin of Fabrikam, oscar an
operator; erin has no portal role (fixtures and helpers: conftest.py, helpers.py)."""

import uuid

import pytest
from django.conf import settings
from django.urls import reverse

from permissions.models import PermissionKind
from tenants.models import Grant, RevokeRequest, SyncRun
from tests.factories import (
    GrantFactory,
    ServicePrincipalFactory,
    SyncRunFactory,
    UserFactory,
)
from tests.helpers import signed_in
from tests.tenants.views.helpers import (
    HTMX,
    history_url,
    run_url,
    status_url,
    succeeded_run,
)

pytestmark = pytest.mark.django_db


# --- status badges ---------------------------------------------------------------------


@pytest.mark.parametrize("model", [SyncRun, RevokeRequest])
def test_every_status_has_a_badge_colour_the_style_sheet_knows(model):
    style = (settings.BASE_DIR / "static" / "portal.css").read_text()
    for status in model.Status:
        colour = model(status=status).status_colour
        assert f".tag.run-{colour} {{" in style, (model.__name__, status)


# --- finding a run -----------------------------------------------------------------------


def test_a_run_is_only_found_under_its_own_tenant(contoso, fabrikam):
    superuser = signed_in(UserFactory(username="root", is_superuser=True))
    fabrikam_run = succeeded_run(fabrikam)
    for name in ("tenants:run-detail", "tenants:run-status"):
        url = reverse(name, args=[contoso.tenant_id, fabrikam_run.pk])
        assert superuser.get(url).status_code == 404
    assert superuser.get(run_url(fabrikam_run)).status_code == 200


# --- run status (polled) -----------------------------------------------------------------


def test_the_status_of_an_open_run_keeps_polling(alice_client, contoso):
    run = SyncRunFactory(tenant=contoso)

    response = alice_client.get(status_url(run), **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith(
        f'<div id="sync-run" class="sync-run" hx-get="{status_url(run)}" hx-trigger="every 2s"'
    )
    assert "Waiting for a worker" in html and "<html" not in html
    assert "HX-Trigger" not in response.headers


def test_the_status_of_an_ended_run_stops_polling_with_286_and_shows_its_final_state(
    alice_client, contoso
):
    run = succeeded_run(contoso, service_principals=7)

    response = alice_client.get(status_url(run), **HTMX)

    html = response.content.decode()
    assert response.status_code == 286
    assert response.headers["HX-Trigger"] == '{"sync-ended": {}}'
    assert "hx-trigger" not in html
    assert '<span class="tag run-status run-green">Succeeded</span>' in html
    assert "<dd>7</dd>" in html
    assert 'type="submit">Sync now</button>' in html


# --- sync history ------------------------------------------------------------------------


def test_the_history_lists_each_run_with_its_numbers(alice_client, contoso):
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

    html = alice_client.get(history_url(contoso)).content.decode()

    assert f'href="{run_url(run)}">Sync {run.pk}</a>' in html
    assert '<span class="tag run-status run-green">Succeeded</span>' in html
    assert '<td data-label="Started by">Sync now</td>' in html
    assert ">09:30:00</time>" in html and ">09:30:12</time>" in html  # the date is in the title
    assert "12.5 s" in html
    assert ">23</td>" in html and "2 (3.5 s)" in html and ">11</td>" in html
    assert "+5<span" in html and "&minus;2<span" in html and "=30<span" in html


def test_the_history_shows_a_failed_runs_error_prominently(alice_client, contoso):
    run = SyncRunFactory(tenant=contoso, failed=True, error="Graph answered 403")

    html = alice_client.get(history_url(contoso)).content.decode()

    assert '<span class="tag run-status run-red">Failed</span>' in html
    assert f'run-error"><strong>Sync {run.pk} failed:</strong> Graph answered 403' in html


def test_the_history_shows_25_runs_a_page_newest_first(alice_client, contoso):
    runs = [SyncRunFactory(tenant=contoso, succeeded=True) for _ in range(27)]

    first = alice_client.get(history_url(contoso))
    second = alice_client.get(history_url(contoso), {"page": 2})

    assert list(first.context["page_obj"]) == runs[:-26:-1]
    assert list(second.context["page_obj"]) == runs[1::-1]


def test_the_history_of_a_never_synced_tenant_says_so(alice_client, contoso):
    assert "No sync yet" in alice_client.get(history_url(contoso)).content.decode()


# --- run detail and diff -----------------------------------------------------------------


def test_the_run_page_shows_grants_added_and_removed_since_the_previous_good_run(
    alice_client, contoso
):
    first = succeeded_run(contoso)
    client = ServicePrincipalFactory(tenant=contoso, display_name="AskCody")
    kept = GrantFactory(client=client, value="User.Read.All", first_seen_run=first)
    gone = GrantFactory(client=client, value="Calendars.Read", first_seen_run=first)
    SyncRunFactory(tenant=contoso, failed=True)  # in between: changes nothing
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

    response = alice_client.get(run_url(second))

    html = response.content.decode()
    assert f'Changes since <a href="{run_url(first)}">sync {first.pk}</a>' in html
    assert '2 added</span>, <span class="count-removed">1 removed' in html
    changes = {(g.value, g.was_removed) for g in response.context["page_obj"]}
    assert changes == {("Calendars.Read", True), ("Mail.Send", False), ("", False)}
    assert kept.value not in html
    assert 'unknown role <code class="nowrap">00000000-0000-0000-0000-000000000007</code>' in html
    assert "aaaaaaaa-0000-4000-8000-000000000001" in html and "User consent" in html
    assert html.count("&minus; Removed") == 1 and html.count("+ Added") == 2


def test_the_first_sync_shows_all_its_grants_as_new(alice_client, contoso):
    run = succeeded_run(contoso)
    GrantFactory.create_batch(3, client=ServicePrincipalFactory(tenant=contoso), first_seen_run=run)

    html = alice_client.get(run_url(run)).content.decode()

    assert "First sync: all 3 grants are new" in html


def test_a_sync_that_changed_nothing_says_so(alice_client, contoso):
    first = succeeded_run(contoso)
    GrantFactory(client=ServicePrincipalFactory(tenant=contoso), first_seen_run=first)
    second = succeeded_run(contoso)

    html = alice_client.get(run_url(second)).content.decode()

    assert f"No changes: the grants are the same as sync {first.pk} read them." in html


def test_the_run_page_says_how_graph_was_read(alice_client, contoso):
    delta = succeeded_run(contoso)
    SyncRun.objects.filter(pk=delta.pk).update(read_mode=SyncRun.ReadMode.DELTA)
    checked = succeeded_run(contoso)
    SyncRun.objects.filter(pk=checked.pk).update(
        read_mode=SyncRun.ReadMode.FULL, delta_discrepancies=3
    )

    assert "<dd>Changes only (delta)</dd>" in alice_client.get(run_url(delta)).content.decode()
    assert (
        "<dd>Full read; 3 differences from what the delta queries said</dd>"
        in alice_client.get(run_url(checked)).content.decode()
    )


def test_a_failed_run_page_shows_its_error_and_that_it_changed_nothing(alice_client, contoso):
    run = SyncRunFactory(tenant=contoso, failed=True, error="Token refused")

    html = alice_client.get(run_url(run)).content.decode()

    assert "This sync failed:</strong> Token refused" in html
    assert "this one changed nothing" in html


def test_a_long_diff_is_paginated_and_htmx_gets_only_the_changes(alice_client, contoso):
    run = succeeded_run(contoso)
    GrantFactory.create_batch(
        51, client=ServicePrincipalFactory(tenant=contoso), first_seen_run=run
    )

    first = alice_client.get(run_url(run))
    second = alice_client.get(run_url(run), {"page": 2}, **HTMX)

    assert len(first.context["page_obj"]) == 50
    assert 'hx-target="#changes"' in first.content.decode()
    html = second.content.decode()
    assert len(second.context["page_obj"]) == 1 and "51–51 shown" in html
    assert "<html" not in html and "<h1" not in html
