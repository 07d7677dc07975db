"""The portal's pages about applications and the catalog.

Everything needs a signed-in user, the catalog too: it is public knowledge, but the
permission page shows which of the user's tenants grant each permission, and one rule
for every page is easier to keep than a list of exceptions.
"""

import uuid

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.text import slugify
from django.views.decorators.http import require_safe

from permissions import selectors
from permissions.manifests import manifest_export
from permissions.models import (
    Application,
    CatalogChange,
    CatalogImport,
    Permission,
    PermissionKind,
    Resource,
    Tier,
)
from portal.htmx import render_page_or_fragment
from portal.http import AuthenticatedHttpRequest
from tenants.access import visible_tenants
from tenants.selectors import HOLDERS_SHOWN_PER_TENANT, permission_holders

APPLICATIONS_PER_PAGE = 25
PERMISSIONS_PER_PAGE = 50
API_CALLS_PER_PAGE = 100
CHANGES_PER_PAGE = 50
IMPORTS_SHOWN = 10


@login_required
@require_safe
def application_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    page = Paginator(selectors.application_list(), APPLICATIONS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(request, "permissions/application_list.html", {"page_obj": page})


@login_required
@require_safe
def application_detail(request: AuthenticatedHttpRequest, app_id: uuid.UUID) -> HttpResponse:
    application = get_object_or_404(Application, app_id=app_id)
    manifest = selectors.application_manifest(application=application)
    return render(
        request,
        "permissions/application_detail.html",
        {"application": application, "manifest": manifest},
    )


@login_required
@require_safe
def application_manifest_export(
    request: AuthenticatedHttpRequest, app_id: uuid.UUID
) -> HttpResponse:
    application = get_object_or_404(Application, app_id=app_id)
    response = HttpResponse(
        manifest_export(application=application), content_type="application/yaml; charset=utf-8"
    )
    filename = f"{slugify(application.name) or application.app_id}.yaml"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class CatalogFilterForm(forms.Form):
    """The catalog's search box and filters; every field may be left empty."""

    q = forms.CharField(required=False, label="Search")
    resource = forms.ModelChoiceField(
        Resource.objects.order_by("display_name"), required=False, empty_label="Any resource"
    )
    kind = forms.ChoiceField(
        required=False, label="Type", choices=[("", "Any type"), *PermissionKind.choices]
    )
    tier = forms.ChoiceField(
        required=False,
        choices=[
            ("", "Any tier"),
            *(c for c in Tier.choices if c[0] != Tier.UNCLASSIFIED),
            (selectors.TIER_UNCLASSIFIED, "Unclassified"),
        ],
    )
    consent = forms.ChoiceField(
        required=False,
        label="Admin consent",
        choices=[
            ("", "Any consent"),
            (selectors.CONSENT_REQUIRED, "Admin consent required"),
            (selectors.CONSENT_NOT_REQUIRED, "Admin consent not required"),
            (selectors.CONSENT_UNKNOWN, "Admin consent unknown"),
        ],
    )


@login_required
@require_safe
def catalog(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = CatalogFilterForm(request.GET)
    # A stale or hand-edited filter is dropped (cleaned_data then holds only the valid
    # fields) rather than turning the whole search into an error page.
    form.is_valid()
    permissions = selectors.permission_search(**form.cleaned_data)
    page = Paginator(permissions, PERMISSIONS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page_obj": page,
        "catalog_is_empty": not page.paginator.count and not Permission.objects.exists(),
        "last_import": CatalogImport.objects.order_by("-started_at", "-pk").first(),
    }
    return render_page_or_fragment(request, "permissions/catalog.html", "catalog-results", context)


class CatalogChangeFilterForm(forms.Form):
    change = forms.ChoiceField(
        required=False,
        label="Change",
        choices=[("", "Any change"), *CatalogChange.Category.choices],
    )
    # Set by the links of the imports table, not shown as a control.
    run = forms.ModelChoiceField(
        CatalogImport.objects.all(), required=False, widget=forms.HiddenInput
    )


@login_required
@require_safe
def catalog_changes(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = CatalogChangeFilterForm(request.GET)
    form.is_valid()  # an unknown filter value is dropped, as on the catalog page
    changes = selectors.catalog_change_list(
        category=form.cleaned_data.get("change", ""),
        catalog_import=form.cleaned_data.get("run"),
    )
    page = Paginator(changes, CHANGES_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page_obj": page,
        "run": form.cleaned_data.get("run"),
        "imports": CatalogImport.objects.order_by("-started_at", "-pk")[:IMPORTS_SHOWN],
    }
    return render_page_or_fragment(
        request, "permissions/catalog_changes.html", "change-results", context
    )


@login_required
@require_safe
def permission_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    permission = get_object_or_404(Permission.objects.select_related("resource"), pk=pk)
    api_calls = Paginator(
        selectors.permission_api_calls(permission=permission), API_CALLS_PER_PAGE
    ).get_page(request.GET.get("page"))
    context = {
        "permission": permission,
        "requirements": selectors.permission_requirements(permission=permission),
        "holders": permission_holders(permission=permission, tenants=visible_tenants(request.user)),
        "holders_shown": HOLDERS_SHOWN_PER_TENANT,
        "page_obj": api_calls,
    }
    return render_page_or_fragment(
        request, "permissions/permission_detail.html", "api-calls", context
    )
