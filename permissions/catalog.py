"""Catalog services: Microsoft's permissions reference, EntraOps' tiers, the starter catalog.

An import compares what its inputs say with what the catalog holds and writes only the
differences, in bulk and in one transaction, recording every permission it adds, changes
or removes as a CatalogChange; running it twice writes nothing the second time. All inputs
are read and checked before anything is written, so a malformed file changes nothing.
``catalog_import_run`` also records the import itself as a CatalogImport row, failed or
not; the weekly refresh (``catalog_refresh``) is one of those.

Sources rank starter < reference < graph. The reference upgrades starter rows, but leaves
what a Graph read supplies (ids, names, texts, consent flag, enabled) on graph rows. The
starter (the bundled snapshot of the reference's facts, plus starter_catalog.yaml) sets
the facts of its own rows, fills only empty texts, and on a graph row that no reference
has described fills the privilege level and tier, which Graph never supplies. Tiers
belong to the classification, whatever the row's source.

Every permission the reference or the starter lists is ``published``: public knowledge.
One that only a tenant's Graph described (a custom API's) is not, and each sync records
the tenant it was seen in (``seen_in``): only that tenant's users see it.
"""

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from permissions.catalog_inputs import (
    CallKey,
    CatalogImportError,
    Described,
    Tiers,
    load_yaml,
    merge_descriptions,
    merge_starter,
    merge_tiers,
    parse_classification,
    parse_descriptions,
    parse_input,
    parse_permissions,
    parse_snapshot,
    parse_starter,
)
from permissions.models import (
    MICROSOFT_GRAPH_APP_ID,
    CatalogChange,
    CatalogImport,
    Permission,
    PermissionApiCall,
    Resource,
)

if TYPE_CHECKING:
    from tenants.models import Tenant

_RAW = "https://raw.githubusercontent.com"
REFERENCE_PERMISSIONS_URL = (
    f"{_RAW}/microsoftgraph/microsoft-graph-devx-content/master/permissions/new/permissions.json"
)
REFERENCE_DESCRIPTIONS_URL = (
    f"{_RAW}/microsoftgraph/microsoft-graph-devx-content/master/permissions/"
    "permissions-descriptions.json"
)
CLASSIFICATION_URLS = (
    f"{_RAW}/Cloud-Architekt/AzurePrivilegedIAM/main/Classification/Classification_MsGraphAppRoles.json",
    f"{_RAW}/Cloud-Architekt/AzurePrivilegedIAM/main/Classification/Classification_MsGraphScopes.json",
)
STARTER_CATALOG_PATH = Path(__file__).resolve().parent / "data" / "starter_catalog.yaml"
# The facts of the whole reference, without its texts: see build_catalog_snapshot.
SNAPSHOT_PATH = Path(__file__).resolve().parent / "data" / "catalog-snapshot.json"
Source = Permission.Source
# Fields a Graph read supplies and the reference must not overwrite on graph rows.
_GRAPH_FIELDS = frozenset(
    {"graph_id", "value", "display_name", "description", "admin_consent_required", "enabled"}
)
# What the starter states as fact on its own rows; its texts only fill empty fields.
_STARTER_FACTS = frozenset({"graph_id", "admin_consent_required", "privilege_level", "tier"})
# What the starter may fill on a graph row that no reference has described.
_NOT_FROM_GRAPH = ("privilege_level", "tier")


@dataclass
class CatalogImportResult:
    permissions_added: int = 0
    permissions_changed: int = 0
    permissions_removed: int = 0
    permissions_unchanged: int = 0
    api_calls_added: int = 0
    api_calls_removed: int = 0
    # Calls kept whose least-privileged mark moved.
    api_calls_remarked: int = 0
    # Permissions whose tier this run set or changed (also counted as added or changed).
    tiers_set: int = 0
    # Resource-specific consent (RSC) permissions: team and chat owners grant those, not
    # tenant admins, so the catalog leaves them out.
    skipped: int = 0

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


# --- public services --------------------------------------------------------------------


