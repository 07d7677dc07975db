from django.contrib import admin
from django.db import models
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from permissions.models import (
    Application,
    CatalogChange,
    CatalogImport,
    Feature,
    Permission,
    PermissionApiCall,
    Requirement,
    Resource,
)


@admin.register(Resource)
class ResourceAdmin(admin.ModelAdmin):
    list_display = ("display_name", "app_id", "permission_count")
    search_fields = ("display_name", "app_id")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Resource]:
        return super().get_queryset(request).annotate(permission_count=Count("permissions"))

    @admin.display(description="Permissions", ordering="permission_count")
    def permission_count(self, resource: Resource) -> int:
        return resource.permission_count  # type: ignore[attr-defined]


class PermissionApiCallInline(admin.TabularInline):
    """Read-only: the API-call map comes from Microsoft's reference, not from people."""

    model = PermissionApiCall
    fields = ("method", "path", "scheme", "least_privileged")
    extra = 0

    def has_add_permission(self, request: HttpRequest, obj: Permission | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Permission | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Permission | None = None) -> bool:
        return False


@admin.register(Permission)
class PermissionAdmin(admin.ModelAdmin):
    list_display = (
        "value",
        "kind",
        "resource",
        "admin_consent_required",
        "tier",
        "privilege_level",
        "source",
        "enabled",
        "removed_at",
    )
    list_filter = (
        "kind",
        "tier",
        "admin_consent_required",
        "privilege_level",
        "source",
        "enabled",
        ("removed_at", admin.EmptyFieldListFilter),
        "resource",
    )
    search_fields = ("value", "display_name", "description", "graph_id")
    list_select_related = ("resource",)
    readonly_fields = ("updated_at",)
    inlines = (PermissionApiCallInline,)


@admin.register(PermissionApiCall)
class PermissionApiCallAdmin(admin.ModelAdmin):
    list_display = ("method", "path", "permission", "scheme", "least_privileged")
    list_filter = ("scheme", "method", "least_privileged")
    search_fields = ("path", "permission__value")
    list_select_related = ("permission",)
    raw_id_fields = ("permission",)


class ReadOnlyAdmin(admin.ModelAdmin):
    """History written by imports only: nobody adds, edits or deletes it."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False


@admin.register(CatalogImport)
class CatalogImportAdmin(ReadOnlyAdmin):
    list_display = (
        "started_at",
        "source",
        "trigger",
        "status",
        "permissions_added",
        "permissions_changed",
        "permissions_removed",
        "error",
    )
    list_filter = ("status", "source", "trigger")
    search_fields = ("error",)
    date_hierarchy = "started_at"


@admin.register(CatalogChange)
class CatalogChangeAdmin(ReadOnlyAdmin):
    """The catalog's history, written by imports only: nobody adds, edits or deletes it."""

    list_display = ("at", "action", "value", "kind", "resource_app_id", "source", "catalog_import")
    list_filter = ("action", "source", "kind")
    list_select_related = ("catalog_import",)
    search_fields = ("value", "resource_app_id")
    date_hierarchy = "at"


class FeatureInline(admin.TabularInline):
    model = Feature
    fields = ("position", "key", "name", "default_enabled")
    extra = 0
    show_change_link = True


@admin.register(Application)
class ApplicationAdmin(admin.ModelAdmin):
    list_display = ("name", "publisher", "app_id", "feature_count", "manifest_imported_at")
    list_filter = (("manifest_imported_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "publisher", "app_id")
    inlines = (FeatureInline,)
    # Vendors' documentation is on https; also what Django 6 will assume.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Application]:
        return super().get_queryset(request).annotate(feature_count=Count("features"))

    @admin.display(description="Features", ordering="feature_count")
    def feature_count(self, application: Application) -> int:
        return application.feature_count  # type: ignore[attr-defined]


class RequirementInline(admin.StackedInline):
    model = Requirement
    fields = (("permission_value", "kind", "resource_app_id"), "reason", "api_calls", "position")
    extra = 0


@admin.register(Feature)
class FeatureAdmin(admin.ModelAdmin):
    list_display = ("name", "key", "application", "default_enabled", "position")
    list_filter = ("default_enabled", "application")
    search_fields = ("name", "key", "application__name")
    list_select_related = ("application",)
    inlines = (RequirementInline,)


@admin.register(Requirement)
class RequirementAdmin(admin.ModelAdmin):
    list_display = ("permission_value", "kind", "feature", "resource_app_id")
    list_filter = ("kind",)
    search_fields = ("permission_value", "reason", "feature__name", "feature__application__name")
    list_select_related = ("feature__application",)
    raw_id_fields = ("feature",)
