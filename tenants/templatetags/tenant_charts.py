"""The tenant pages' pictures, for templates: ``{% load tenant_charts %}`` then
``{% grant_history_chart tenant %}`` (a tenant's grants at each sync, by verdict and by
tier) and ``{% verdict_breakdown_chart overviews %}`` (the dashboard's tenants by verdict).
Each draws its SVG (portal.charts) beside a table of the same numbers, its text alternative."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django import template
from django.urls import reverse
from django.utils.safestring import SafeString

from permissions.models import Tier
from portal.charts import Bar, Series, bars_chart, columns_chart
from tenants.history import HISTORY_RUNS, HistoryPoint, grant_history
from tenants.models import Tenant
from tenants.selectors import TenantOverview

register = template.Library()

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


@dataclass(frozen=True)
class TableRow:
    """One row of a chart's table: what it is (linked) and its numbers."""

    label: str
    href: str
    cells: list[Any]


@dataclass(frozen=True)
class ChartWithTable:
    """A chart and the table of its numbers: its caption, column headings (the first is
    the rows' label) and rows."""

    svg: SafeString
    caption: str
    headings: list[str]
    rows: list[TableRow]


@register.inclusion_tag("tenants/charts.html#grant-history")
def grant_history_chart(tenant: Tenant, runs: int = HISTORY_RUNS) -> dict[str, Any]:
    points = grant_history(tenant, runs=runs)
    return {
        "tenant": tenant,
        "runs": len(points),
        "charts": [
            _history_chart(tenant, points, "verdict", VERDICT_SERIES),
            _history_chart(tenant, points, "tier", TIER_SERIES),
        ]
        if points
        else [],
    }


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


@register.inclusion_tag("tenants/charts.html#verdict-breakdown")
def verdict_breakdown_chart(overviews: Sequence[TenantOverview]) -> dict[str, Any]:
    synced = [overview for overview in overviews if overview.tenant.last_good_sync_id]
    caption = "Grants by verdict in each tenant"
    bars = [Bar(overview.tenant.name, dict(overview.counts.by_verdict)) for overview in synced]
    chart = ChartWithTable(
        svg=bars_chart(title=caption, series=VERDICT_SERIES, bars=bars),
        caption=caption,
        headings=["Tenant", *(s.label for s in VERDICT_SERIES), "Missing"],
        rows=[
            TableRow(
                label=overview.tenant.name,
                href=reverse("tenants:tenant-detail", args=[overview.tenant.tenant_id]),
                cells=[count for _verdict, count in overview.counts.by_verdict],
            )
            for overview in synced
        ],
    )
    return {"charts": [chart] if synced else []}
