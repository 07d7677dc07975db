"""The request types the portal's views are written against (as healthchecks' hc/accounts/http.py).

``HttpRequest.user`` is a ``User`` or an ``AnonymousUser``; behind ``@login_required`` it is
always the former, and a view annotated with :class:`AuthenticatedHttpRequest` says so
instead of narrowing or casting the user in every function it calls.
"""

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

from portal.models import User


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails  # set by django_htmx's middleware, on every request


class AuthenticatedHttpRequest(HtmxHttpRequest):
    """A request of a signed-in user: the type of every view behind ``@login_required``."""

    user: User
