from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from portal.models import User
from portal.views import signed_in as summary
from tenants.access import decides_revokes


def signed_in(request: HttpRequest) -> dict[str, object]:
    """``signed_in``: the signed-in user's name, tenant, role and access notice;
    ``decides_revokes``: whether the approval queue is for them.

    Lazy, so that only pages that show it pay for the tenant lookup.
    """
    user = request.user
    if not isinstance(user, User):
        return {"signed_in": None, "decides_revokes": False}
    return {
        "signed_in": SimpleLazyObject(lambda: summary(user)),
        # The nav's "Approvals": for operators and admins.
        "decides_revokes": SimpleLazyObject(lambda: decides_revokes(user)),
    }
