"""Delta re-syncs: a tenant's service principals and delegated grants read as what changed
since the last sync (``/servicePrincipals/delta``, ``/oauth2PermissionGrants/delta``, both
v1.0), merged into the collections as the last applied snapshot had them.

The collections are kept raw (the fields the sync selects), so that a snapshot built from
a merged delta goes through exactly the code a full read does (tenants.sync_read), and a
full read can be compared with what the deltas said.

What Graph does, and what follows from it here:

- a round is pages that end with an ``@odata.deltaLink``; the next round starts from it.
  A round is taken in full or not at all: a page that fails fails the sync, nothing of
  the round is applied, and the next sync reads everything (``full_read_reason``);
- an updated object may carry only the properties that changed (delta-query-overview.md:
  "at least the properties that have been updated"): it is merged field by field;
- a removed one is ``{"id", "@removed": {"reason": "changed" | "deleted"}}`` (a service
  principal in the recycle bin is "changed"): either way it is gone from the tenant's
  list, as it is from a plain listing;
- the same change may come again in a later round (replays): merging is idempotent;
- a token too old answers 400 ``syncStateNotFound`` (7 days for directory objects); a
  reset on Graph's side answers 410 Gone (``resyncRequired``): both mean a full read;
- ``appRoleAssignedTo`` has no delta: application grants are read per resource at every
  sync (tenants.sync_read), since they change without any service principal changing.
"""

import json
import logging
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from tenants.graph import GraphClient, GraphError
from tenants.models import Tenant, TenantDelta
from tenants.portal_app import READ_NEEDS

logger = logging.getLogger(__name__)

# oauth2permissiongrant-delta.md: Directory.Read.All, not DelegatedPermissionGrant.Read.All.
GRANT_DELTA_NEEDS = "Directory.Read.All"
# The error codes with which Graph says a delta token is no use any more (errors.md).
EXPIRED_CODES = frozenset({"syncstatenotfound", "syncstateinvalid", "resyncrequired"})
GRANT_KEYS = ("clientId", "consentType", "principalId", "resourceId", "scope")
BASE_FORMAT = 1

Raw = dict[str, dict[str, Any]]


@dataclass
class Collections:
    """The two delta-tracked collections as raw Graph objects by id, and how they were read."""

    service_principals: Raw
    grants: Raw
    # (service principals, grants) deltaLinks to start the next round from; None: Graph
    # gave none, and the next sync reads everything again.
    links: tuple[str, str] | None
    # When the whole tenant was last read (now, for a full read).
    full_read_at: datetime
    delta: bool = False
    # A delta read: the service principals whose catalogs are read again: those that
    # changed or came, and the resources of delegated grants that changed or came (a
    # consent to an API no grant named before). None for a full read: every catalog is.
    changed_principals: set[str] | None = None
    # A delta read: the service principals its round reported as new or changed (their
    # owners and credentials are read again, tenants.facts). None for a full read.
    reported_principals: set[str] | None = None
    # A full read checked against the deltas: how many objects differed.
    discrepancies: int | None = None
    # A delta read in which nothing changed: the kept collections need no rewrite.
    unchanged: bool = False
    notes: list[str] = field(default_factory=list)
    # The collections as they are kept (:meth:`seal`); None until then, or unchanged.
    kept: bytes | None = None

    def seal(self) -> None:
        """Compress the collections for keeping and let go of them: the snapshot has its
        records by now, and the apply phase needs the memory more."""
        if not self.unchanged:
            self.kept = self.dump()
        self.service_principals, self.grants = {}, {}

    def dump(self) -> bytes:
        """The collections as kept between syncs: compressed JSON."""
        data = {
            "format": BASE_FORMAT,
            "service_principals": list(self.service_principals.values()),
            "grants": [
                [grant_id, *(grant.get(key) for key in GRANT_KEYS)]
                for grant_id, grant in self.grants.items()
            ],
        }
        return zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 1)


def base_load(blob: bytes) -> tuple[Raw, Raw]:
    data = json.loads(zlib.decompress(blob))
    if data.get("format") != BASE_FORMAT:
        raise ValueError("the delta state was kept by another version of the portal")
    sps = {sp["id"]: sp for sp in data["service_principals"]}
    grants = {
        row[0]: {"id": row[0], **dict(zip(GRANT_KEYS, row[1:], strict=True))}
        for row in data["grants"]
    }
    return sps, grants


@dataclass(frozen=True)
class Round:
    """One delta round of a collection: what changed, what went, and where the next starts."""

    link: str
    changed: Raw
    removed: set[str]


