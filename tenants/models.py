"""Tenants, their service principals, grants with history, sync runs and feature switches.

Grant history: a grant row is written once, when a sync first sees it (``first_seen_run``),
and touched once more, when a sync no longer sees it (``removed_in_run``). So an unchanged
re-sync writes no grant rows, the snapshot of any run R is the rows with
``first_seen_run <= R`` and (``removed_in_run`` empty or ``> R``), and the diff between two
runs is two range queries. Run ids grow with time per tenant, which is what makes
``<=`` meaningful.
"""

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from permissions.models import Feature, PermissionKind, Tier


class Tenant(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"

    tenant_id = models.UUIDField(unique=True)
    name = models.CharField(max_length=200)
    default_domain = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    sync_interval = models.DurationField(default=timedelta(hours=6))
    next_sync_at = models.DateTimeField(null=True, blank=True)
    last_good_sync = models.ForeignKey(
        "SyncRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Whether the last sync could read Entra's sign-in activity report (tenants.signins):
    # "" known, else why not ("not_read", "no_licence", "no_permission", "failed").
    sign_in_status = models.CharField(max_length=20, default="not_read", blank=True)
    # Whether the last sync could read Entra's directory audit events (tenants.provenance):
    # "" known, else "not_read", "no_permission" or "failed" (Entra ID Free has them too).
    consent_history_status = models.CharField(max_length=20, default="not_read", blank=True)
    # The newest event time read so far: the next read starts a little before it.
    consent_history_through = models.DateTimeField(null=True, blank=True)
    # Entra had dropped events older than this when the portal first read them: what
    # happened before is not on record.
    consent_history_from = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["status", "next_sync_at"], name="tenant_due")]

    def __str__(self) -> str:
        return self.name


class SyncRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        # Read completely, but it would remove an unusual share of the tenant's grants: kept
        # (HeldSnapshot) for an admin to apply or discard, the previous snapshot in force.
        HELD = "held", "Held for review"
        # A held snapshot an admin discarded, or that a newer sync superseded.
        DISCARDED = "discarded", "Discarded"

        @property
        def colour(self) -> str:
            return {
                "queued": "grey",
                "running": "blue",
                "succeeded": "green",
                "failed": "red",
                "held": "amber",
                "discarded": "grey",
            }[self.value]

    # What started the run; ``requested_by`` says who, where a signed-in user did.
    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        MANUAL = "manual", "Sync now"
        COMMAND = "command", "Command"
        # The verification sync after a revoke, or after an undo (a restore), succeeded.
        REVOKE = "revoke", "Revoke"
        UNDO = "undo", "Undo"
        # The first sync of a tenant whose admin just consented.
        CONNECT = "connect", "Connect"

    class ReadMode(models.TextChoices):
        # Every collection listed in full.
        FULL = "full", "Full read"
        # Only what changed since the last sync (Graph's delta queries, tenants/delta.py).
        DELTA = "delta", "Changes only (delta)"

    # A run in one of these has not ended; a tenant has at most one (the constraint below,
    # whose frozen list a test compares with this). A held run has ended: it waits for an
    # admin, not for a worker, and the next sync runs meanwhile.
    OPEN_STATUSES = (Status.QUEUED, Status.RUNNING)

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="sync_runs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.SCHEDULE)
    requested_by = models.ForeignKey(
        "portal.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # What the run is doing now, for the progress display ("Reading delegated grants").
    progress = models.CharField(max_length=200, blank=True)
    graph_requests = models.PositiveIntegerField(default=0)
    throttled_waits = models.PositiveIntegerField(default=0)
    throttled_seconds = models.FloatField(default=0)
    service_principals = models.PositiveIntegerField(default=0)
    grants_added = models.PositiveIntegerField(default=0)
    grants_removed = models.PositiveIntegerField(default=0)
    grants_unchanged = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    # What the run skipped or worked around without failing, one line each, for the run's
    # page: a principal that vanished, a grant listing Graph left incomplete...
    notes = models.JSONField(default=list, blank=True)
    # How the run read Graph ("" for a run that did not get that far).
    read_mode = models.CharField(max_length=5, choices=ReadMode.choices, blank=True)
    # A full read that checked what the delta queries had said: how many service principals
    # and delegated grants differed (None: nothing to check against).
    delta_discrepancies = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # Claimed in the database: never two open runs for one tenant.
            models.UniqueConstraint(
                fields=["tenant"],
                condition=Q(status__in=["queued", "running"]),
                name="sync_run_one_open_per_tenant",
            ),
        ]

    def __str__(self) -> str:
        return f"Sync {self.pk} of {self.tenant} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    @property
    def status_colour(self) -> str:
        """The colour of the run's status badge (its ``run-<colour>`` class)."""
        return self.Status(self.status).colour

    @property
    def duration(self) -> timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class TenantDelta(models.Model):
    """Where a tenant's delta queries stand: the deltaLink of each collection and the two
    collections as the last applied snapshot read them, which the next round's changes are
    merged into (tenants/delta.py). Beside the tenant: it can be megabytes."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="delta")
    service_principals_link = models.TextField()
    grants_link = models.TextField()
    # Service principals and delegated grants as zlib-compressed JSON (tenants.delta).
    base = models.BinaryField()
    # When the whole tenant was last read: the next full read is due SYNC_FULL_READ_DAYS on.
    full_read_at = models.DateTimeField()
    # Why the next sync must read everything ("": it need not), e.g. a failed delta round.
    full_read_reason = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Delta state of {self.tenant}"


class HeldSnapshot(models.Model):
    """The snapshot a held run read, kept until an admin applies or discards it.

    Beside the run rather than on it: it can be megabytes, and run lists must not load it.
    """

    run = models.OneToOneField(SyncRun, on_delete=models.CASCADE, related_name="held")
    # The snapshot as zlib-compressed JSON (tenants.sync.snapshot_dump).
    data = models.BinaryField()
    # The tenant's current grants when the run was held, and those it would remove.
    current_grants = models.PositiveIntegerField()
    # Primary keys of the grants the snapshot would remove, for the run's page.
    removed_grants = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Held snapshot of sync {self.run_id}"


class ServicePrincipal(models.Model):
    """An application's instance in a tenant, as the last sync saw it."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="service_principals")
    object_id = models.UUIDField()
    app_id = models.UUIDField()
    display_name = models.CharField(max_length=300)
    publisher = models.CharField(max_length=300, blank=True)
    app_owner_tenant_id = models.UUIDField(null=True, blank=True)
    service_principal_type = models.CharField(max_length=40, blank=True)
    account_enabled = models.BooleanField(default=True)
    # Set when a sync no longer finds it; grants history still points at it.
    removed_at = models.DateTimeField(null=True, blank=True)
    # Entra's sign-in activity (tenants.signins): the last sign-in of any kind, app-only
    # as a client, delegated as a client; None where Entra has none on record. Meaningful
    # only while the tenant's sign_in_status is known.
    last_sign_in_at = models.DateTimeField(null=True, blank=True)
    last_app_sign_in_at = models.DateTimeField(null=True, blank=True)
    last_delegated_sign_in_at = models.DateTimeField(null=True, blank=True)
    # Facts (tenants.facts), None where no sync has read them yet. Owners: a list of
    # {"id", "name", "upn", "type"} (type "user" or "servicePrincipal"), at most 20.
    owners = models.JSONField(null=True, blank=True)
    verified_publisher = models.BooleanField(null=True, blank=True)
    sign_in_audience = models.CharField(max_length=40, blank=True)
    # The app registration's createdDateTime: known only for the tenant's own apps.
    app_created_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["display_name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "object_id"], name="sp_unique_per_tenant"),
        ]
        indexes = [models.Index(fields=["tenant", "app_id"], name="sp_tenant_app")]

    def __str__(self) -> str:
        return self.display_name

    @property
    def is_first_party(self) -> bool:
        """Published by Microsoft: its application belongs to one of Microsoft's tenants."""
        return str(self.app_owner_tenant_id) in MICROSOFT_TENANT_IDS

    @property
    def is_managed_identity(self) -> bool:
        """An Azure resource's identity (servicePrincipalType ManagedIdentity)."""
        return (self.service_principal_type or "").lower() == MANAGED_IDENTITY.lower()


