"""A tenant's grants over time (tenants.history), the SVG charts (portal.charts) and the
pages that show them beside their tables."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from permissions.models import Tier
from portal.charts import Bar, Series, bars_chart, columns_chart, nice_maximum
from tenants.history import grant_history
from tests.factories import (
    ApplicationFactory,
    FeatureFactory,
    GrantFactory,
    PermissionFactory,
    RequirementFactory,
    ServicePrincipalFactory,
    SyncRunFactory,
)

pytestmark = pytest.mark.django_db


def runs(tenant, count: int):
    start = timezone.now() - timedelta(days=count)
    return [
        SyncRunFactory(
            tenant=tenant,
            status="succeeded",
            started_at=start + timedelta(days=day),
            finished_at=start + timedelta(days=day, minutes=1),
        )
        for day in range(count)
    ]


def test_the_series_counts_what_each_sync_held_by_verdict_and_tier(contoso):
    first, second, third = runs(contoso, 3)
    app = ApplicationFactory()
    feature = FeatureFactory(application=app, default_enabled=True)
    RequirementFactory(feature=feature, permission_value="Device.Read.All")
    PermissionFactory(value="Device.Read.All", tier=Tier.USER_ACCESS)
    PermissionFactory(value="Directory.ReadWrite.All", tier=Tier.CONTROL_PLANE)
    client = ServicePrincipalFactory(tenant=contoso, app_id=app.app_id)
    # Needed from the first sync on; an unexplained control-plane grant from the second
    # to the third, which no longer found it.
    GrantFactory(client=client, value="Device.Read.All", first_seen_run=first)
    GrantFactory(
        client=client,
        value="Directory.ReadWrite.All",
        first_seen_run=second,
        removed_in_run=third,
    )
    # Three users' consents to one scope are one grant entry.
    for user in range(3):
        GrantFactory(
            client=client,
            kind="delegated",
            value="Mail.Read",
            consent="user",
            permission_id=None,
            graph_object_id=f"user-grant-{user}",
            first_seen_run=second,
        )

    points = grant_history(contoso)

    assert [p.run_id for p in points] == [first.pk, second.pk, third.pk]
    assert [p.by_verdict for p in points] == [
        {"needed": 1, "unused": 0, "unexplained": 0},
        {"needed": 1, "unused": 0, "unexplained": 2},
        {"needed": 1, "unused": 0, "unexplained": 1},
    ]
    assert [p.by_tier[Tier.CONTROL_PLANE] for p in points] == [0, 1, 0]
    assert [p.by_tier[Tier.USER_ACCESS] for p in points] == [1, 1, 1]
    assert [p.by_tier[Tier.UNCLASSIFIED] for p in points] == [0, 1, 1]
    assert [p.total for p in points] == [1, 3, 2]


def test_the_series_takes_the_same_queries_for_many_syncs_and_grants(contoso):
    synced = runs(contoso, 4)
    client = ServicePrincipalFactory(tenant=contoso)
    GrantFactory(client=client, first_seen_run=synced[0])
    with CaptureQueriesContext(connection) as few:
        grant_history(contoso)
    more = runs(contoso, 20)
    for index, run in enumerate(more):
        GrantFactory.create_batch(5, client=client, first_seen_run=run)
        if index:
            GrantFactory(client=client, first_seen_run=more[0], removed_in_run=run)

    with CaptureQueriesContext(connection) as many:
        points = grant_history(contoso)

    assert len(many) == len(few)
    assert len(points) == 24 and points[-1].total == 1 + 5 * 20


def test_failed_syncs_are_not_points_and_only_the_newest_runs_are_shown(contoso):
    synced = runs(contoso, 5)
    SyncRunFactory(tenant=contoso, failed=True)

    points = grant_history(contoso, runs=3)

    assert [p.run_id for p in points] == [run.pk for run in synced[-3:]]


def test_nice_maximum_rounds_up_to_one_two_or_five():
    assert [nice_maximum(n) for n in (0, 1, 2, 3, 7, 11, 40, 101)] == [1, 1, 2, 5, 10, 20, 50, 200]


SERIES = (Series("a", "Needed", "#2f855a"), Series("b", "Unused", "#b7791f"))


def test_a_columns_chart_stacks_each_series_to_its_share_of_the_axis():
    svg = columns_chart(
        title="Grants", series=SERIES, bars=[Bar("day 1", {"a": 5}), Bar("day 2", {"a": 5, "b": 5})]
    )

    assert svg.startswith('<svg class="chart"') and 'role="img"' in svg
    # The top is 10: 5 of 10 is half of the 180-pixel plot.
    assert svg.count('height="90.0" fill="#2f855a"') == 2
    assert svg.count('height="90.0" fill="#b7791f"') == 1
    assert "<title>day 2: 5 unused</title>" in svg


def test_charts_escape_every_name():
    hostile = '<script>alert("x")</script> & Co'
    for chart in (columns_chart, bars_chart):
        svg = chart(title=hostile, series=SERIES, bars=[Bar(hostile, {"a": 1})])
        assert "<script>" not in svg
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in svg


def test_a_bars_chart_gives_each_category_its_total():
    svg = bars_chart(title="Tenants", series=SERIES, bars=[Bar("Contoso", {"a": 3, "b": 4})])

    assert ">Contoso</text>" in svg and ">7</text>" in svg


# -- on the pages ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_history_page_shows_each_chart_beside_its_table(synced, alice_client):
    contoso = synced.contoso
    point = grant_history(contoso)[-1]
    url = reverse("tenants:history", args=[contoso.tenant_id])

    for answer in (alice_client.get(url), alice_client.get(url, HTTP_HX_REQUEST="true")):
        page = answer.content.decode()
        assert page.count('<svg class="chart"') == 2
        assert "<caption>Grants of Contoso at each sync, by verdict</caption>" in page
        row = "".join(
            f'<td class="has-text-right">{count}</td>'
            for count in (*point.by_verdict.values(), point.total)
        )
        assert row in page
    assert "<html" not in page  # htmx gets the section alone


@pytest.mark.django_db(transaction=True)
def test_the_tenant_and_sync_pages_load_the_history_when_it_is_reached(synced, alice_client):
    contoso = synced.contoso
    history = reverse("tenants:history", args=[contoso.tenant_id])

    tenant_page = alice_client.get(reverse("tenants:tenant-detail", args=[contoso.tenant_id]))
    runs_page = alice_client.get(reverse("tenants:run-list", args=[contoso.tenant_id]))

    assert f'hx-get="{history}?runs=12" hx-trigger="revealed"' in tenant_page.content.decode()
    assert f'hx-get="{history}" hx-trigger="revealed"' in runs_page.content.decode()
    # Without JavaScript, a link to the same page.
    assert f'<a href="{history}">' in runs_page.content.decode()


def test_an_outsider_gets_no_history(contoso, charlie_client):
    assert (
        charlie_client.get(reverse("tenants:history", args=[contoso.tenant_id])).status_code == 404
    )


@pytest.mark.django_db(transaction=True)
def test_the_dashboard_shows_the_verdict_breakdown_with_its_table(synced, oscar_client):
    page = oscar_client.get(reverse("tenants:dashboard")).content.decode()

    assert "Grants by verdict in each tenant" in page
    table = page.split("<caption>Grants by verdict in each tenant</caption>")[1]
    assert ">Contoso</a>" in table and ">Fabrikam</a>" in table
