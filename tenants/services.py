"""Writes that concern tenants: onboarding, feature switches, queueing syncs."""

import hashlib
import math
from datetime import UTC, datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from permissions.models import Application, Feature
from portal.celery import send_on_commit
from portal.models import User
from tenants.audit import audit_record
from tenants.graph import Organization
from tenants.models import AuditEvent, FeatureSwitch, SyncRun, Tenant
from tenants.tasks import sync_tenant as sync_tenant_task


class TenantError(ValueError):
    """Bad input for a tenant operation; the message is one line for the admin."""


def parse_guid(value: str, *, what: str) -> UUID:
    try:
        return UUID(str(value).strip())
    except ValueError:
        raise TenantError(f"{what} {value!r} is not a GUID") from None


def tenant_add(
    *, tenant_id: str, name: str = "", sync_interval: timedelta | None = None
) -> tuple[Tenant, bool]:
    """Onboard a tenant (or rename it); its first sync is due at once."""
    guid = parse_guid(tenant_id, what="tenant id")
    defaults: dict[str, object] = {"name": name or str(guid)}
    if sync_interval is not None:
        defaults["sync_interval"] = sync_interval
    tenant, created = Tenant.objects.get_or_create(
        tenant_id=guid, defaults={**defaults, "next_sync_at": timezone.now()}
    )
    if not created and name and tenant.name != name:
        tenant.name = name
        tenant.save(update_fields=["name"])
    return tenant, created


def tenant_names(*, tenant: Tenant, organization: Organization) -> dict[str, str]:
    """The fields of ``tenant`` to update from its organization: the default domain, and
    the name of a tenant known by its id alone (one that someone named keeps its name)."""
    names = {}
    if organization.name and tenant.name == str(tenant.tenant_id):
        names["name"] = organization.name[:200]
    if organization.default_domain:
        names["default_domain"] = organization.default_domain[:255]
    return names


def tenant_get(tenant_id: str) -> Tenant:
    guid = parse_guid(tenant_id, what="tenant id")
    try:
        return Tenant.objects.get(tenant_id=guid)
    except Tenant.DoesNotExist:
        raise TenantError(f"tenant {guid} is not onboarded (add it with add_tenant)") from None


def application_get(app_id: str) -> Application:
    guid = parse_guid(app_id, what="application id")
    try:
        return Application.objects.get(app_id=guid)
    except Application.DoesNotExist:
        raise TenantError(
            f"application {guid} has no manifest (import one with import_manifest)"
        ) from None


@transaction.atomic
def features_set(
    *,
    tenant: Tenant,
    application: Application,
    enable: list[str],
    disable: list[str],
    actor: User | None,
) -> list[FeatureSwitch]:
    """Switch features of an application on or off in a tenant, all or nothing.

    ``actor`` is the signed-in user who saved the switches (None: the command line); no
    default, so that no caller forgets to say who it was."""
    both = sorted(set(enable) & set(disable))
    if both:
        raise TenantError(f"feature {both[0]!r} is both enabled and disabled")
    features = {f.key: f for f in Feature.objects.filter(application=application)}
    unknown = [key for key in [*enable, *disable] if key not in features]
    if unknown:
        known = ", ".join(sorted(features)) or "none"
        raise TenantError(
            f"{application.name} has no feature {unknown[0]!r} (its features: {known})"
        )
    switches = []
    for key, enabled in [*((k, True) for k in enable), *((k, False) for k in disable)]:
        switch, _ = FeatureSwitch.objects.update_or_create(
            tenant=tenant, feature=features[key], defaults={"enabled": enabled}
        )
        switches.append(switch)
    # tenants.findings reads through the justifications, which raise this module's errors.
    from tenants.findings import findings_refresh

    findings_refresh(tenant=tenant, app_ids=[application.app_id])
    audit_record(
        action=AuditEvent.Action.FEATURES_SWITCHED,
        tenant=tenant,
        actor=actor,
        target=application.name,
        details={"app_id": str(application.app_id), "enabled": enable, "disabled": disable},
    )
    return switches


def sync_run_queue(
    *,
    tenant: Tenant,
    trigger: str = SyncRun.Trigger.SCHEDULE,
    requested_by: User | None = None,
) -> SyncRun | None:
    """Queue a sync unless one is already queued or running (the database decides).

    ``trigger`` says what started it and ``requested_by`` who (None: the portal itself).
    Returns the new run, or None when the tenant already has an open one. Nothing runs
    it: :func:`sync_run_request` also sends it to a worker; the ``sync_tenant`` command
    runs it in its own process.
    """
    try:
        with transaction.atomic():
            return SyncRun.objects.create(tenant=tenant, trigger=trigger, requested_by=requested_by)
    except IntegrityError:
        return None