def catalog_import_reference(
    *,
    permissions: str | None = None,
    descriptions: str | None = None,
    classifications: Sequence[str] = (),
    catalog_import: CatalogImport | None = None,
) -> CatalogImportResult:
    """Import Microsoft's permissions reference and EntraOps' tiers for Microsoft Graph.

    Each argument is a file path or an https:// URL and each is optional: a run updates
    only what its inputs describe. Only a run that reads both Microsoft files can tell
    that a permission is gone, since either file may list a permission the other lacks.
    """
    result = CatalogImportResult()
    listed, result.skipped = parse_input(permissions, parse_permissions) if permissions else ({}, 0)
    described = listed
    if descriptions:
        described = merge_descriptions(
            listed,
            parse_input(descriptions, parse_descriptions),
            permissions_given=bool(permissions),
        )
    tiers = merge_tiers(parse_input(location, parse_classification) for location in classifications)

    with transaction.atomic():
        resource, _ = Resource.objects.get_or_create(
            app_id=MICROSOFT_GRAPH_APP_ID, defaults={"display_name": "Microsoft Graph"}
        )
        plan = _Plan(resource=resource, source=Source.REFERENCE, catalog_import=catalog_import)
        calls: list[tuple[Permission, dict[CallKey, bool]]] = []
        for item in _ids_first(described.values()):
            row = _reference_upsert(plan, item)
            if item.api_calls is not None:
                calls.append((row, item.api_calls))
        if permissions and descriptions:
            plan.remove_unlisted()
        for kind_tiers in tiers:
            plan.apply_tiers(kind_tiers)
        plan.save(result)
        _sync_api_calls(resource=resource, wanted=calls, result=result)
        _findings_refresh(result)
    return result


def catalog_import_starter(
    *,
    path: Path = STARTER_CATALOG_PATH,
    snapshot: Path | None = SNAPSHOT_PATH,
    catalog_import: CatalogImport | None = None,
) -> CatalogImportResult:
    """Load the built-in catalog: the snapshot of the reference's facts merged with the
    starter file (our own texts, and resources the reference does not cover).

    Adds what is missing and sets the facts of its own rows (a newer snapshot brings
    newer facts); fills only empty texts; leaves rows from the reference alone, and on
    rows from Graph fills only an unknown privilege level and tier. Removes nothing.
    """
    resources = parse_input(str(path), parse_starter, loader=load_yaml)
    if snapshot is not None:
        resources = merge_starter(parse_input(str(snapshot), parse_snapshot), resources)
    result = CatalogImportResult()
    with transaction.atomic():
        for app_id, display_name, described in resources:
            resource, _ = Resource.objects.get_or_create(
                app_id=app_id, defaults={"display_name": display_name}
            )
            plan = _Plan(resource=resource, source=Source.STARTER, catalog_import=catalog_import)
            for item in _ids_first(described):
                row = plan.match(item)
                if row is None:
                    plan.add(item)
                elif row.source == Source.STARTER:
                    facts = {k: v for k, v in item.fields.items() if k in _STARTER_FACTS}
                    texts = {k: v for k, v in item.fields.items() if k not in _STARTER_FACTS}
                    plan.update(row, facts, texts)
                elif row.source == Source.GRAPH and row.privilege_level is None:
                    # A reference import sets the level of every row it describes: without
                    # one, nothing has classified this row yet.
                    plan.update(
                        row, {}, {k: item.fields[k] for k in _NOT_FROM_GRAPH if k in item.fields}
                    )
                else:
                    # A richer source owns this row; the starter has nothing to add.
                    plan.examine(row)
            plan.save(result)
        _findings_refresh(result)
    return result


def _findings_refresh(result: CatalogImportResult) -> None:
    """Tiers and privilege levels weigh in every tenant's stored findings (control plane,
    highest tier, risk): recomputed in the import's transaction when a permission changed.
    API calls alone change nothing stored (narrower suggestions are worked out per page)."""
    if result.permissions_added or result.permissions_changed or result.permissions_removed:
        from tenants.findings import findings_refresh_all  # tenants reads the catalog

        findings_refresh_all()


