"""What a signed-in user may see, in words: the header's summary and the access notices."""

from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from portal.models import User
from tenants.access import PORTAL_ADMIN, PORTAL_READER, home_tenant, is_operator
from tenants.models import Tenant


class AccessNotice(StrEnum):
    NOT_ONBOARDED = "not-onboarded"
    NO_ROLE = "no-role"


@dataclass(frozen=True)
class SignedIn:
    """The header's view of a signed-in user."""

    name: str
    tenant: str
    role: str
    notice: AccessNotice | None


def access_notice(user: User | AnonymousUser) -> AccessNotice | None:
    """Why an Entra user sees no tenant yet, or None when they see one (or all)."""
    if not isinstance(user, User):
        return None
    return _notice(user, home_tenant(user))


def _notice(user: User, home: Tenant | None) -> AccessNotice | None:
    if user.is_superuser or not user.entra_tenant_id or is_operator(user):
        return None
    if home is None:
        return AccessNotice.NOT_ONBOARDED
    if not {PORTAL_ADMIN, PORTAL_READER} & user.portal_roles:
        return AccessNotice.NO_ROLE
    return None


def signed_in(user: User) -> SignedIn:
    home = home_tenant(user)
    roles = user.portal_roles
    labels = [
        label
        for label, held in (
            ("Superuser", user.is_superuser),
            ("Operator", is_operator(user)),
            ("Admin", PORTAL_ADMIN in roles),
            ("Reader", PORTAL_READER in roles),
        )
        if held
    ]
    if home is not None:
        tenant = home.name
    elif user.entra_tenant_id:
        tenant = "tenant not connected"
    else:
        tenant = ""
    return SignedIn(
        name=user.get_full_name() or user.email or user.username,
        tenant=tenant,
        role=", ".join(labels) or "no portal role",
        notice=_notice(user, home),
    )


@login_required
def access(request: HttpRequest) -> HttpResponse:
    """Where a user without access lands after signing in: what to do next."""
    if access_notice(request.user) is None:
        return redirect(settings.LOGIN_REDIRECT_URL)
    return render(request, "portal/access.html")