def sync_run_request(
    *,
    tenant: Tenant,
    trigger: str,
    requested_by: User | None = None,
    countdown: float | None = None,
) -> SyncRun | None:
    """Queue a sync and send it to a worker once the transaction commits, to start
    ``countdown`` seconds later if given (after a revoke: once Graph's listings caught up).

    Returns the new run, or None when the tenant already has an open one (then nothing
    is sent: that run is the sync asked for).
    """
    run = sync_run_queue(tenant=tenant, trigger=trigger, requested_by=requested_by)
    if run is not None:
        send_on_commit(sync_tenant_task, run.pk, countdown=countdown or None)
    return run


def sync_run_again(*, run_id: int) -> SyncRun | None:
    """A fresh run of the same tenant and trigger, for the task's retry to send; None when
    another run is open meanwhile. The failed attempt stays in the history."""
    failed = SyncRun.objects.select_related("tenant", "requested_by").get(pk=run_id)
    return sync_run_queue(
        tenant=failed.tenant, trigger=failed.trigger, requested_by=failed.requested_by
    )


def sync_runs_queue_due() -> int:
    """Queue one sync per active tenant that is due; returns how many were queued."""
    now = timezone.now()
    queued = 0
    for tenant in Tenant.objects.filter(status=Tenant.Status.ACTIVE, next_sync_at__lte=now):
        with transaction.atomic():
            run = sync_run_request(tenant=tenant, trigger=SyncRun.Trigger.SCHEDULE)
            if run is None:
                continue  # one is queued or running already
            # Due again at its next slot, whatever this run's fate: a tenant that keeps
            # failing is not hammered every minute.
            Tenant.objects.filter(pk=tenant.pk).update(
                next_sync_at=next_sync_slot(tenant=tenant, after=now)
            )
            queued += 1
    return queued


# Slots count from here; any fixed moment would do, as long as it never changes.
SLOT_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def sync_slot_offset(tenant_id: UUID, interval: timedelta) -> timedelta:
    """Where in each interval the tenant's scheduled syncs fall: a stable hash of its id.

    Tenants onboarded together, or all due after an outage, would otherwise stay in step
    for good and sync in one burst at every interval (Graph throttles per tenant, but the
    workers and the database take the burst). A hash spreads them evenly whatever their
    ids, and stays put across restarts and processes (Python's hash() does not)."""
    seconds = max(int(interval.total_seconds()), 1)
    digest = hashlib.sha256(tenant_id.bytes).digest()
    return timedelta(seconds=int.from_bytes(digest[:8], "big") % seconds)


def next_sync_slot(*, tenant: Tenant, after: datetime) -> datetime:
    """The tenant's first slot at least half an interval after ``after``.

    Slots are one interval apart, at the tenant's offset; after a sync at its slot the
    next is one interval later. A sync off the slot (the first, a manual one, one delayed
    by a busy queue) is followed by the slot half an interval to one and a half later:
    never two syncs in a row."""
    interval = tenant.sync_interval
    if interval <= timedelta(0):
        return after  # no schedule to keep: due at once
    offset = sync_slot_offset(tenant.tenant_id, interval)
    earliest = after + interval / 2
    periods = math.ceil((earliest - SLOT_EPOCH - offset) / interval)
    return SLOT_EPOCH + offset + periods * interval


def sync_runs_fail_abandoned() -> int:
    """Close runs whose worker died: nothing else would ever end them.

    A run started longer ago than the hard time limit (and a minute, for the clocks of
    two hosts), or still open twice that long after it was queued, cannot be alive: the
    limit would have killed it. Its tenant could otherwise never sync again. Each one
    closed is in the audit trail, as a sync that fails by itself is.
    """
    limit = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)
    now = timezone.now()
    error = "The worker running this sync stopped before it finished; the next sync starts afresh."
    closed = 0
    for run in SyncRun.objects.filter(
        Q(status=SyncRun.Status.RUNNING, started_at__lt=now - limit)
        | Q(status__in=SyncRun.OPEN_STATUSES, queued_at__lt=now - 2 * limit)
    ):
        with transaction.atomic():
            if SyncRun.objects.filter(pk=run.pk, status__in=SyncRun.OPEN_STATUSES).update(
                status=SyncRun.Status.FAILED, finished_at=timezone.now(), progress="", error=error
            ):
                audit_record(
                    action=AuditEvent.Action.SYNC_FAILED,
                    tenant=run.tenant,
                    target=f"Sync {run.pk}",
                    details={"sync_run": run.pk, "error": error},
                )
                closed += 1
    return closed


def sync_runs_resend_queued() -> int:
    """Send again the runs queued for longer than the task's hard time limit: their message
    was lost (a broker restarted without persistence, or down when the run was queued).
    A run that its message reaches twice is claimed once (:func:`sync_run_execute`)."""
    cutoff = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    stale = list(
        SyncRun.objects.filter(status=SyncRun.Status.QUEUED, queued_at__lt=cutoff).values_list(
            "pk", flat=True
        )
    )
    for run_id in stale:
        send_on_commit(sync_tenant_task, run_id)
    return len(stale)


def open_run(tenant: Tenant) -> SyncRun | None:
    return SyncRun.objects.filter(tenant=tenant, status__in=SyncRun.OPEN_STATUSES).first()
