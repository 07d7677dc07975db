"""A tenant's grants over time, by verdict and by tier: the series behind its history chart.

Built from the history the sync already keeps (tenants.models: a grant row lives from its
``first_seen_run`` to its ``removed_in_run``), so no snapshot is stored twice. Each grant
row adds one at the run that first saw it and takes one away at the run that no longer
did; two aggregate queries give those changes per run and per grant entry (client,
permission, consent type: a permission that 300 users consented to is one entry, as the
pages count it), and one walk over them in run order gives every point. The queries do
not grow with the number of runs, nor does the walk with the number of grants: only with
the number of changes.

Verdicts are today's: the manifests, feature switches and justifications as they stand
now, applied to what each sync found. (The portal does not keep past switch states, and
an admin reads this chart to see how the grants moved, not how the rules did.) Tiers are
the catalog's.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db.models import Case, Count, F, When
from django.utils import timezone

from permissions.models import Permission, Tier
from permissions.verdicts import PermissionKey, Verdict, apply_justification, evaluate
from tenants.justifications import justification_note, justifications_by_client
from tenants.models import Grant, ServicePrincipal, SyncRun, Tenant
from tenants.report import application_needs, enabled_features
from tenants.slots import GrantSlot

# The newest succeeded syncs a chart shows.
HISTORY_RUNS = 30
VERDICTS = (Verdict.NEEDED, Verdict.UNUSED, Verdict.UNEXPLAINED)
# Tiers in the chart's order, the unclassified last.
TIERS = (Tier.CONTROL_PLANE, Tier.MANAGEMENT_PLANE, Tier.USER_ACCESS, Tier.UNCLASSIFIED)

# One grant entry: (client's appId, permission key, consent type).
_Entry = tuple[UUID, PermissionKey, str]


@dataclass(frozen=True)
class HistoryPoint:
    """The grants one sync found, counted by verdict and by tier."""

    run_id: int
    at: datetime
    by_verdict: dict[str, int]
    by_tier: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_verdict.values())


def grant_history(tenant: Tenant, *, runs: int = HISTORY_RUNS) -> list[HistoryPoint]:
    """A point for each of the tenant's newest ``runs`` succeeded syncs, oldest first."""
    shown = [
        (run_id, finished)
        for run_id, finished in SyncRun.objects.filter(
            tenant=tenant, status=SyncRun.Status.SUCCEEDED, finished_at__isnull=False
        )
        .order_by("-pk")
        .values_list("pk", "finished_at")[:runs]
        if finished is not None
    ][::-1]
    if not shown:
        return []
    changes, entries = _changes(tenant, last_run=shown[-1][0])
    return list(_walk(shown, changes, _buckets(tenant, entries)))


def _changes(tenant: Tenant, *, last_run: int) -> tuple[list[tuple[int, int, int]], list[_Entry]]:
    """(run id, entry number, +n or -n) for every run up to ``last_run`` that added or
    removed rows of an entry, in run order, and the entries by number: two aggregate
    queries, and one for the clients' appIds. Entries are numbered so that the walk
    hashes small ints, not permission keys."""
    # An app role's id only names it where the resource does not publish its value.
    role_id = Case(When(value="", then=F("permission_id")), default=None)
    fields = ("client_id", "resource_app_id", "kind", "value", "role_id", "consent")
    grants = Grant.objects.filter(tenant=tenant).order_by().annotate(role_id=role_id)
    added = (
        grants.filter(first_seen_run_id__lte=last_run)
        .values_list(*fields, "first_seen_run_id")
        .annotate(rows=Count("pk"))
    )
    removed = (
        grants.filter(removed_in_run_id__lte=last_run)
        .values_list(*fields, "removed_in_run_id")
        .annotate(rows=Count("pk"))
    )
    raw_numbers: dict[tuple[Any, ...], int] = {}
    raw_changes = []
    for sign, rows in ((1, added), (-1, removed)):
        for *raw, run_id, count in rows:
            number = raw_numbers.setdefault(tuple(raw), len(raw_numbers))
            raw_changes.append((run_id, number, sign * count))
    app_ids = dict(
        ServicePrincipal.objects.filter(pk__in={raw[0] for raw in raw_numbers}).values_list(
            "pk", "app_id"
        )
    )
    # Rows that differ only in the case of the value are one entry, as Entra has it.
    numbers: dict[_Entry, int] = {}
    canonical = [numbers.setdefault(_entry(raw, app_ids), len(numbers)) for raw in raw_numbers]
    changes = [(run_id, canonical[number], delta) for run_id, number, delta in raw_changes]
    # Within one run, additions before removals never matter: a row is added and removed
    # by different runs.
    changes.sort(key=lambda change: change[0])
    return changes, list(numbers)


