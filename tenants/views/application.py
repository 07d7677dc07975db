"""One application in a tenant: its grants with their verdicts, justifications and revoke
requests, and the feature switches that decide which grants are needed (previewed before
saving). A review link from an e-mail (``?review=<justification>&do=keep|revoke``) shows the
justification with its two choices at the top; choosing posts, as every change does."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from permissions.models import Feature
from portal.htmx import vary_on_htmx, wants_fragment
from portal.http import AuthenticatedHttpRequest
from tenants import selectors
from tenants.access import Role, service_principal_for
from tenants.facts import page_facts
from tenants.forms import FeatureSwitchForm
from tenants.justifications import (
    default_expiry,
    justification_for,
    latest_expiry,
    may_extend,
    slot_of,
    tenant_users,
)
from tenants.models import Justification, RevokeRequest, ServicePrincipal, Tenant
from tenants.provenance import consent_history, grant_origins
from tenants.revokes import portal_can_write
from tenants.risk import application_risk
from tenants.services import features_set
from tenants.signins import sign_in_facts
from tenants.views.grants import missing_rows
from tenants.views.revokes import revoke_rows


@login_required
@require_safe
def application_detail(
    request: AuthenticatedHttpRequest, tenant_id: UUID, app_id: UUID
) -> HttpResponse:
    sp, role = service_principal_for(request.user, tenant_id, app_id)
    detail = selectors.application_in_tenant(tenant=sp.tenant, service_principal=sp)
    checked = {state.feature.key for state in detail.features if state.enabled}
    review = _review(request, sp, detail)
    return _application_page(
        request, role, sp, detail, checked=checked, preview=None, review=review
    )


@dataclass(frozen=True)
class Review:
    """A justification its reviewer came to decide on, from the review e-mail's link."""

    justification: Justification
    # The grant it keeps; None once the application no longer holds it.
    grant: selectors.GrantDetail | None
    # "keep" or "revoke": the link followed, whose button the panel stresses.
    choice: str
    may_keep: bool
    expired: bool


def _review(
    request: AuthenticatedHttpRequest, sp: ServicePrincipal, detail: selectors.ApplicationInTenant
) -> Review | None:
    """The justification a review link names, looked for only in this application of this
    tenant; a link that names anything else shows the page without a panel."""
    try:
        pk = int(request.GET.get("review", ""))
    except ValueError:
        return None
    justification = justification_for(tenant=sp.tenant, app_id=sp.app_id, pk=pk)
    if justification is None:
        return None
    slot = slot_of(justification)
    return Review(
        justification=justification,
        grant=next((grant for grant in detail.grants if grant.slot == slot), None),
        choice="revoke" if request.GET.get("do") == "revoke" else "keep",
        may_keep=may_extend(request.user, justification),
        expired=not justification.in_force(timezone.localdate()),
    )


@login_required
@require_safe
@vary_on_htmx
def features_preview(
    request: AuthenticatedHttpRequest, tenant_id: UUID, app_id: UUID
) -> HttpResponse:
    """What the proposed switches would change, before anyone saves them. It changes
    nothing, so readers may ask too. htmx gets the list alone, a browser the page."""
    sp, role = service_principal_for(request.user, tenant_id, app_id)
    form = FeatureSwitchForm(request.GET, features=_features(sp))
    if not form.is_valid():
        return HttpResponseBadRequest("Unknown feature")
    proposed = set(form.cleaned_data["enabled"])
    if wants_fragment(request):
        preview = selectors.features_preview(
            tenant=sp.tenant, service_principal=sp, enabled=proposed
        )
        context = {"tenant": sp.tenant, "service_principal": sp, "preview": preview}
        return render(request, "tenants/application_detail.html#feature-preview", context)
    return _preview_page(request, role, sp, proposed)


@login_required
@require_POST
def features_save(request: AuthenticatedHttpRequest, tenant_id: UUID, app_id: UUID) -> HttpResponse:
    """Save the switches; or, from a browser without JavaScript, preview them ("Preview"
    submits the admin's form here, so its CSRF token never lands in a URL)."""
    sp, role = service_principal_for(request.user, tenant_id, app_id, write=True)
    features = _features(sp)
    if not features:
        return HttpResponseBadRequest("This application has no features to switch")
    form = FeatureSwitchForm(request.POST, features=features)
    if not form.is_valid():
        return HttpResponseBadRequest("Unknown feature")
    enable = form.cleaned_data["enabled"]
    if request.POST.get("action") == "preview":
        return _preview_page(request, role, sp, set(enable))
    features_set(
        tenant=sp.tenant,
        application=features[0].application,
        enable=enable,
        disable=[feature.key for feature in features if feature.key not in enable],
        actor=request.user,
    )
    messages.success(request, "Feature switches saved; the verdicts below follow them.")
    return redirect("tenants:application", tenant_id=sp.tenant.tenant_id, app_id=sp.app_id)


