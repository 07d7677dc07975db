from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from tenants.models import (
    AuditEvent,
    ConsentEvent,
    FeatureSwitch,
    Grant,
    Justification,
    RevokeRequest,
    ServicePrincipal,
    SyncRun,
    Tenant,
)


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "tenant_id",
        "default_domain",
        "status",
        "next_sync_at",
        "last_good_sync",
    )
    list_filter = ("status",)
    search_fields = ("name", "tenant_id", "default_domain")
    raw_id_fields = ("last_good_sync",)


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    """Runs are a record of what happened: readable, never edited by hand."""

    list_display = (
        "pk",
        "tenant",
        "status",
        "trigger",
        "queued_at",
        "finished_at",
        "graph_requests",
        "grants_added",
        "grants_removed",
    )
    list_filter = ("status", "trigger")
    search_fields = ("tenant__name", "tenant__tenant_id")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(ServicePrincipal)
class ServicePrincipalAdmin(admin.ModelAdmin):
    list_display = ("display_name", "app_id", "tenant", "publisher", "removed_at")
    list_filter = ("tenant",)
    search_fields = ("display_name", "app_id", "object_id")


@admin.register(Grant)
class GrantAdmin(admin.ModelAdmin):
    """Grant history mirrors Graph; changing it here would falsify the record."""

    list_display = (
        "value",
        "kind",
        "consent",
        "client",
        "tenant",
        "first_seen_run",
        "removed_in_run",
    )
    list_filter = ("kind", "consent", "tenant")
    search_fields = ("value", "client__display_name", "graph_object_id")
    list_select_related = ("client", "tenant", "first_seen_run", "removed_in_run")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(FeatureSwitch)
class FeatureSwitchAdmin(admin.ModelAdmin):
    list_display = ("feature", "tenant", "enabled", "changed_at")
    list_filter = ("enabled", "tenant")


class ReadOnlyAdmin(admin.ModelAdmin):
    """A record of what happened: readable in the admin site, never added, edited or removed."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(RevokeRequest)
class RevokeRequestAdmin(ReadOnlyAdmin):
    list_display = (
        "pk",
        "action",
        "value",
        "kind",
        "consent",
        "client",
        "tenant",
        "status",
        "requested_by",
        "decided_by",
        "created_at",
        "finished_at",
    )
    list_filter = ("status", "action", "kind", "tenant")
    search_fields = ("value", "client__display_name", "tenant__name")
    list_select_related = ("client", "tenant", "requested_by", "decided_by")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "action", "tenant", "actor_name", "target")
    list_filter = ("action", "tenant")
    search_fields = ("target", "actor_name")
    list_select_related = ("tenant",)


@admin.register(Justification)
class JustificationAdmin(ReadOnlyAdmin):
    """Justifications change through the portal's pages and the ``justify`` command, each
    change audited; here they are only read."""

    list_display = (
        "value",
        "kind",
        "consent",
        "app_id",
        "tenant",
        "by_name",
        "expires",
        "reminded_at",
    )
    list_filter = ("kind", "tenant")
    search_fields = ("value", "app_id", "reason", "by_name")
    list_select_related = ("tenant",)


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnlyAdmin):
    """Entra's directory audit events, as the syncs kept them: only read."""

    list_display = ("at", "activity", "tenant", "initiator_upn", "initiator_name", "result")
    list_filter = ("activity", "result", "tenant")
    search_fields = ("event_id", "initiator_upn", "initiator_name")
    list_select_related = ("tenant",)