def _entry(raw: tuple[Any, ...], app_ids: dict[int, UUID]) -> _Entry:
    client_id, resource_app_id, kind, value, role_id, consent = raw
    # An app role the resource does not publish keeps its id as its name (as in the report).
    key = PermissionKey(str(resource_app_id), kind, value or str(role_id))
    return (app_ids[client_id], key, consent)


def _buckets(tenant: Tenant, entries: list[_Entry]) -> list[tuple[str, str]]:
    """Each entry's (verdict, tier) by today's rules, in the entries' order: five queries
    for them all."""
    app_ids = {app_id for app_id, _key, _consent in entries}
    needs = application_needs(app_ids)
    enabled = enabled_features(tenant, app_ids)
    justified = justifications_by_client([tenant.pk], app_ids)
    today = timezone.localdate()
    keys_by_app: dict[UUID, list[PermissionKey]] = defaultdict(list)
    for app_id, key, _consent in entries:
        keys_by_app[app_id].append(key)
    findings = {
        (app_id, finding.permission): finding
        for app_id, keys in keys_by_app.items()
        for finding in evaluate(
            needs=needs.get(app_id, []), enabled_features=enabled.get(app_id, set()), granted=keys
        ).grants
    }
    tiers = _tiers({key for _app, key, _consent in entries})
    buckets = []
    for app_id, key, consent in entries:
        justification = justified.get((tenant.pk, app_id), {}).get(GrantSlot.of(key, consent))
        finding = apply_justification(
            findings[(app_id, key)],
            justification_note(justification) if justification else None,
            today=today,
        )
        buckets.append((finding.verdict.value, tiers.get(key, Tier.UNCLASSIFIED)))
    return buckets


def _tiers(keys: Iterable[PermissionKey]) -> dict[PermissionKey, str]:
    """The catalog's tier of each permission (one query; PermissionKey ignores case)."""
    keys = set(keys)
    rows = Permission.objects.filter(
        resource__app_id__in={key.resource_app_id for key in keys},
        value__in={key.value for key in keys},
    ).values_list("resource__app_id", "kind", "value", "tier")
    found = {PermissionKey(str(app_id), kind, value): tier for app_id, kind, value, tier in rows}
    return {key: found[key] or Tier.UNCLASSIFIED for key in keys if key in found}


def _walk(
    shown: list[tuple[int, datetime]],
    changes: list[tuple[int, int, int]],
    buckets: list[tuple[str, str]],
) -> Iterable[HistoryPoint]:
    """Apply the changes in run order; at each shown run, count the entries held then.
    An entry counts while at least one of its rows is held."""
    rows = [0] * len(buckets)
    by_verdict: Counter[str] = Counter()
    by_tier: Counter[str] = Counter()
    position = 0
    for run_id, at in shown:
        while position < len(changes) and changes[position][0] <= run_id:
            _run, entry, delta = changes[position]
            before = rows[entry] > 0
            rows[entry] += delta
            after = rows[entry] > 0
            if before != after:
                verdict, tier = buckets[entry]
                step = 1 if after else -1
                by_verdict[verdict] += step
                by_tier[tier] += step
            position += 1
        yield HistoryPoint(
            run_id=run_id,
            at=at,
            by_verdict={verdict.value: by_verdict[verdict.value] for verdict in VERDICTS},
            by_tier={tier.value: by_tier[tier.value] for tier in TIERS},
        )
