"""E-mail pages: a user's subscriptions, the one-click unsubscribe link, and the staff's
outbox of the e-mails `make run` keeps instead of sending."""

from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from digests.models import DigestDelivery, Subscription
from digests.outbox import (
    failed_decision_mails,
    failed_deliveries,
    outbox_enabled,
    outbox_message,
    outbox_messages,
)
from digests.services import subscription_for_token, subscription_set, subscription_unsubscribe
from portal.http import AuthenticatedHttpRequest
from tenants.access import tenant_for, visible_tenants

# An e-mail's HTML is shown as the mail client would: no scripts, no requests anywhere
# (its links still open), no access to the portal's page around it.
EMAIL_HTML_CSP = (
    "sandbox allow-popups; default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "frame-ancestors 'self'"
)


class SubscriptionForm(forms.Form):
    frequency = forms.ChoiceField(choices=Subscription.Frequency.choices)
    all_quiet = forms.BooleanField(required=False)


@login_required
@require_safe
def subscriptions(request: AuthenticatedHttpRequest) -> HttpResponse:
    tenants = list(visible_tenants(request.user))
    chosen = {
        subscription.tenant_id: subscription
        for subscription in Subscription.objects.filter(user=request.user, tenant__in=tenants)
    }
    rows = [(tenant, chosen.get(tenant.pk)) for tenant in tenants]
    return render(
        request,
        "digests/subscriptions.html",
        {"rows": rows, "frequencies": Subscription.Frequency.choices},
    )


@login_required
@require_POST
def subscription_save(request: AuthenticatedHttpRequest, tenant_id: UUID) -> HttpResponse:
    # Anyone who sees the tenant may choose their own e-mails about it; readers too.
    tenant, _role = tenant_for(request.user, tenant_id)
    form = SubscriptionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose how often to get e-mails.")
        return redirect("digests:subscriptions")
    subscription = subscription_set(user=request.user, tenant=tenant, **form.cleaned_data)
    messages.success(
        request, f"E-mails about {tenant.name}: {subscription.get_frequency_display().lower()}."
    )
    return redirect("digests:subscriptions")


# The link comes from an e-mail and must work signed out, in any browser, and as the
# one-click POST (RFC 8058) that mail clients send without cookies or a CSRF token. Its
# signature is the credential: CSRF protects a session's authority, and this view uses
# none (it changes only the subscription the signed link names, and only to "off").
@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    subscription = subscription_for_token(token)
    if subscription is None:
        return render(request, "digests/unsubscribe_invalid.html", status=400)
    done = request.method == "POST"
    if done:
        subscription_unsubscribe(subscription=subscription)
    return render(request, "digests/unsubscribe.html", {"subscription": subscription, "done": done})


@staff_member_required
@require_safe
def outbox(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "digests/outbox.html",
        {
            "enabled": outbox_enabled(),
            "outbox_messages": outbox_messages(),
            "failed": failed_deliveries(),
            "failed_decisions": failed_decision_mails(),
            "max_attempts": DigestDelivery.MAX_ATTEMPTS,
        },
    )


@staff_member_required
@require_safe
def outbox_detail(request: HttpRequest, message: str) -> HttpResponse:
    found = outbox_message(message)
    if found is None:
        raise Http404("No such message in the outbox")
    return render(request, "digests/outbox_message.html", {"outbox_message": found})


@staff_member_required
@require_safe
@xframe_options_sameorigin
def outbox_html(request: HttpRequest, message: str) -> HttpResponse:
    """The HTML part alone, for the sandboxed frame on the message's page."""
    found = outbox_message(message)
    html = found.html if found else None
    if html is None:
        raise Http404("No HTML part")
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = EMAIL_HTML_CSP
    return response
