"""Request types for views (as healthchecks' ``hc/accounts/http.py``)."""

from django.http import HttpRequest

from portal.models import User


class AuthenticatedHttpRequest(HttpRequest):
    """The request of a view behind ``login_required``: its user is signed in."""

    user: User