def catalog_import_run(
    *,
    trigger: str,
    starter: bool = False,
    permissions: str | None = None,
    descriptions: str | None = None,
    classifications: Sequence[str] = (),
) -> CatalogImport | None:
    """Run one import (the starter, or reference files and URLs) recorded as a CatalogImport.

    A bad input or an unreachable URL ends the row failed, with the one-line reason, and
    changes nothing else; the row is returned either way. Anything unexpected is recorded
    too, then raised. None when another import is running: two at once would race on the
    same rows.
    """
    locations = [] if starter else [x for x in (permissions, descriptions, *classifications) if x]
    run = _import_claim(
        source=Source.STARTER if starter else Source.REFERENCE,
        trigger=trigger,
        locations=locations,
    )
    if run is None:
        return None
    try:
        if starter:
            result = catalog_import_starter(catalog_import=run)
        else:
            result = catalog_import_reference(
                permissions=permissions,
                descriptions=descriptions,
                classifications=classifications,
                catalog_import=run,
            )
    except CatalogImportError as exc:
        _import_finish(run, status=CatalogImport.Status.FAILED, error=str(exc))
        return run
    except BaseException as exc:
        # Also a Ctrl-C in the command: a row left running would hold off every import
        # until it counts as abandoned.
        _import_finish(run, status=CatalogImport.Status.FAILED, error=_one_line(exc))
        raise
    _import_finish(run, status=CatalogImport.Status.SUCCEEDED, result=result)
    return run


def catalog_refresh(*, trigger: str = CatalogImport.Trigger.SCHEDULE) -> CatalogImport | None:
    """Import the reference and the tiers from their public URLs; see catalog_import_run."""
    # The module's URLs are read when called, not bound when defined: tests point them
    # at local files.
    return catalog_import_run(
        trigger=trigger,
        permissions=REFERENCE_PERMISSIONS_URL,
        descriptions=REFERENCE_DESCRIPTIONS_URL,
        classifications=CLASSIFICATION_URLS,
    )


def _import_claim(*, source: str, trigger: str, locations: list[str]) -> CatalogImport | None:
    now = timezone.now()
    # A running row older than a task may live belongs to a worker or a command that died.
    stale = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    CatalogImport.objects.filter(status=CatalogImport.Status.RUNNING, started_at__lt=stale).update(
        status=CatalogImport.Status.FAILED,
        finished_at=now,
        error="Abandoned: it did not finish (its worker or command stopped).",
    )
    try:
        with transaction.atomic():
            return CatalogImport.objects.create(
                source=source, trigger=trigger, locations=locations, started_at=now
            )
    except IntegrityError:
        return None


def _import_finish(
    run: CatalogImport, *, status: str, result: CatalogImportResult | None = None, error: str = ""
) -> None:
    run.status = status
    run.finished_at = timezone.now()
    run.error = error
    for counted in fields(CatalogImportResult) if result else ():
        setattr(run, counted.name, getattr(result, counted.name))
    run.save()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(frozen=True)
class GraphPermission:
    """A permission as a resource's service principal in a tenant defines it."""

    resource_app_id: str
    resource_name: str
    kind: str
    value: str
    graph_id: str
    display_name: str
    description: str
    admin_consent_required: bool
    enabled: bool


def catalog_apply_graph(
    *, entries: Iterable[GraphPermission], tenant: "Tenant | None" = None
) -> CatalogImportResult:
    """Upsert permissions read from Graph: Graph is the authority for ids and texts.

    Adds and updates only: a tenant's sync sees the catalogs of the resources its grants
    name, so a permission it does not mention is not gone. Records that ``tenant`` saw
    each of them, which lets its users see those nobody published. Runs inside the
    caller's transaction.
    """
    by_resource: dict[str, list[GraphPermission]] = {}
    for entry in entries:
        by_resource.setdefault(entry.resource_app_id.lower(), []).append(entry)
    result = CatalogImportResult()
    for app_id, resource_entries in by_resource.items():
        resource, _ = Resource.objects.get_or_create(
            app_id=app_id, defaults={"display_name": resource_entries[0].resource_name[:200]}
        )
        plan = _Plan(resource=resource, source=Source.GRAPH)
        described = [
            Described(
                kind=entry.kind,
                value=entry.value,
                fields={
                    "graph_id": uuid.UUID(entry.graph_id),
                    "display_name": entry.display_name[:300],
                    "description": entry.description,
                    "admin_consent_required": entry.admin_consent_required,
                    "enabled": entry.enabled,
                },
            )
            for entry in resource_entries
        ]
        for item in _ids_first(described):
            row = plan.match(item)
            if row is None:
                plan.add(item)
            else:
                plan.update(row, {**item.fields, "value": item.value, "source": Source.GRAPH}, {})
        plan.save(result)
        if tenant is not None:
            _record_seen(tenant, sorted(plan.listed))
    return result


