"""The portal's one rule for htmx: a page when a browser asks, a fragment when htmx swaps one in.

A view whose URL answers both ways says so with ``Vary: HX-Request``, so that no cache hands a
fragment to a browser that asked for the page (or the other way round).
"""

from collections.abc import Mapping
from typing import Any

from django.http import HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.vary import vary_on_headers

from portal.http import HtmxHttpRequest

HX_REQUEST = "HX-Request"

# For a view that answers htmx and browsers differently by other means than
# render_page_or_fragment (a fragment, or a redirect after a POST): every response it gives
# carries the Vary header.
vary_on_htmx = vary_on_headers(HX_REQUEST)


def wants_fragment(request: HtmxHttpRequest) -> bool:
    """Whether htmx asked for this URL to swap part of the page in place.

    A boosted link or form wants the whole page (htmx swaps the body), and so does htmx
    restoring history it has no copy of: it asks for the URL again and shows the answer
    as the page.
    """
    htmx = request.htmx
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def render_page_or_fragment(
    request: HtmxHttpRequest,
    template: str,
    fragment: str,
    context: Mapping[str, Any],
) -> HttpResponse:
    """``template``, or only its partial ``fragment`` when :func:`wants_fragment`."""
    name = f"{template}#{fragment}" if wants_fragment(request) else template
    response = render(request, name, context)
    # The same URL answers with a page or a fragment: caches must keep them apart.
    patch_vary_headers(response, (HX_REQUEST,))
    return response
