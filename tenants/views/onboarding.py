"""Connecting a tenant by admin consent, and a tenant's health page.

The connect pages are not tenant-scoped: who may start is decided by
:func:`tenants.onboarding.may_connect` (checked again at the callback), and the callback
acts only on a signed, single-use state that this portal gave the same user, and only
once the portal's own read of the tenant proves the consent. The health page goes through ``tenants.access``
like every tenant page: readers may see it.
"""

from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_safe

from portal.http import AuthenticatedHttpRequest
from tenants.access import PORTAL_ADMIN, Role, role_in, tenant_for
from tenants.onboarding import (
    ConsentError,
    ConsentNotAllowed,
    ConsentRefused,
    admin_consent_complete,
    admin_consent_state_ok,
    admin_consent_url,
    connect_tenant_hint,
    connects_any_tenant,
    may_connect,
    tenant_health,
    tenant_hint_clean,
)


@login_required
@require_safe
def connect(request: AuthenticatedHttpRequest) -> HttpResponse:
    user = request.user
    context = {
        "may_connect": may_connect(user),
        "chooses_tenant": connects_any_tenant(user),
    }
    return render(request, "tenants/connect.html", context)


@login_required
@require_safe
def connect_start(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Sends the user to Entra's admin consent page for the portal's own app."""
    if not may_connect(request.user):
        messages.error(
            request, "Your tenant is connected already; only its admins connect it again."
        )
        return redirect("tenants:connect")
    asked = request.GET.get("tenant", "").strip()
    if asked and tenant_hint_clean(asked) is None:
        messages.error(request, f"{asked!r} is not a tenant id or domain name.")
        return redirect("tenants:connect")
    url = admin_consent_url(
        tenant_hint=connect_tenant_hint(request.user, asked),
        redirect_uri=request.build_absolute_uri(reverse("tenants:connect-callback")),
        user=request.user,
    )
    return redirect(url)


@login_required
@require_safe
def connect_callback(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Where Entra sends the administrator back, with consent or an error."""
    params = request.GET.dict()
    state_ok = admin_consent_state_ok(
        state=params.get("state", ""), user=request.user, tenant_id=params.get("tenant")
    )
    try:
        tenant = admin_consent_complete(params=params, state_ok=state_ok, actor=request.user)
    except ConsentRefused as refused:
        return render(request, "tenants/connect_failed.html", {"refused": refused})
    except ConsentNotAllowed as exc:
        return render(request, "tenants/connect_failed.html", {"message": str(exc)}, status=403)
    except ConsentError as exc:  # a bad, foreign or spent state, no tenant, no proof
        return render(request, "tenants/connect_failed.html", {"message": str(exc)}, status=400)
    if role_in(request.user, tenant) is None:
        # Connected, but this user holds no portal role there yet: the access page says
        # how to get one.
        messages.success(
            request, f"{tenant.name} is connected in read mode; its first sync is queued."
        )
        return redirect("access")
    return redirect("tenants:connected", tenant_id=tenant.tenant_id)


@login_required
@require_safe
def connected(request: AuthenticatedHttpRequest, tenant_id: UUID) -> HttpResponse:
    """What comes after connecting a tenant: the first sync, the role the user holds and
    where it comes from, revoke mode, and roles for colleagues."""
    tenant, role = tenant_for(request.user, tenant_id)
    user = request.user
    context = {
        "tenant": tenant,
        "role": role,
        # The role comes from the user's Entra directory role, not the portal's app role.
        "by_directory_role": role == Role.ADMIN
        and PORTAL_ADMIN in user.portal_roles
        and PORTAL_ADMIN not in (user.entra_roles or []),
        "run": tenant.sync_runs.first(),
        "health": tenant_health(tenant),
    }
    return render(request, "tenants/connected.html", context)


@login_required
@require_safe
def health(request: AuthenticatedHttpRequest, tenant_id: UUID) -> HttpResponse:
    tenant, _ = tenant_for(request.user, tenant_id)
    context = {
        "tenant": tenant,
        "health": tenant_health(tenant),
        "may_connect": may_connect(request.user),
        "graph_url": settings.GRAPH_URL,
    }
    return render(request, "tenants/health.html", context)
