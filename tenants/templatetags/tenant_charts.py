"""The tenant pages' pictures, for templates: ``{% load tenant_charts %}`` then
``{% grant_history_chart tenant %}`` (a tenant's grants at each sync, by verdict and by
tier) and ``{% verdict_breakdown_chart overviews %}`` (the dashboard's tenants by verdict).
Each renders its SVG (portal.charts) beside a table of the same numbers."""

from collections.abc import Sequence
from typing import Any

from django import template

from permissions.models import Tier
from portal.charts import Bar, Series, bars_chart, columns_chart
from tenants.history import HISTORY_RUNS, grant_history
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


@register.inclusion_tag("tenants/charts.html#grant-history")
def grant_history_chart(tenant: Tenant, runs: int = HISTORY_RUNS) -> dict[str, Any]:
    points = grant_history(tenant, runs=runs)
    by_verdict = [Bar(f"{p.at:%Y-%m-%d %H:%M}", p.by_verdict) for p in points]
    by_tier = [Bar(f"{p.at:%Y-%m-%d %H:%M}", p.by_tier) for p in points]
    return {
        "tenant": tenant,
        # The tables newest first, as the sync history lists runs; a count per series.
        "rows": [
            {
                "point": point,
                "verdicts": [point.by_verdict[series.key] for series in VERDICT_SERIES],
                "tiers": [point.by_tier[series.key] for series in TIER_SERIES],
            }
            for point in reversed(points)
        ],
        "verdicts": VERDICT_SERIES,
        "tiers": TIER_SERIES,
        "verdict_chart": columns_chart(
            title=f"Grants of {tenant.name} at each sync, by verdict",
            series=VERDICT_SERIES,
            bars=by_verdict,
        ),
        "tier_chart": columns_chart(
            title=f"Grants of {tenant.name} at each sync, by tier",
            series=TIER_SERIES,
            bars=by_tier,
        ),
    }


@register.inclusion_tag("tenants/charts.html#verdict-breakdown")
def verdict_breakdown_chart(overviews: Sequence[TenantOverview]) -> dict[str, Any]:
    synced = [overview for overview in overviews if overview.tenant.last_good_sync_id]
    bars = [Bar(overview.tenant.name, dict(overview.counts.by_verdict)) for overview in synced]
    return {
        "overviews": synced,
        "chart": bars_chart(
            title="Grants by verdict in each tenant", series=VERDICT_SERIES, bars=bars
        ),
    }