def _preview_page(
    request: AuthenticatedHttpRequest, role: Role, sp: ServicePrincipal, proposed: set[str]
) -> HttpResponse:
    """The application page with the proposed switches ticked and what they would change."""
    preview = selectors.features_preview(tenant=sp.tenant, service_principal=sp, enabled=proposed)
    detail = selectors.application_in_tenant(tenant=sp.tenant, service_principal=sp)
    return _application_page(request, role, sp, detail, checked=proposed, preview=preview)


def _application_page(
    request: AuthenticatedHttpRequest,
    role: Role,
    sp: ServicePrincipal,
    detail: selectors.ApplicationInTenant,
    *,
    checked: set[str],
    preview: selectors.FeaturesPreview | None,
    review: Review | None = None,
) -> HttpResponse:
    context = application_context(request, role, sp, detail)
    context.update(checked=checked, preview=preview, review=review)
    return render(request, "tenants/application_detail.html", context)


def application_context(
    request: AuthenticatedHttpRequest,
    role: Role,
    sp: ServicePrincipal,
    detail: selectors.ApplicationInTenant,
) -> dict[str, Any]:
    """What the page's grants section needs (the justification views render it alone)."""
    tenant = sp.tenant
    latest = selectors.latest_revoke_requests(tenant=tenant, client=sp)
    shown = [latest.pop(grant.slot, None) for grant in detail.grants]
    can_write = portal_can_write(tenant)
    missing = missing_rows(tenant=tenant, sp=sp, detail=detail, latest=latest, can_write=can_write)
    # What is left names grants the client no longer holds: revoked ones, mostly, which
    # keep their Undo here (a grant of what is no longer missing has nothing to show).
    gone = sorted(
        (revoke for revoke in latest.values() if revoke.action != RevokeRequest.Action.GRANT),
        key=lambda revoke: revoke.value.lower(),
    )
    rows = revoke_rows([revoke for revoke in shown if revoke] + gone)
    by_pk = {row.revoke.pk: row for row in rows}
    facts = page_facts(tenant=tenant, service_principal=sp)
    origins = grant_origins(
        tenant=tenant, service_principal=sp, slots=[grant.slot for grant in detail.grants]
    )
    return {
        "tenant": tenant,
        "can_change": role == Role.ADMIN,
        "portal_can_write": can_write,
        "missing_rows": missing,
        "service_principal": sp,
        "detail": detail,
        # Each grant with its latest revoke request and the event that gave it.
        "grant_rows": [
            (grant, by_pk[revoke.pk] if revoke else None, origin)
            for grant, revoke, origin in zip(detail.grants, shown, origins, strict=True)
        ],
        "consent_history": consent_history(tenant=tenant, service_principal=sp),
        "revoked_rows": [by_pk[revoke.pk] for revoke in gone],
        "risk": application_risk(
            tenant=tenant,
            service_principal=sp,
            detail=detail,
            credentials=[row.credential for row in facts.credentials],
        ),
        "facts": facts,
        "sign_in": sign_in_facts(tenant=tenant, sp=sp),
        "inactive_days": settings.INACTIVE_DAYS,
        "justify": _justify_context(tenant, role, detail),
        # A justification expiring by then may be kept another term from the page (earlier,
        # another term would change nothing but its date).
        "review_horizon": timezone.localdate() + timedelta(days=settings.JUSTIFICATION_REVIEW_DAYS),
    }


def _justify_context(
    tenant: Tenant, role: Role, detail: selectors.ApplicationInTenant
) -> dict[str, Any] | None:
    """The "Keep, because ..." forms' choices, for admins: the expiry's default and bounds,
    the reviewers to pick from, and the grants to keep several of at once."""
    if role != Role.ADMIN:
        return None
    today = timezone.localdate()
    return {
        "today": today,
        "default_expiry": default_expiry(today),
        "latest_expiry": latest_expiry(today),
        "reviewers": tenant_users(tenant),
        # Revoke candidates nobody justified yet (an expired justification counts as none).
        "candidates": [grant for grant in detail.grants if grant.verdict != "needed"],
    }


def _features(sp: ServicePrincipal) -> list[Feature]:
    features = Feature.objects.filter(application__app_id=sp.app_id).select_related("application")
    return list(features.order_by("position", "pk"))
