from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from portal.models import User
from portal.views import signed_in as summary


def signed_in(request: HttpRequest) -> dict[str, object]:
    """``signed_in``: the signed-in user's name, tenant, role and access notice.

    Lazy, so that only pages that show it pay for the tenant lookup.
    """
    user = request.user
    if not isinstance(user, User):
        return {"signed_in": None}
    return {"signed_in": SimpleLazyObject(lambda: summary(user))}