def delta_round(client: GraphClient, link: str, *, needs: str) -> Round:
    """Every page of a round, from a deltaLink (or a first delta request) to the next
    deltaLink. Raises GraphError for a page that fails: a round is never half-taken."""
    changed: Raw = {}
    removed: set[str] = set()
    next_url = link
    while True:
        body = client.get_json(next_url, needs=needs)
        for item in body.get("value") or []:
            object_id = item.get("id") if isinstance(item, dict) else None
            if not isinstance(object_id, str):
                continue  # no id: nothing it could change; a full read will see it
            if "@removed" in item:
                changed.pop(object_id, None)
                removed.add(object_id)
            else:
                removed.discard(object_id)
                changed[object_id] = {**changed.get(object_id, {}), **item}
        delta_link = body.get("@odata.deltaLink")
        if isinstance(delta_link, str) and delta_link:
            return Round(delta_link, changed, removed)
        next_link = body.get("@odata.nextLink")
        if not isinstance(next_link, str) or not next_link:
            raise GraphError(
                "A delta page had neither a nextLink nor a deltaLink; the round is incomplete",
                retryable=True,
            )
        next_url = next_link


def merged(base: Raw, change: Round) -> Raw:
    """``base`` with a round's changes: removed objects dropped, changed ones updated field
    by field (Graph may send only what changed), new ones added."""
    result = {object_id: obj for object_id, obj in base.items() if object_id not in change.removed}
    for object_id, obj in change.changed.items():
        result[object_id] = {**result.get(object_id, {}), **obj}
    return result


def token_expired(exc: GraphError) -> bool:
    """Whether Graph refused a deltaLink because its sync state is gone (a full read
    follows), rather than failing the call."""
    return exc.status == 410 or (
        exc.status is not None and 400 <= exc.status < 500 and exc.code.lower() in EXPIRED_CODES
    )


def stored_delta(tenant: Tenant) -> TenantDelta | None:
    return TenantDelta.objects.filter(tenant=tenant).first()


def delta_enabled() -> bool:
    return settings.SYNC_FULL_READ_DAYS > 0


def full_read_due(stored: TenantDelta | None, now: datetime) -> bool:
    """Whether this sync reads the whole tenant: there is no delta state yet (a first
    sync, or Graph gave no deltaLink), the last sync failed, or the last full read is
    SYNC_FULL_READ_DAYS old (0: every sync is a full read)."""
    return (
        not delta_enabled()
        or stored is None
        or bool(stored.full_read_reason)
        or now - stored.full_read_at >= timedelta(days=settings.SYNC_FULL_READ_DAYS)
    )


@dataclass(frozen=True)
class Listings:
    """The full reads of both collections (tenants.sync_read), as callables."""

    service_principals: Callable[[], Raw]
    # Given the listed service principals (whose own grant lists may be read).
    grants: Callable[[Raw], Raw]
    sp_delta: str
    grant_delta: str


def collections_read(
    *,
    client: GraphClient,
    stored: TenantDelta | None,
    listings: Listings,
    progress: Callable[[str], None],
) -> Collections:
    """The service principals and delegated grants: from the stored state and one delta
    round where that is enough, else by full listings (checked against the delta round
    when one was taken)."""
    now = timezone.now()
    full = full_read_due(stored, now)
    notes: list[str] = []
    by_delta: Collections | None = None
    if stored is not None and stored.full_read_reason:
        notes.append(f"The whole tenant was read: {stored.full_read_reason}.")
    elif stored is not None and delta_enabled() and (kept := _kept(stored, notes)) is not None:
        # A scheduled full read takes the round too: to check it, and for its deltaLinks.
        progress("Reading what changed since the last sync")
        try:
            by_delta = _delta_collections(client, stored, kept)
        except GraphError as exc:
            if not token_expired(exc):
                raise
            full = True
            notes.append(
                f"The whole tenant was read: Graph no longer had the delta state (HTTP "
                f"{exc.status} {exc.code or 'error'}), so the delta queries started over."
            )
    if by_delta is not None and not full:
        return by_delta
    links = by_delta.links if by_delta is not None else _latest_links(client, listings, notes)
    progress("Reading service principals")
    sps = listings.service_principals()
    progress("Reading delegated grants")
    grants = listings.grants(sps)
    read = Collections(sps, grants, links, full_read_at=now, notes=notes)
    if by_delta is not None:
        read.discrepancies = _differences(by_delta, read)
        if read.discrepancies:
            logger.warning(
                "Full read differs from the delta-built state in %s objects", read.discrepancies
            )
            notes.append(
                f"The full read differs from what the delta queries said in "
                f"{read.discrepancies} service principals or delegated grants (changes made "
                "during the read count too); the full read is what was applied."
            )
    return read


