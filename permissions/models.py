"""The permission catalog and the application manifests.

Catalog: resources (APIs such as Microsoft Graph) define permissions; each permission
allows some API calls. Manifests: an application's features, and per feature the
permissions it needs, why, and which API calls it makes.

A manifest requirement names its permission by (resource appId, kind, value) rather than
by foreign key, so that a manifest can be imported before the catalog knows the
permission, and keeps working when the catalog is refreshed.
"""

from datetime import timedelta
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from django.db import models

MICROSOFT_GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
MICROSOFT_INTUNE_APP_ID = "c161e42e-d4df-4a3d-9b42-e7a3c31f59d4"


class PermissionKind(models.TextChoices):
    APPLICATION = "application", "Application"
    DELEGATED = "delegated", "Delegated"


class Tier(models.TextChoices):
    """EntraOps' enterprise access model tiers, most sensitive first."""

    CONTROL_PLANE = "ControlPlane", "Control plane"
    MANAGEMENT_PLANE = "ManagementPlane", "Management plane"
    USER_ACCESS = "UserAccess", "User access"
    UNCLASSIFIED = "", "Unclassified"


class Resource(models.Model):
    """An API that defines permissions, identified by its appId."""

    app_id = models.UUIDField(unique=True)
    display_name = models.CharField(max_length=200)

    class Meta:
        ordering = ["display_name"]

    def __str__(self) -> str:
        return self.display_name


class Permission(models.Model):
    class Source(models.TextChoices):
        STARTER = "starter", "Built-in starter catalog"
        REFERENCE = "reference", "Microsoft permissions reference"
        GRAPH = "graph", "Read from Microsoft Graph"

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="permissions")
    kind = models.CharField(max_length=12, choices=PermissionKind.choices)
    value = models.CharField(max_length=200)
    graph_id = models.UUIDField(null=True, blank=True)
    display_name = models.CharField(max_length=300, blank=True)
    description = models.TextField(blank=True)
    # None: not known yet (a permission only a manifest or a grant has told us about).
    admin_consent_required = models.BooleanField(null=True)
    enabled = models.BooleanField(default=True)
    # Microsoft's privilege level from the permissions reference, 1 (lowest) to 5.
    privilege_level = models.PositiveSmallIntegerField(null=True, blank=True)
    tier = models.CharField(
        max_length=20, choices=Tier.choices, blank=True, default=Tier.UNCLASSIFIED
    )
    source = models.CharField(max_length=12, choices=Source.choices)
    # Listed by Microsoft's reference, the built-in snapshot or the starter: public
    # knowledge, shown to everyone with a portal role. Unset, only tenants' Graph told the
    # portal about it (a custom API's roles and texts): shown only to the users of the
    # tenants in ``seen_in``. Kept apart from ``source``, which says whose texts a row
    # holds and changes when Graph describes a published permission.
    published = models.BooleanField(default=False)
    # The tenants whose sync read this permission from Graph.
    seen_in = models.ManyToManyField(
        "tenants.Tenant", blank=True, related_name="catalog_seen", db_table="permission_seen_in"
    )
    # Set when the source that listed this permission no longer does. The row stays:
    # grants and manifests may still name it.
    removed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["value", "kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["resource", "kind", "value"], name="permission_unique_per_resource_kind"
            ),
        ]
        indexes = [models.Index(fields=["graph_id"], name="permission_graph_id")]

    def __str__(self) -> str:
        return f"{self.value} ({self.get_kind_display()})"


