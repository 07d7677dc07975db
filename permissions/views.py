"""The portal's pages about applications and the catalog.

Every page needs a signed-in user with a portal role (:func:`portal_role_required`): the
catalog holds what tenants' Graph told the portal, and the permission page shows which of
the user's tenants grant each permission. What Microsoft publishes everyone with a role
sees; a permission only a tenant's Graph described (a custom API's) only the users of the
tenants where it was seen (``permissions.selectors.visible_permissions``); others get
404, as for a permission that does not exist.
"""

import functools
import io
import uuid
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import InMemoryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.text import slugify
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST, require_safe

from permissions import selectors
from permissions.manifests import ManifestError, manifest_export
from permissions.models import (
    Application,
    CatalogChange,
    CatalogImport,
    Permission,
    PermissionKind,
    Resource,
    Tier,
)
from permissions.services import (
    MANIFEST_UPLOAD_MAX_BYTES,
    manifest_upload,
    manifest_upload_summary,
    upload_filename,
)
from portal.htmx import render_page_or_fragment
from portal.http import AuthenticatedHttpRequest
from portal.models import User
from tenants.access import has_portal_role, is_operator, visible_tenants
from tenants.selectors import HOLDERS_SHOWN_PER_TENANT, permission_holders

APPLICATIONS_PER_PAGE = 25
PERMISSIONS_PER_PAGE = 50
API_CALLS_PER_PAGE = 100
CHANGES_PER_PAGE = 50
IMPORTS_SHOWN = 10


# The warnings of one upload shown on the page; the rest are counted.
UPLOAD_WARNINGS_SHOWN = 10


def may_upload_manifests(user: User) -> bool:
    """Operators and superusers: a manifest explains an application in every tenant."""
    return user.is_superuser or is_operator(user)


class ManifestUploadForm(forms.Form):
    manifest = forms.FileField(
        label="Manifest (YAML)",
        # An empty file gets the parser's own message, as import_manifest gives it.
        allow_empty_file=True,
        error_messages={"required": "Choose a manifest file (YAML) to upload."},
    )


class ManifestUploadHandler(FileUploadHandler):
    """Keeps the uploaded manifest in memory, and only up to one byte past the limit: that
    much says it is too big, and a large upload is stored nowhere. Other file fields are
    dropped."""

    def __init__(self, request: HttpRequest, *, limit: int = MANIFEST_UPLOAD_MAX_BYTES) -> None:
        super().__init__(request)
        self.limit = limit
        self.buffer = io.BytesIO()
        self.wanted = False

    def new_file(self, field_name: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, *args, **kwargs)
        self.wanted = field_name == "manifest"
        self.buffer = io.BytesIO()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        room = self.limit + 1 - self.buffer.tell()
        if self.wanted and room > 0:
            self.buffer.write(raw_data[:room])
        # None: no later handler gets the chunk, and the rest of a big file is dropped.

    def file_complete(self, file_size: int) -> InMemoryUploadedFile | None:
        if not self.wanted:
            return None
        self.buffer.seek(0)
        return InMemoryUploadedFile(
            file=self.buffer,
            field_name=self.field_name,
            name=self.file_name,
            content_type=self.content_type,
            size=file_size,
            charset=self.charset,
            content_type_extra=self.content_type_extra,
        )


def portal_role_required(
    view: Callable[..., HttpResponse],
) -> Callable[..., HttpResponse]:
    """The view, for signed-in users with a portal role; 403 for anyone else."""

    @login_required
    @functools.wraps(view)
    def with_role(request: AuthenticatedHttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not has_portal_role(request.user):
            raise PermissionDenied("The catalog and the applications need a portal role")
        return view(request, *args, **kwargs)

    return with_role


def _visible(request: AuthenticatedHttpRequest) -> QuerySet[Permission]:
    return selectors.visible_permissions(tenants=visible_tenants(request.user))


@portal_role_required
@require_safe
def application_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _application_list_page(request, ManifestUploadForm())


def _application_list_page(
    request: AuthenticatedHttpRequest, form: ManifestUploadForm, *, status: int = 200
) -> HttpResponse:
    page = Paginator(selectors.application_list(), APPLICATIONS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {
        "page_obj": page,
        "upload_form": form if may_upload_manifests(request.user) else None,
        "upload_max_kb": MANIFEST_UPLOAD_MAX_BYTES // 1024,
    }
    return render(request, "permissions/application_list.html", context, status=status)


# CSRF is checked by the inner view: the middleware would read the body before the upload
# handler below is in place. Who may upload is checked first, so nobody else's upload is
# even read.
@csrf_exempt
@login_required
@require_POST
def manifest_upload_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    if not may_upload_manifests(request.user):
        raise PermissionDenied("Only operators can upload manifests")
    request.upload_handlers = [ManifestUploadHandler(request)]
    return _manifest_upload(request)


@csrf_protect
def _manifest_upload(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = ManifestUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _application_list_page(request, form, status=400)
    upload = form.cleaned_data["manifest"]
    filename = upload_filename(upload.name)
    try:
        result = manifest_upload(data=upload.read(), filename=filename, actor=request.user)
    except ManifestError as exc:
        form.add_error("manifest", str(exc))
        return _application_list_page(request, form, status=400)
    messages.success(request, manifest_upload_summary(result, filename))
    for warning in result.warnings[:UPLOAD_WARNINGS_SHOWN]:
        messages.warning(request, f"{filename}: warning: {warning}")
    if len(result.warnings) > UPLOAD_WARNINGS_SHOWN:
        hidden = len(result.warnings) - UPLOAD_WARNINGS_SHOWN
        messages.warning(request, f"{filename}: and {hidden} more warnings of the same kind.")
    return redirect("permissions:application-detail", app_id=result.app_id)


@portal_role_required
@require_safe
def application_detail(request: AuthenticatedHttpRequest, app_id: uuid.UUID) -> HttpResponse:
    application = get_object_or_404(Application, app_id=app_id)
    manifest = selectors.application_manifest(application=application)
    return render(
        request,
        "permissions/application_detail.html",
        {"application": application, "manifest": manifest},
    )


@portal_role_required
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
        Resource.objects.none(), required=False, empty_label="Any resource"
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

    def __init__(self, *args: Any, visible: QuerySet[Permission], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only the resources whose permissions the user sees: a custom API's name too.
        field = self.fields["resource"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = selectors.visible_resources(permissions=visible).order_by("display_name")


@portal_role_required
@require_safe
def catalog(request: AuthenticatedHttpRequest) -> HttpResponse:
    visible = _visible(request)
    form = CatalogFilterForm(request.GET, visible=visible)
    # A stale or hand-edited filter is dropped (cleaned_data then holds only the valid
    # fields) rather than turning the whole search into an error page.
    form.is_valid()
    permissions = selectors.permission_search(within=visible, **form.cleaned_data)
    page = Paginator(permissions, PERMISSIONS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page_obj": page,
        "catalog_is_empty": not page.paginator.count and not visible.exists(),
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


@portal_role_required
@require_safe
def catalog_changes(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = CatalogChangeFilterForm(request.GET)
    form.is_valid()  # an unknown filter value is dropped, as on the catalog page
    changes = selectors.catalog_change_list(
        category=form.cleaned_data.get("change", ""),
        catalog_import=form.cleaned_data.get("run"),
        within=_visible(request),
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


@portal_role_required
@require_safe
def permission_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    permission = get_object_or_404(_visible(request).select_related("resource"), pk=pk)
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