def _kept(stored: TenantDelta, notes: list[str]) -> tuple[Raw, Raw] | None:
    """The kept collections, or None (with a note: a full read follows) where they cannot
    be read, e.g. kept by another version of the portal."""
    try:
        return base_load(bytes(stored.base))
    except (ValueError, KeyError, TypeError, zlib.error) as exc:
        notes.append(f"The whole tenant was read: the kept delta state could not be used ({exc}).")
        return None


def _delta_collections(
    client: GraphClient, stored: TenantDelta, kept: tuple[Raw, Raw]
) -> Collections:
    sp_round = delta_round(client, stored.service_principals_link, needs=READ_NEEDS)
    grant_round = delta_round(client, stored.grants_link, needs=GRANT_DELTA_NEEDS)
    sps, grants = kept
    return Collections(
        merged(sps, sp_round),
        merged(grants, grant_round),
        (sp_round.link, grant_round.link),
        full_read_at=stored.full_read_at,
        delta=True,
        changed_principals={object_id.lower() for object_id in sp_round.changed}
        | {str(g.get("resourceId", "")).lower() for g in grant_round.changed.values()},
        reported_principals={object_id.lower() for object_id in sp_round.changed},
        unchanged=not any(
            (sp_round.changed, sp_round.removed, grant_round.changed, grant_round.removed)
        ),
    )


def _latest_links(
    client: GraphClient, listings: Listings, notes: list[str]
) -> tuple[str, str] | None:
    """deltaLinks from now on ("$deltatoken=latest"), taken before the listings: a change
    made while they are read comes again in the next round, which merging absorbs."""
    try:
        return (
            _latest(client, listings.sp_delta, READ_NEEDS),
            _latest(client, listings.grant_delta, GRANT_DELTA_NEEDS),
        )
    except GraphError as exc:
        if exc.retryable or exc.status is None:
            raise
        notes.append(
            f"Graph refused a delta query (HTTP {exc.status} {exc.code or 'error'}; delegated "
            f"grants' needs {GRANT_DELTA_NEEDS}): the next sync reads the whole tenant again."
        )
        return None


def _latest(client: GraphClient, path: str, needs: str) -> str:
    body = client.get_json(f"{path}&$deltatoken=latest", needs=needs)
    link = body.get("@odata.deltaLink")
    if not isinstance(link, str) or not link:
        raise GraphError(f"GET {path}: Graph gave no deltaLink", retryable=False, status=200)
    return link


def _differences(by_delta: Collections, full: Collections) -> int:
    return _differing(by_delta.service_principals, full.service_principals) + _differing(
        by_delta.grants, full.grants, keys=GRANT_KEYS
    )


def _differing(left: Raw, right: Raw, keys: Iterable[str] | None = None) -> int:
    """How many objects are in one and not the other, or differ in the fields compared."""
    count = len(left.keys() ^ right.keys())
    for object_id in left.keys() & right.keys():
        a, b = left[object_id], right[object_id]
        names = keys if keys is not None else a.keys() | b.keys()
        if any(_normal(name, a.get(name)) != _normal(name, b.get(name)) for name in names):
            count += 1
    return count


def _normal(name: str, value: Any) -> Any:
    # A scope string is a set of scopes: order and extra spaces mean nothing.
    if name == "scope" and isinstance(value, str):
        return sorted(set(value.split()))
    return value


def delta_state_apply(*, tenant: Tenant, collections: Collections) -> None:
    """Keep where the delta queries stand (the collections sealed), inside the sync's
    transaction: exactly when the snapshot built from them is applied. No deltaLink:
    there is no state to keep."""
    if collections.links is None:
        TenantDelta.objects.filter(tenant=tenant).delete()
        return
    links = {
        "service_principals_link": collections.links[0],
        "grants_link": collections.links[1],
    }
    if collections.kept is None:
        # Nothing changed: the kept collections are still right, megabytes not rewritten.
        TenantDelta.objects.filter(tenant=tenant).update(**links)
        return
    TenantDelta.objects.update_or_create(
        tenant=tenant,
        defaults={
            **links,
            "base": collections.kept,
            "full_read_at": collections.full_read_at,
            "full_read_reason": "",
        },
    )


def delta_state_distrust(*, tenant: Tenant, why: str) -> None:
    """The next sync reads everything: this one failed, possibly part-way through a round."""
    TenantDelta.objects.filter(tenant=tenant).update(full_read_reason=why[:200])