def _record_seen(tenant: "Tenant", permission_ids: list[int]) -> None:
    """Adds ``tenant`` to ``seen_in`` of the permissions not recorded there yet: an
    unchanged re-sync writes nothing."""
    through = Permission.seen_in.through
    known = set(
        through.objects.filter(tenant=tenant, permission_id__in=permission_ids).values_list(
            "permission_id", flat=True
        )
    )
    through.objects.bulk_create(
        [through(permission_id=pk, tenant=tenant) for pk in permission_ids if pk not in known],
        batch_size=2000,
        ignore_conflicts=True,  # a sync of the same tenant in another worker
    )


# --- writing ----------------------------------------------------------------------------


def _ids_first(described: Iterable[Described]) -> list[Described]:
    # Matching by id first means a renamed permission claims its row before its old name
    # could be matched by value.
    return sorted(described, key=lambda item: "graph_id" not in item.fields)


def _reference_upsert(plan: "_Plan", item: Described) -> Permission:
    row = plan.match(item)
    if row is None:
        return plan.add(item)
    fields, gaps = item.fields, item.gaps
    if row.source == Source.GRAPH:
        fields = {k: v for k, v in fields.items() if k not in _GRAPH_FIELDS}
        gaps = {k: v for k, v in gaps.items() if k not in _GRAPH_FIELDS}
    else:
        fields = {**fields, "value": item.value, "source": Source.REFERENCE}
    plan.update(row, fields, gaps)
    return row