class Credential(models.Model):
    """A secret or certificate an application signs in with, as the last sync saw it:
    on its service principal in this tenant, or (for the tenant's own apps) on its app
    registration."""

    class Kind(models.TextChoices):
        SECRET = "secret", "Secret"
        CERTIFICATE = "certificate", "Certificate"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="credentials")
    service_principal = models.ForeignKey(
        ServicePrincipal, on_delete=models.CASCADE, related_name="credentials"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    key_id = models.UUIDField()
    display_name = models.CharField(max_length=300, blank=True)
    start_at = models.DateTimeField(null=True, blank=True)
    end_at = models.DateTimeField(null=True, blank=True)
    # False: placed directly on the service principal, where the app's owners may not see it.
    on_application = models.BooleanField(default=False)

    class Meta:
        ordering = ["end_at"]
        indexes = [models.Index(fields=["tenant", "end_at"], name="credential_tenant_end")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.display_name or self.key_id}"


class ConsentingUser(models.Model):
    """A user who consented to an application for themselves (a Principal grant), by name:
    Graph's grants name only the user's object id. Read by the sync when first seen."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="consenting_users")
    object_id = models.UUIDField()
    # As Graph gives them: hostile text, shown through |plain.
    display_name = models.CharField(max_length=256, blank=True)
    user_principal_name = models.CharField(max_length=256, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "object_id"], name="consenting_user_one_per_tenant"
            )
        ]

    def __str__(self) -> str:
        return self.display_name or str(self.object_id)


# Tenants Microsoft publishes its own applications from (appOwnerOrganizationId): its
# services tenant, where most Microsoft 365 and Azure apps live, and its corporate tenant.
MICROSOFT_TENANT_IDS = frozenset(
    {"f8cdef31-a31e-4b4a-93e4-5f571e91255a", "72f988bf-86f1-41af-91ab-2d7cd011db47"}
)
# Graph's servicePrincipalType of an Azure managed identity.
MANAGED_IDENTITY = "ManagedIdentity"


class Grant(models.Model):
    """One permission a client service principal holds, from one sync to its removal.

    Application permissions: one row per appRoleAssignment. Delegated permissions: one row
    per scope of each oauth2PermissionGrant (admin consent for all users, or one user's).
    """

    class Consent(models.TextChoices):
        ADMIN = "admin", "Admin consent"
        USER = "user", "User consent"

    # The composite indexes below lead with the tenant and the runs: single-column indexes
    # on those foreign keys would only slow down the sync's bulk inserts.
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="grants", db_index=False
    )
    client = models.ForeignKey(ServicePrincipal, on_delete=models.CASCADE, related_name="grants")
    resource_app_id = models.UUIDField()
    resource_object_id = models.UUIDField()
    kind = models.CharField(max_length=12, choices=PermissionKind.choices)
    # The permission's value (e.g. "Device.Read.All"); for an app role the catalog does
    # not know, empty with the id kept in permission_id.
    value = models.CharField(max_length=200, blank=True)
    # appRoleId for application permissions; empty for delegated (scopes carry no id).
    permission_id = models.UUIDField(null=True, blank=True)
    consent = models.CharField(max_length=5, choices=Consent.choices)
    # The user who consented (user consent only).
    principal_id = models.UUIDField(null=True, blank=True)
    # The Graph object: appRoleAssignment id or oauth2PermissionGrant id (opaque strings).
    graph_object_id = models.CharField(max_length=200)
    # What makes a grant the same grant from one sync to the next: the assignment id, or
    # the delegated grant id and the scope. Assignments and grants are immutable in Graph
    # but for a grant's scope list, so nothing else needs comparing.
    identity = models.CharField(max_length=400)
    granted_at = models.DateTimeField(null=True, blank=True)
    first_seen_run = models.ForeignKey(
        SyncRun, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    removed_in_run = models.ForeignKey(
        SyncRun, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )

    class Meta:
        ordering = ["value"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "identity"],
                condition=Q(removed_in_run__isnull=True),
                name="grant_current_unique",
            ),
        ]
        indexes = [
            models.Index(
                fields=["tenant", "client"],
                condition=Q(removed_in_run__isnull=True),
                name="grant_current_by_client",
            ),
            models.Index(fields=["tenant", "first_seen_run"], name="grant_first_seen"),
            models.Index(fields=["tenant", "removed_in_run"], name="grant_removed_in"),
        ]

    def __str__(self) -> str:
        return f"{self.value or self.permission_id} ({self.kind}) for {self.client_id}"


class ConsentEvent(models.Model):
    """One directory audit event about a consent or a grant (tenants.provenance), kept for
    good: Entra keeps them 7 days (Entra ID Free) or 30 (P1). Written once, as read."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="consent_events")
    # Entra's id ("Directory_<correlation>_<...>"): what makes a re-read the same event.
    event_id = models.CharField(max_length=200)
    activity = models.CharField(max_length=100)
    at = models.DateTimeField()
    # "success" or "failure", as Entra says it.
    result = models.CharField(max_length=20, blank=True)
    # Who did it: a user (their UPN and name) or an application (its name, no UPN).
    initiator_name = models.CharField(max_length=300, blank=True)
    initiator_upn = models.CharField(max_length=300, blank=True)
    initiator_id = models.UUIDField(null=True, blank=True)
    initiator_is_app = models.BooleanField(default=False)
    # The client that was granted (or lost) the permissions, and the API they are of.
    client_object_id = models.UUIDField(null=True, blank=True)
    resource_object_id = models.UUIDField(null=True, blank=True)
    resource_app_id = models.UUIDField(null=True, blank=True)
    # PermissionKind, or "" where the event does not say (a consent to nothing delegated).
    kind = models.CharField(max_length=12, blank=True)
    # Permission values (scopes or app role values) the event added or removed.
    permissions = models.JSONField(default=list, blank=True)
    # Grant.Consent ("admin", "user"), or "" where the event does not say.
    consent = models.CharField(max_length=5, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "event_id"], name="consent_event_unique"),
        ]
        indexes = [
            models.Index(fields=["tenant", "client_object_id", "-at"], name="consent_event_client"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.activity}"


class FeatureSwitch(models.Model):
    """A tenant's choice for one feature; without a row, the manifest's default holds."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="feature_switches")
    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="switches")
    enabled = models.BooleanField()
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "feature"], name="feature_switch_unique"),
        ]

    def __str__(self) -> str:
        state = "on" if self.enabled else "off"
        return f"{self.feature} {state} in {self.tenant}"


# A requester's reason: a sentence or two for the admin who decides, not an essay.
REASON_MAX_LENGTH = 500


class RevokeRequest(models.Model):
    """Taking one permission away from one application in one tenant, giving it back, or
    granting one it misses.

    For a delegated permission, one request covers the scope in every grant of its
    consent type: the admin-consent grant, or each user's grant. What was removed is kept
    in ``removed`` so that a restore can grant the same again (Entra gives the new
    assignment or grant its own id and date).
    """

    class Action(models.TextChoices):
        REVOKE = "revoke", "Revoke"
        RESTORE = "restore", "Restore"
        # Giving an application a permission an enabled feature needs and the tenant has
        # not granted (a missing one); its undo is a revoke (``restores`` names the grant).
        GRANT = "grant", "Grant"

    class Status(models.TextChoices):
        PENDING_APPROVAL = "pending_approval", "Waiting for approval"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        # The portal may not write in this tenant: an admin removes the grant by hand and
        # the next sync confirms it.
        MANUAL = "manual", "Waiting for manual removal"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        DENIED = "denied", "Denied"
        CANCELLED = "cancelled", "Cancelled"

        @property
        def colour(self) -> str:
            return {
                "pending_approval": "amber",
                "queued": "grey",
                "running": "blue",
                "manual": "amber",
                "succeeded": "green",
                "failed": "red",
                "denied": "grey",
                "cancelled": "grey",
            }[self.value]

    # A request in one of these has not ended; a grant has at most one (the constraint
    # below, whose frozen list a test compares with this).
    OPEN_STATUSES = (Status.PENDING_APPROVAL, Status.QUEUED, Status.RUNNING, Status.MANUAL)

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="revoke_requests")
    client = models.ForeignKey(
        ServicePrincipal, on_delete=models.CASCADE, related_name="revoke_requests"
    )
    action = models.CharField(max_length=8, choices=Action.choices, default=Action.REVOKE)
    resource_app_id = models.UUIDField()
    kind = models.CharField(max_length=12, choices=PermissionKind.choices)
    value = models.CharField(max_length=200)
    consent = models.CharField(max_length=5, choices=Grant.Consent.choices)
    status = models.CharField(max_length=20, choices=Status.choices)
    requested_by = models.ForeignKey(
        "portal.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_by = models.ForeignKey(
        "portal.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Why the requester asks (a reader must say why; an admin may). Shown to whoever
    # decides, beside the grant's verdict and the features it would break.
    reason = models.TextField(max_length=REASON_MAX_LENGTH, blank=True)
    # The e-mail telling the requester the decision: claimed (set) before it is sent, put
    # back on failure with the error kept here, so a failed send stays visible and retried.
    decision_mailed_at = models.DateTimeField(null=True, blank=True)
    decision_mail_error = models.TextField(blank=True)
    # The request this one undoes: the revoke a restore puts back, or the grant a revoke
    # takes away again.
    restores = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # What the request took away (or puts back): Graph objects as they were.
    removed = models.JSONField(default=list, blank=True)
    # Every Graph call made: [{"method", "path", "status", "request_id"}].
    graph_calls = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    # Set when a later sync finds the revoked permission granted again (re-consenting
    # to an app brings back every permission it asks for).
    regranted_in_run = models.ForeignKey(
        SyncRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # A double click, or two admins at once, make one request.
            models.UniqueConstraint(
                fields=["tenant", "client", "resource_app_id", "kind", "value", "consent"],
                condition=Q(status__in=["pending_approval", "queued", "running", "manual"]),
                name="revoke_request_one_open_per_grant",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "status"], name="revoke_request_by_status")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.value} ({self.kind}) of {self.client_id} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    @property
    def status_colour(self) -> str:
        """The colour of the request's status badge (its ``run-<colour>`` class)."""
        return self.Status(self.status).colour


class ApplicationFinding(models.Model):
    """The verdicts on one client service principal's grants in a tenant, counted, with its
    highest tier and its risk: what the tenant page, the dashboard and the matrix list.

    Stored output of the verdict engine (tenants.findings writes it when an input changes:
    a sync, a feature switch, a manifest, a justification, the catalog), so that a page
    reads a page of rows instead of working out every verdict of the tenant. Counts are of
    grant entries (a permission by consent type), as the report groups them.
    """

    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="findings", db_index=False
    )
    service_principal = models.ForeignKey(
        ServicePrincipal, on_delete=models.CASCADE, related_name="+"
    )
    # Copied from the service principal, so pages filter and sort without a join.
    app_id = models.UUIDField()
    display_name = models.CharField(max_length=300)
    # Whose application it is (permissions.risk.Ownership's values); Microsoft's own apps.
    kind = models.CharField(max_length=20)
    first_party = models.BooleanField(default=False)
    needed = models.PositiveIntegerField(default=0)
    unused = models.PositiveIntegerField(default=0)
    unexplained = models.PositiveIntegerField(default=0)
    missing = models.PositiveIntegerField(default=0)
    control_plane = models.PositiveIntegerField(default=0)
    # The most sensitive tier of what it holds ("" when none is tiered), and the highest
    # privilege level Microsoft gives any of it (None when the catalog gives none).
    tier = models.CharField(max_length=20, choices=Tier.choices, blank=True)
    privilege_level = models.PositiveSmallIntegerField(null=True, blank=True)
    risk_score = models.PositiveIntegerField(default=0)
    risk_level = models.CharField(max_length=10)
    # The rule's reasons, in its order, one line each.
    risk_reasons = models.JSONField(default=list, blank=True)
    # No sign-in in INACTIVE_DAYS when written; None where the tenant's activity is unknown.
    inactive = models.BooleanField(null=True, blank=True)

    class Meta:
        ordering = ["display_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "service_principal"], name="finding_one_per_client"
            ),
        ]
        indexes = [
            # The tenant page's orders (by name, by risk) within a tenant.
            models.Index(fields=["tenant", "display_name"], name="finding_by_name"),
            models.Index(fields=["tenant", "-risk_score"], name="finding_by_risk"),
            # The same across several tenants: the dashboard's "look at these first" and the
            # matrix read these in order and stop once a page is full.
            models.Index(fields=["-risk_score"], name="finding_riskiest"),
            models.Index(fields=["display_name"], name="finding_names"),
            # The matrix's cells: a page of applications in the tenants shown.
            models.Index(fields=["app_id", "tenant"], name="finding_by_app"),
        ]

    def __str__(self) -> str:
        return f"Findings of {self.display_name} in tenant {self.tenant_id}"

    @property
    def permissions(self) -> int:
        return self.needed + self.unused + self.unexplained


