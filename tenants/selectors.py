"""Reads of grant history: any past snapshot, and the diff between two runs."""

from dataclasses import dataclass

from django.db.models import Q, QuerySet

from tenants.models import Grant, SyncRun


def grants_at(run: SyncRun) -> QuerySet[Grant]:
    """The tenant's grants as the given (succeeded) run saw them."""
    return Grant.objects.filter(tenant_id=run.tenant_id, first_seen_run_id__lte=run.pk).filter(
        Q(removed_in_run__isnull=True) | Q(removed_in_run_id__gt=run.pk)
    )


def previous_good_run(run: SyncRun) -> SyncRun | None:
    return (
        SyncRun.objects.filter(tenant_id=run.tenant_id, status=SyncRun.Status.SUCCEEDED, pk__lt=run.pk)
        .order_by("-pk")
        .first()
    )


@dataclass(frozen=True)
class RunDiff:
    since: SyncRun | None
    added: QuerySet[Grant]
    removed: QuerySet[Grant]


def run_diff(run: SyncRun, since: SyncRun | None = None) -> RunDiff:
    """Grants added and removed after ``since`` (default: the run before) up to ``run``.

    Failed runs write no grants, so every change lies in a succeeded run's id range.
    """
    since = since if since is not None else previous_good_run(run)
    floor = since.pk if since else 0
    grants = Grant.objects.filter(tenant_id=run.tenant_id).select_related("client")
    return RunDiff(
        since=since,
        added=grants.filter(first_seen_run_id__gt=floor, first_seen_run_id__lte=run.pk).filter(
            Q(removed_in_run__isnull=True) | Q(removed_in_run_id__gt=run.pk)
        ),
        removed=grants.filter(removed_in_run_id__gt=floor, removed_in_run_id__lte=run.pk, first_seen_run_id__lte=floor),
    )
