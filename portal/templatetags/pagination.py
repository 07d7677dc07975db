from collections.abc import Iterator

from django import template
from django.core.paginator import Page

register = template.Library()


@register.filter
def elided_page_range(page: Page) -> Iterator[int | str]:
    """Page numbers around the current one and at both ends, with Paginator.ELLIPSIS
    between: a catalog of a few thousand permissions still fits one line of links."""
    return page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1)