# The order in which pages, charts and exports list the verdicts' counts.
VERDICT_ORDER = ("needed", "unused", "unexplained", "missing")


def counts_by_verdict(counts: object) -> list[tuple[str, int]]:
    """``(verdict, count)`` in VERDICT_ORDER, of anything with a count per verdict (stored
    summaries, the selectors' VerdictCounts)."""
    return [(verdict, getattr(counts, verdict)) for verdict in VERDICT_ORDER]


class FindingSummary(models.Model):
    """A tenant's stored findings counted, for the dashboard, and what they are as of.

    Written with the tenant's ApplicationFinding rows. They are current while ``run`` is
    the tenant's last good sync and ``stale_after`` (the day a justification counted in
    them lapses) has not come; otherwise the next page that reads them recomputes them.
    """

    tenant = models.OneToOneField(
        Tenant, on_delete=models.CASCADE, primary_key=True, related_name="finding_summary"
    )
    run = models.ForeignKey(
        SyncRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    computed_at = models.DateTimeField()
    stale_after = models.DateField(null=True, blank=True)
    applications = models.PositiveIntegerField(default=0)
    needed = models.PositiveIntegerField(default=0)
    unused = models.PositiveIntegerField(default=0)
    unexplained = models.PositiveIntegerField(default=0)
    missing = models.PositiveIntegerField(default=0)
    control_plane = models.PositiveIntegerField(default=0)
    # Applications: inactive ones (None where sign-in activity is unknown), and those of
    # each risk level.
    inactive = models.PositiveIntegerField(null=True, blank=True)
    critical = models.PositiveIntegerField(default=0)
    high = models.PositiveIntegerField(default=0)
    # Applications matching each of the tenant page's filters, "field=value" (e.g.
    # "verdict=unused", "tier=ControlPlane"): a page filtered by one is counted from here.
    facets = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"Findings summary of tenant {self.tenant_id}"

    @property
    def permissions(self) -> int:
        return self.needed + self.unused + self.unexplained

    @property
    def by_verdict(self) -> list[tuple[str, int]]:
        return counts_by_verdict(self)


APPEND_ONLY = "Audit events are append-only"


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    """Appends only: refuses the bulk writes that would change or remove events, as the
    model refuses ``save()`` of a stored event and ``delete()``.

    Deleting a user still nulls ``actor`` on their events (the name stays in
    ``actor_name``): Django's deletion collector goes through the base manager.
    """

    def update(self, **kwargs: Any) -> int:
        raise ValueError(APPEND_ONLY)

    def delete(self) -> tuple[int, dict[str, int]]:
        raise ValueError(APPEND_ONLY)

    def bulk_update(
        self, objs: Iterable["AuditEvent"], fields: Iterable[str], batch_size: int | None = None
    ) -> int:
        raise ValueError(APPEND_ONLY)


class Justification(models.Model):
    """An admin's reason for keeping one grant that no enabled feature explains.

    It names the grant as revoke requests do (a GrantSlot: resource, kind, value, consent)
    and the client by its appId rather than its service principal: deleting an enterprise
    application and consenting again makes a new service principal of the same app, and the
    reason for keeping its permission still holds. While in force (up to and including
    ``expires``) the grant is needed; afterwards the verdict engine ignores it and the
    reviewer (or the tenant's admins) get one e-mail asking to keep it or revoke it.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="justifications")
    app_id = models.UUIDField()
    resource_app_id = models.UUIDField()
    kind = models.CharField(max_length=12, choices=PermissionKind.choices)
    value = models.CharField(max_length=200)
    consent = models.CharField(max_length=5, choices=Grant.Consent.choices)
    reason = models.TextField(max_length=1000)
    by = models.ForeignKey(
        "portal.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Who said so, as text: the user may be deleted, and the command has no user.
    by_name = models.CharField(max_length=300)
    # Asked to review it when it expires; without one (or once they lost their role), the
    # tenant's admins are.
    reviewer = models.ForeignKey(
        "portal.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The last day it counts; None only where JUSTIFICATION_MAX_DAYS is 0 (no maximum).
    expires = models.DateField(null=True, blank=True)
    # When the review e-mail for the current expiry was claimed; cleared whenever the
    # expiry changes, so each expiry is mailed about once.
    reminded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["tenant", "app_id", "value"]
        constraints = [
            # One per grant; the value ignoring case, as Entra compares permission values.
            models.UniqueConstraint(
                "tenant",
                "app_id",
                "resource_app_id",
                "kind",
                Lower("value"),
                "consent",
                name="justification_one_per_grant",
            ),
        ]
        indexes = [
            # The daily review: those about to expire that nobody was mailed about yet.
            models.Index(
                fields=["expires"],
                condition=Q(reminded_at__isnull=True),
                name="justification_review_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.value} ({self.kind}, {self.consent}) of {self.app_id}: {self.reason[:40]}"

    def in_force(self, today: date) -> bool:
        return self.expires is None or today <= self.expires


class AuditEvent(models.Model):
    """One state change, as it happened. Append-only: the portal never edits or deletes one,
    and neither the model nor its manager lets anyone do so."""

    class Action(models.TextChoices):
        SYNC_SUCCEEDED = "sync.succeeded", "Sync succeeded"
        SYNC_FAILED = "sync.failed", "Sync failed"
        SYNC_HELD = "sync.held", "Sync held for review"
        SYNC_HELD_APPLIED = "sync.held_applied", "Held sync applied"
        SYNC_HELD_DISCARDED = "sync.held_discarded", "Held sync discarded"
        FEATURES_SWITCHED = "features.switched", "Features switched"
        REVOKE_REQUESTED = "revoke.requested", "Revoke requested"
        REVOKE_APPROVED = "revoke.approved", "Revoke approved"
        REVOKE_DENIED = "revoke.denied", "Revoke denied"
        REVOKE_CANCELLED = "revoke.cancelled", "Revoke cancelled"
        REVOKE_SUCCEEDED = "revoke.succeeded", "Revoke succeeded"
        REVOKE_FAILED = "revoke.failed", "Revoke failed"
        REVOKE_MANUAL = "revoke.manual", "Revoke needs manual steps"
        RESTORE_REQUESTED = "restore.requested", "Restore requested"
        RESTORE_MANUAL = "restore.manual", "Restore needs manual steps"
        RESTORE_SUCCEEDED = "restore.succeeded", "Restore succeeded"
        RESTORE_FAILED = "restore.failed", "Restore failed"
        GRANT_REQUESTED = "grant.requested", "Grant of a missing permission requested"
        GRANT_APPROVED = "grant.approved", "Grant approved"
        GRANT_DENIED = "grant.denied", "Grant denied"
        GRANT_CANCELLED = "grant.cancelled", "Grant cancelled"
        GRANT_MANUAL = "grant.manual", "Grant needs manual steps"
        GRANT_SUCCEEDED = "grant.succeeded", "Grant succeeded"
        GRANT_FAILED = "grant.failed", "Grant failed"
        REGRANTED = "grant.regranted", "Revoked permission granted again"
        ADMIN_SIGNED_IN = "admin.signed_in", "Admin signed in"
        TENANT_CONNECTED = "tenant.connected", "Tenant connected by admin consent"
        JUSTIFIED = "justification.added", "Grant justified"
        JUSTIFICATION_CHANGED = "justification.changed", "Justification changed"
        JUSTIFICATION_EXTENDED = "justification.extended", "Justification kept another term"
        JUSTIFICATION_REMOVED = "justification.removed", "Justification removed"
        JUSTIFICATION_REVIEW = "justification.review", "Justification review asked for"
        # Portal-wide (no tenant): Django admin's sign-ins, and failed sign-ins of any kind.
        STAFF_SIGNED_IN = "staff.signed_in", "Signed in to Django admin"
        SIGN_IN_FAILED = "sign_in.failed", "Sign-in failed"
        SIGN_IN_LOCKED = "sign_in.locked", "User name locked after failed sign-ins"
        # Portal-wide too: a manifest explains an application's grants in every tenant.
        MANIFEST_IMPORTED = "manifest.imported", "Manifest uploaded and imported"

    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, null=True, blank=True, related_name="audit_events"
    )
    actor = models.ForeignKey(
        "portal.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Kept as text too: the user may be deleted, the record must still say who it was.
    actor_name = models.CharField(max_length=300, blank=True)
    action = models.CharField(max_length=30, choices=Action.choices)
    # What it concerns, in words: "Place.Read.All (application) of Teams Rooms platform".
    target = models.CharField(max_length=500, blank=True)
    details = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["tenant", "-at"], name="audit_by_tenant")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.target}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise ValueError(APPEND_ONLY)
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise ValueError(APPEND_ONLY)

    @property
    def who(self) -> str:
        """Who did it, as the page and the CSV say: the user, or the portal itself (a
        scheduled sync, a worker, the command line) where no signed-in user did."""
        return self.actor_name or "The portal"
