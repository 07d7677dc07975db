"""The dashboard's picture, for templates: ``{% load tenant_charts %}`` then
``{% verdict_breakdown_chart overviews %}``: the tenants' grants by verdict, drawn
(tenants.charts) beside the table of its numbers. A tenant's history is a page of its own
(tenants.views.history), which the tenant pages load when it scrolls into view."""

from collections.abc import Sequence
from typing import Any

from django import template

from tenants.charts import verdict_breakdown
from tenants.selectors import TenantOverview

register = template.Library()


@register.inclusion_tag("tenants/charts.html#verdict-breakdown")
def verdict_breakdown_chart(overviews: Sequence[TenantOverview]) -> dict[str, Any]:
    chart = verdict_breakdown(overviews)
    return {"charts": [chart] if chart else []}