class _Plan:
    """The rows of one resource, and what an import will write to them."""

    def __init__(
        self, *, resource: Resource, source: str, catalog_import: CatalogImport | None = None
    ) -> None:
        self.resource = resource
        self.source = source
        self.catalog_import = catalog_import
        self.now = timezone.now()
        self.rows = list(Permission.objects.filter(resource=resource))
        self.by_id = {(r.kind, r.graph_id): r for r in reversed(self.rows) if r.graph_id}
        self.by_value = {(r.kind, r.value): r for r in self.rows}
        self.new: list[Permission] = []
        self.claimed: set[int] = set()
        self.examined: set[int] = set()
        # The rows this run's inputs list (new ones get their pk when saved).
        self.listed: set[int] = set()
        # pk -> {"field": [old, new]}; and the action when it is not "changed".
        self.details: dict[int, dict[str, list[Any]]] = {}
        self.actions: dict[int, str] = {}

    def match(self, item: Described) -> Permission | None:
        by_value = self.by_value.get((item.kind, item.value))
        graph_id = item.fields.get("graph_id")
        by_id = self.by_id.get((item.kind, graph_id)) if graph_id else None
        # Renaming the id's row onto a name another row holds would break uniqueness:
        # then the row holding the name is the match.
        row = by_id if by_id is not None and by_value in (None, by_id) else by_value
        if row is None or row.pk in self.claimed:
            return None
        self.claimed.add(row.pk)
        self.listed.add(row.pk)
        return row

    def add(self, item: Described) -> Permission:
        row = Permission(resource=self.resource, kind=item.kind, value=item.value)
        for name, value in {**item.gaps, **item.fields}.items():
            setattr(row, name, value)
        row.source = self.source
        row.published = self.source != Source.GRAPH
        self.new.append(row)
        return row

    def examine(self, row: Permission) -> None:
        self.examined.add(row.pk)

    def update(self, row: Permission, fields: Mapping[str, Any], gaps: Mapping[str, Any]) -> None:
        self.examine(row)
        if row.removed_at is not None and self.source == Source.REFERENCE:
            # Listed again: it is back, whatever else changed.
            self._set(row, "removed_at", None)
            self.actions[row.pk] = CatalogChange.Action.ADDED
        for name, value in fields.items():
            self._set(row, name, value)
        for name, value in gaps.items():
            if getattr(row, name) in (None, "") and value not in (None, ""):
                self._set(row, name, value)

    def remove_unlisted(self) -> None:
        for row in self.rows:
            if row.pk not in self.claimed and row.source == Source.REFERENCE and not row.removed_at:
                self.examine(row)
                self._set(row, "removed_at", self.now)
                self.actions[row.pk] = CatalogChange.Action.REMOVED

    def apply_tiers(self, tiers: Tiers) -> None:
        for row in [*self.rows, *self.new]:
            if row.kind != tiers.kind:
                continue
            by_id = tiers.by_id.get(row.graph_id) if row.graph_id else None
            tier = by_id or tiers.by_value.get(row.value, "")
            if row.pk is None:
                row.tier = tier
            else:
                self.examine(row)
                self._set(row, "tier", tier)

    def _set(self, row: Permission, name: str, value: Any) -> None:
        old = getattr(row, name)
        if old != value:
            setattr(row, name, value)
            self.details.setdefault(row.pk, {})[name] = [_jsonable(old), _jsonable(value)]

    def save(self, result: CatalogImportResult) -> None:
        changed = [row for row in self.rows if row.pk in self.details]
        # Updates first: a rename frees the name that a new row may take.
        if changed:
            fields = {name for pk in self.details for name in self.details[pk]}
            for row in changed:
                row.updated_at = self.now  # bulk_update doesn't apply auto_now
            Permission.objects.bulk_update(changed, [*fields, "updated_at"], batch_size=500)
        Permission.objects.bulk_create(self.new, batch_size=500)
        self.listed.update(row.pk for row in self.new)
        unpublished = [row.pk for row in self.rows if row.pk in self.claimed and not row.published]
        if self.source != Source.GRAPH and unpublished:
            # Not a change anyone looks for: no CatalogChange, no count.
            Permission.objects.filter(pk__in=unpublished).update(published=True)
        records = [self._record(row, CatalogChange.Action.ADDED, {}) for row in self.new]
        for row in changed:
            action = self.actions.get(row.pk, CatalogChange.Action.CHANGED)
            details = {k: v for k, v in self.details[row.pk].items() if k != "removed_at"}
            records.append(self._record(row, action, details))
        CatalogChange.objects.bulk_create(records, batch_size=500)

        counts = Counter(record.action for record in records)
        result.permissions_added += counts[CatalogChange.Action.ADDED]
        result.permissions_changed += counts[CatalogChange.Action.CHANGED]
        result.permissions_removed += counts[CatalogChange.Action.REMOVED]
        result.permissions_unchanged += len(self.examined - set(self.details))
        result.tiers_set += sum(1 for row in self.new if row.tier) + sum(
            1 for pk in self.details if "tier" in self.details[pk]
        )

    def _record(self, row: Permission, action: str, details: dict[str, Any]) -> CatalogChange:
        return CatalogChange(
            permission=row,
            resource_app_id=self.resource.app_id,
            kind=row.kind,
            value=row.value,
            action=action,
            details=details,
            source=self.source,
            catalog_import=self.catalog_import,
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _sync_api_calls(
    *,
    resource: Resource,
    wanted: Sequence[tuple[Permission, dict[CallKey, bool]]],
    result: CatalogImportResult,
) -> None:
    """Make each listed permission's API calls exactly the wanted set, touching only the difference."""
    if not wanted:
        return
    have: dict[int, dict[CallKey, tuple[int, bool]]] = defaultdict(dict)
    rows = PermissionApiCall.objects.filter(permission__resource=resource).values_list(
        "pk", "permission_id", "scheme", "method", "path", "least_privileged"
    )
    for pk, permission_id, scheme, method, path, least in rows.iterator(chunk_size=5000):
        have[permission_id][(scheme, method, path)] = (pk, least)

    to_create: list[PermissionApiCall] = []
    to_remark: list[PermissionApiCall] = []
    to_delete: list[int] = []
    for permission, calls in wanted:
        existing = have.get(permission.pk, {})
        for (scheme, method, path), least in calls.items():
            found = existing.get((scheme, method, path))
            if found is None:
                to_create.append(
                    PermissionApiCall(
                        permission=permission,
                        scheme=scheme,
                        method=method,
                        path=path,
                        least_privileged=least,
                    )
                )
            elif found[1] != least:
                to_remark.append(PermissionApiCall(pk=found[0], least_privileged=least))
        to_delete.extend(pk for key, (pk, _) in existing.items() if key not in calls)

    PermissionApiCall.objects.bulk_create(to_create, batch_size=2000)
    PermissionApiCall.objects.bulk_update(to_remark, ["least_privileged"], batch_size=500)
    for chunk in _chunks(to_delete, 500):
        PermissionApiCall.objects.filter(pk__in=chunk).delete()
    result.api_calls_added += len(to_create)
    result.api_calls_remarked += len(to_remark)
    result.api_calls_removed += len(to_delete)


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
