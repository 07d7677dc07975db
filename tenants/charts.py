"""The tenant pages' pictures as data: a tenant's grants at each sync (by verdict, by tier)
and the dashboard's tenants by verdict, each a chart (portal.charts) with the table of its
numbers, the chart's text alternative."""

from collections.abc import Sequence

from django.urls import reverse

from permissions.models import Tier
from portal.charts import Bar, ChartWithTable, Series, TableRow, bars_chart, columns_chart
from tenants.history import HistoryPoint
from tenants.models import Tenant
from tenants.selectors import TenantOverview

VERDICT_SERIES = (
    Series("needed", "Needed", "#2f855a"),
    Series("unused", "Unused", "#b7791f"),
    Series("unexplained", "Unexplained", "#c53030"),
)
TIER_SERIES = (
    Series(Tier.CONTROL_PLANE.value, Tier.CONTROL_PLANE.label, "#7f1d1d"),
    Series(Tier.MANAGEMENT_PLANE.value, Tier.MANAGEMENT_PLANE.label, "#d97706"),
    Series(Tier.USER_ACCESS.value, Tier.USER_ACCESS.label, "#2563eb"),
    Series(Tier.UNCLASSIFIED.value, Tier.UNCLASSIFIED.label, "#9aa5b1"),
)


def history_charts(tenant: Tenant, points: list[HistoryPoint]) -> list[ChartWithTable]:
    """The tenant's grants at each sync by verdict, then by tier; none without a sync."""
    if not points:
        return []
    return [
        _history_chart(tenant, points, "verdict", VERDICT_SERIES),
        _history_chart(tenant, points, "tier", TIER_SERIES),
    ]


def _history_chart(
    tenant: Tenant, points: list[HistoryPoint], by: str, series: Sequence[Series]
) -> ChartWithTable:
    def counts(point: HistoryPoint) -> dict[str, int]:
        return point.by_verdict if by == "verdict" else point.by_tier

    caption = f"Grants of {tenant.name} at each sync, by {by}"
    bars = [Bar(f"{point.at:%Y-%m-%d %H:%M}", counts(point)) for point in points]
    return ChartWithTable(
        svg=columns_chart(title=caption, series=series, bars=bars),
        caption=caption,
        headings=["Sync", "Finished", *(s.label for s in series), "All"],
        # Newest first, as the sync history lists runs.
        rows=[
            TableRow(
                label=str(point.run_id),
                href=reverse("tenants:run-detail", args=[tenant.tenant_id, point.run_id]),
                cells=[
                    f"{point.at:%Y-%m-%d %H:%M}",
                    *(counts(point)[s.key] for s in series),
                    point.total,
                ],
            )
            for point in reversed(points)
        ],
    )


def verdict_breakdown(overviews: Sequence[TenantOverview]) -> ChartWithTable | None:
    """The synced tenants among ``overviews``, their grants by verdict; None if none is."""
    synced = [
        (overview.tenant, overview.counts)
        for overview in overviews
        if overview.tenant.last_good_sync_id and overview.counts is not None
    ]
    if not synced:
        return None
    caption = "Grants by verdict in each tenant"
    bars = [Bar(tenant.name, dict(counts.by_verdict)) for tenant, counts in synced]
    return ChartWithTable(
        svg=bars_chart(title=caption, series=VERDICT_SERIES, bars=bars),
        caption=caption,
        headings=["Tenant", *(s.label for s in VERDICT_SERIES), "Missing"],
        rows=[
            TableRow(
                label=tenant.name,
                href=reverse("tenants:tenant-detail", args=[tenant.tenant_id]),
                cells=[count for _verdict, count in counts.by_verdict],
            )
            for tenant, counts in synced
        ],
    )