class PermissionApiCall(models.Model):
    """One API call (method + path template) that a permission allows, per consent scheme."""

    class Scheme(models.TextChoices):
        APPLICATION = "Application", "Application"
        DELEGATED_WORK = "DelegatedWork", "Delegated (work or school)"
        DELEGATED_PERSONAL = "DelegatedPersonal", "Delegated (personal account)"

    permission = models.ForeignKey(Permission, on_delete=models.CASCADE, related_name="api_calls")
    scheme = models.CharField(max_length=20, choices=Scheme.choices)
    method = models.CharField(max_length=10)
    # Lower-cased path template as in Microsoft's reference, e.g. "/groups/{id}/members".
    path = models.CharField(max_length=500)
    # Microsoft marks the permission it considers least privileged for this call.
    least_privileged = models.BooleanField(default=False)

    class Meta:
        ordering = ["path", "method"]
        constraints = [
            models.UniqueConstraint(
                fields=["permission", "scheme", "method", "path"], name="api_call_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


class CatalogImport(models.Model):
    """One catalog import (the weekly refresh, an import_catalog run, the starter) and
    how it ended. The import itself is one transaction: a failed one changed nothing."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

        @property
        def colour(self) -> str:
            return {"running": "blue", "succeeded": "green", "failed": "red"}[self.value]

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Weekly refresh"
        COMMAND = "command", "Command"

    source = models.CharField(
        max_length=12,
        choices=[
            (Permission.Source.STARTER, "Built-in catalog"),
            (Permission.Source.REFERENCE, "Reference"),
        ],
    )
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    # The files or URLs read; empty for the built-in catalog.
    locations = models.JSONField(default=list, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    permissions_added = models.PositiveIntegerField(default=0)
    permissions_changed = models.PositiveIntegerField(default=0)
    permissions_removed = models.PositiveIntegerField(default=0)
    permissions_unchanged = models.PositiveIntegerField(default=0)
    api_calls_added = models.PositiveIntegerField(default=0)
    api_calls_removed = models.PositiveIntegerField(default=0)
    api_calls_remarked = models.PositiveIntegerField(default=0)
    tiers_set = models.PositiveIntegerField(default=0)
    # Resource-specific consent permissions the reference lists and the catalog leaves out.
    skipped = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            # Claimed in the database: two imports at once would race on the same rows.
            models.UniqueConstraint(
                fields=["status"],
                condition=models.Q(status="running"),
                name="catalog_import_one_running",
            ),
        ]

    def __str__(self) -> str:
        return f"Catalog import {self.pk} ({self.status})"

    @property
    def duration(self) -> timedelta | None:
        if self.finished_at:
            return self.finished_at - self.started_at
        return None

    @property
    def read(self) -> str:
        """What it read, in short: the files' names, or the built-in catalog."""
        if self.source == Permission.Source.STARTER:
            return "the built-in catalog"
        return ", ".join(PurePosixPath(urlsplit(x).path).name or x for x in self.locations)

    @property
    def status_choice(self) -> "CatalogImport.Status":
        return self.Status(self.status)

    @property
    def changed_anything(self) -> bool:
        return any(
            (
                self.permissions_added,
                self.permissions_changed,
                self.permissions_removed,
                self.api_calls_added,
                self.api_calls_removed,
                self.api_calls_remarked,
            )
        )


class CatalogChange(models.Model):
    """What a catalog import changed; kept even after the permission itself is gone."""

    class Action(models.TextChoices):
        ADDED = "added", "Added"
        CHANGED = "changed", "Changed"
        REMOVED = "removed", "Removed"

    class Category(models.TextChoices):
        """The changes people look for; a change of texts or flags is none of them."""

        NEW = "new", "New"
        REMOVED = "removed", "Removed"
        RENAMED = "renamed", "Renamed"
        RETIERED = "retiered", "Re-tiered"

    permission = models.ForeignKey(
        Permission, on_delete=models.SET_NULL, null=True, blank=True, related_name="changes"
    )
    resource_app_id = models.UUIDField()
    kind = models.CharField(max_length=12, choices=PermissionKind.choices)
    value = models.CharField(max_length=200)
    action = models.CharField(max_length=10, choices=Action.choices)
    # {"field": [old, new], ...} for a change; empty for added/removed.
    details = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=12, choices=Permission.Source.choices)
    # None for changes a tenant's sync read from Graph, and for those made before imports
    # were recorded.
    catalog_import = models.ForeignKey(
        CatalogImport, on_delete=models.SET_NULL, null=True, blank=True, related_name="changes"
    )
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["-at"], name="catalog_change_at")]

    def __str__(self) -> str:
        return f"{self.action} {self.value} ({self.kind})"

    @property
    def categories(self) -> list["CatalogChange.Category"]:
        if self.action == self.Action.ADDED:
            return [self.Category.NEW]
        if self.action == self.Action.REMOVED:
            return [self.Category.REMOVED]
        found = []
        if "value" in self.details:
            found.append(self.Category.RENAMED)
        if "tier" in self.details:
            found.append(self.Category.RETIERED)
        return found

    @property
    def renamed_from(self) -> str:
        """The name before a rename; empty when the name did not change."""
        return self.details["value"][0] if "value" in self.details else ""

    @property
    def summary(self) -> str:
        """What happened, in a few words: "renamed from X; re-tiered from A to B"."""
        notes = {
            self.Category.NEW: "new",
            self.Category.REMOVED: "removed from Microsoft's reference",
            self.Category.RENAMED: f"renamed from {self.renamed_from}",
        }
        if self.tiers:
            notes[self.Category.RETIERED] = f"re-tiered from {self.tiers[0]} to {self.tiers[1]}"
        return "; ".join(notes[category] for category in self.categories)

    @property
    def tiers(self) -> tuple[str, str] | None:
        """(before, after) as their labels, for a change of tier."""
        if "tier" not in self.details:
            return None
        before, after = self.details["tier"]
        return Tier(before or "").label, Tier(after or "").label


class Application(models.Model):
    """A client application that holds permissions, identified by its appId."""

    app_id = models.UUIDField(unique=True)
    name = models.CharField(max_length=200)
    publisher = models.CharField(max_length=200, blank=True)
    docs_url = models.URLField(max_length=500, blank=True)
    # Set when a manifest was imported: an application without one explains nothing.
    manifest_imported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_manifest(self) -> bool:
        return self.manifest_imported_at is not None


class Feature(models.Model):
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="features")
    key = models.SlugField(max_length=100)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    default_enabled = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["application", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["application", "key"], name="feature_key_unique_per_app"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.application.name}: {self.name}"


class Requirement(models.Model):
    """A permission that a feature needs, why, and the API calls it makes with it."""

    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="requirements")
    resource_app_id = models.UUIDField(default=MICROSOFT_GRAPH_APP_ID)
    kind = models.CharField(max_length=12, choices=PermissionKind.choices)
    permission_value = models.CharField(max_length=200)
    reason = models.TextField()
    # ["GET /devices", "GET /groups/{id}/members"], as the manifest declares them.
    api_calls = models.JSONField(default=list, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["feature", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["feature", "resource_app_id", "kind", "permission_value"],
                name="requirement_unique_per_feature",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.permission_value} ({self.kind}) for {self.feature}"
