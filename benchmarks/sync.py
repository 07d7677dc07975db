"""The consent sync of a large tenant on PostgreSQL, against the emulator in its own process.

Three syncs of one generated tenant (the size `benchmarks.emulator_paging` pages through):
the first, an unchanged re-sync, and a re-sync after 1% of the tenant's Graph grant
objects changed and a consent was given outside the portal. For each: Graph requests
against their lower bound, wall seconds against the floor, the apply's seconds and the
finding rows it wrote, grant rows written and peak memory, with PASS/FAIL against the targets. The re-syncs are delta re-syncs (issue 14):
the unchanged one's Graph requests as a share of the full first sync's (at most 30%), and
whether the changed one found every change Graph made (its added and removed grants are
exactly what differs between the emulator's state before and after the change).

How things are counted:
- Graph requests: the emulator's request counters, without Entra's (token, discovery) and
  without `$batch` envelopes: each request inside a `$batch` counts on its own, as it does
  for Graph's throttling. The client's own count (HTTP round trips, a `$batch` as one,
  retries included) is printed beside it.
- Lower bound: every read a full sync makes (``GraphSide.truth``), its requests counted
  from the emulator's state as Graph pages them: the organization; the two
  `$deltatoken=latest` links a later delta re-sync starts from; the service principal
  list and the delegated grants at `$top=999`, with Graph's count of the grants; the pages
  of `appRoleAssignedTo` of each resource that has assignments; one catalog read per
  resource that grants name; owners and credentials (`$expand=owners`, 100 a page) and the
  tenant's app registrations; the sign-in activity report and the directory audits (both
  refused here: the portal lacks AuditLog.Read.All; the first 403 is asked again once with
  a fresh token); the consenting users' names (`directoryObjects/getByIds`, 1,000 ids a
  request); the portal's role holders. The re-syncs print the full sync's bound beside
  theirs, for scale.
- Floor: the lower bound's requests, one after the other, made by a bare loop (requests,
  the same token, CA, `$select` and bodies, following `@odata.nextLink`, JSON parsed), in
  the same run right before the sync; the better of two passes. It checks that it made
  exactly the bound's requests.
- Apply: the seconds of the sync's apply phase (its one transaction), beside the finding
  rows it wrote and what a full refresh of the findings takes at that point (rolled back):
  what each sync's apply cost before it refreshed only the clients it changed.
- Grant rows written: rows the run inserted or closed (first_seen_run or removed_in_run is
  the run), checked against PostgreSQL's own insert/update/delete counters of the table.
- Peak memory: each sync runs in a forked child, as in a prefork Celery worker; its peak
  RSS (VmHWM, reset when the child starts) includes what it inherited from the parent.

Settings: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/portal_bench); the
database is created if missing and its tenant tables are emptied first.
"""

from __future__ import annotations

import math
import os
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from benchmarks._database import database_ensure
from benchmarks._fork import ChildFailed, in_child
from benchmarks.emulator_paging import (
    GRAPH_APP_ID,
    TENANT,
    Running,
    app_token,
    collection_urls,
    emulator_process,
    one_client,
    pass_through,
    session,
)

if TYPE_CHECKING:
    from tenants.models import Tenant

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal_bench"
MAX_REQUESTS_RATIO = 1.2
MAX_WALL_RATIO = 2.0
MAX_PEAK_MB = 400
MAX_DELTA_SHARE = 0.30  # an unchanged re-sync's Graph requests, of a full sync's
CHANGED_SHARE = 0.01
PAGE_SIZE = 999
EXPAND_PAGE_SIZE = 100
BATCH_LIMIT = 20
SYNC_TIMEOUT = 600
HTTP_TIMEOUT = 60
AUDITS = "GET /v1.0/auditLogs/directoryAudits"


@dataclass(frozen=True)
class Read:
    """One read a full sync must make, with the requests it takes from the emulator's
    state: ``paged`` follows nextLinks (``requests`` is its page count), otherwise
    ``requests`` of the same request (a POST with ``body``; a GET Graph answers 403 when
    ``refused``)."""

    what: str
    url: str
    requests: int
    paged: bool = True
    body: dict[str, Any] | None = None
    headers: dict[str, str] | None = None
    refused: bool = False


@dataclass(frozen=True)
class GraphTruth:
    """What the emulator holds for the tenant, so what a full sync has to read."""

    reads: list[Read]

    def lower_bound(self) -> int:
        return sum(read.requests for read in self.reads)

    def by_what(self) -> dict[str, int]:
        counted: Counter[str] = Counter()
        for read in self.reads:
            counted[read.what] += read.requests
        return dict(counted)


@dataclass(frozen=True)
class ChildResult:
    wall: float
    apply: float
    client_requests: int
    peak_kb: int
    start_kb: int


@dataclass(frozen=True)
class Figures:
    name: str
    graph_requests: int
    client_requests: int
    lower_bound: int
    bound_reads: dict[str, int]
    wall: float
    floor: float
    apply: float
    full_findings: float
    findings_written: int
    rows_written: int
    table_writes: int
    peak_mb: float
    start_mb: float
    added: int
    removed: int
    unchanged: bool
    run_id: int
    read_mode: str


def main() -> None:
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    database_ensure(database_url)
    with tempfile.TemporaryDirectory() as folder, emulator_process(Path(folder)) as running:
        django_setup(database_url, running)
        for line in run(running):
            print(line, flush=True)


def django_setup(database_url: str, running: Running) -> None:
    """Settings come from the environment, so it is set before Django reads it."""
    os.environ.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        # As in production: with DEBUG, Django keeps every query's SQL.
        DEBUG="0",
        # DEBUG off needs a real key (portal/settings.py); this one lives for one run.
        SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL=database_url,
        GRAPH_URL=running.url,
        ENTRA_LOGIN_URL=running.url,
        GRAPH_CA_BUNDLE=running.ca_bundle,
        PORTAL_CLIENT_ID=running.client_id,
        PORTAL_CLIENT_SECRET=running.secret,
    )
    for name in ("PORTAL_CLIENT_CERTIFICATE", "PORTAL_CLIENT_PRIVATE_KEY"):
        os.environ.pop(name, None)
        os.environ.pop(f"{name}_FILE", None)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def run(running: Running) -> list[str]:
    from tenants.services import tenant_add

    tables_clear()
    with session(running) as http:
        state = http.get(f"{running.url}/_emulator/state", timeout=HTTP_TIMEOUT).json()
        tenant_id = state["tenants"][0]["id"]
        headers = {"Authorization": f"Bearer {app_token(http, running, tenant_id)}"}
        emulator_lines = one_client(http, collection_urls(http, running.url, headers), headers)
        tenant = tenant_add(tenant_id=tenant_id, name="Benchmark")[0]
        graph = GraphSide(http, running.url, tenant_id, headers, running.client_id)
        results = [measure("first sync", tenant, graph)]
        results.append(measure("unchanged re-sync", tenant, graph, unchanged=True))
        before = graph.grant_identities()
        changed = graph.change_share(CHANGED_SHARE) + "; " + graph.consent_outside()
        after = graph.grant_identities()
        results.append(measure("re-sync, 1% changed", tenant, graph))
        denied = graph.requests_to(AUDITS)
        graph.grant_portal(running.client_id, "AuditLog.Read.All")
        history = consent_history_figures(tenant, denied)
    # Last: its rolled-back rows would slow a sync after it.
    first_insert = insert_seconds(first_seen_run=results[0].run_id)
    counts = ", ".join(f"{value} {key.replace('_', ' ')}" for key, value in TENANT.items())
    return [
        f"sync: generated tenant ({counts}); PostgreSQL; the emulator in its own process",
        *emulator_lines,
        "sync: lower bound, a full sync's reads before the first: "
        + ", ".join(f"{what} {n}" for what, n in results[0].bound_reads.items()),
        *table(results),
        f"sync: the 1% change: {changed}",
        *delta_lines(results, before, after),
        f"sync: PostgreSQL alone inserts the first sync's {results[0].added} rows in "
        f"{first_insert:.2f} s (INSERT ... SELECT, the table's indexes and foreign keys)",
        history,
    ]


def tables_clear() -> None:
    with connection_cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tenant_tables())} RESTART IDENTITY CASCADE")


def tables_vacuum() -> None:
    with connection_cursor() as cursor:
        for name in tenant_tables():
            cursor.execute(f"VACUUM ANALYZE {name}")


def tenant_tables() -> list[str]:
    from django.apps import apps
    from django.db import connection

    return [
        connection.ops.quote_name(model._meta.db_table)
        for model in apps.get_app_config("tenants").get_models()
    ]


def connection_cursor() -> Any:
    from django.db import connection

    return connection.cursor()


# -- the Graph side: ground truth, the floor, changes ------------------------------------


class GraphSide:
    """The emulator as the benchmark sees it: raw HTTP with the portal app's own token."""

    def __init__(
        self,
        http: requests.Session,
        url: str,
        tenant_id: str,
        headers: dict[str, str],
        portal_app_id: str,
    ) -> None:
        self.http, self.url, self.tenant_id, self.headers = http, url, tenant_id, headers
        self.portal_app_id = portal_app_id

    def truth(self) -> GraphTruth:
        """Every read of a full sync (tenants.sync_read and the evidence it gathers), its
        requests counted from the emulator's state as Graph pages them."""
        from tenants.consenting_users import IDS_PER_REQUEST
        from tenants.facts import APPLICATION_FIELDS, FACT_FIELDS, OWNER_FIELDS
        from tenants.graph import ORGANIZATION_PATH
        from tenants.memberships import HOLDER_FIELDS
        from tenants.provenance import consent_events_url
        from tenants.signins import FIELDS as SIGN_IN_FIELDS
        from tenants.sync_read import (
            ASSIGNMENT_FIELDS,
            CATALOG_FIELDS,
            DELEGATED_FIELDS,
            SP_FIELDS,
        )

        state = self._get(f"{self.url}/_emulator/state?tenant={self.tenant_id}")
        sps, assignments = state["servicePrincipals"], state["appRoleAssignments"]
        delegated = state["oauth2PermissionGrants"]
        by_resource = Counter(a["resourceId"] for a in assignments)
        granted = {a["resourceId"] for a in assignments if a["principalType"] == "ServicePrincipal"}
        granted |= {grant["resourceId"] for grant in delegated}
        portal = next(sp["id"] for sp in sps if sp["appId"] == self.portal_app_id)
        portal_groups = sorted(
            {
                a["principalId"]
                for a in assignments
                if a["resourceId"] == portal and a["principalType"] == "Group"
            }
        )
        consenting = sorted({g["principalId"].lower() for g in delegated if g.get("principalId")})
        base = f"{self.url}/v1.0"
        top = f"$top={PAGE_SIZE}"
        return GraphTruth(
            [
                Read("organization", f"{self.url}/v1.0{ORGANIZATION_PATH}", 1, False),
                Read(
                    "deltaLinks",
                    f"{base}/servicePrincipals/delta?$select={SP_FIELDS}&$deltatoken=latest",
                    1,
                    False,
                ),
                Read(
                    "deltaLinks",
                    f"{base}/oauth2PermissionGrants/delta?"
                    f"$select={DELEGATED_FIELDS}&$deltatoken=latest",
                    1,
                    False,
                ),
                Read(
                    "service principals",
                    f"{base}/servicePrincipals?$select={SP_FIELDS}&{top}",
                    _pages(len(sps)),
                ),
                *(
                    Read(
                        "app-role assignments",
                        f"{base}/servicePrincipals/{resource}/"
                        f"appRoleAssignedTo?$select={ASSIGNMENT_FIELDS}&{top}",
                        _pages(n),
                    )
                    for resource, n in by_resource.items()
                ),
                Read(
                    "delegated grants",
                    f"{base}/oauth2PermissionGrants?$select={DELEGATED_FIELDS}&{top}",
                    _pages(len(delegated)),
                ),
                Read(
                    "delegated grants",
                    f"{base}/oauth2PermissionGrants/$count",
                    1,
                    False,
                    headers={"ConsistencyLevel": "eventual", "Accept": "text/plain"},
                ),
                *(
                    Read(
                        "catalog",
                        f"{base}/servicePrincipals/{resource}?$select={CATALOG_FIELDS}",
                        1,
                        False,
                    )
                    for resource in sorted(granted)
                ),
                # Graph expands directory objects 100 to a page.
                Read(
                    "owners, credentials",
                    f"{base}/servicePrincipals?$select={FACT_FIELDS}"
                    f"&$expand=owners($select={OWNER_FIELDS})&$top={EXPAND_PAGE_SIZE}",
                    _pages(len(sps), EXPAND_PAGE_SIZE),
                ),
                Read(
                    "owners, credentials",
                    f"{base}/applications?$select={APPLICATION_FIELDS}&{top}",
                    max(1, _pages(self._count(f"{base}/applications?$select=id&{top}"))),
                ),
                # Both reports need AuditLog.Read.All, which the portal is granted only
                # after the measured syncs (consent_history_figures): each is refused. The
                # first 403 a sync meets is asked again once with a fresh token (roles
                # granted minutes ago: tenants.graph), so the sign-in report takes two.
                Read(
                    "sign-in activity",
                    f"{self.url}/beta/reports/servicePrincipalSignInActivities"
                    f"?$select={SIGN_IN_FIELDS}&{top}",
                    2,
                    False,
                    refused=True,
                ),
                Read(
                    "directory audits", f"{base}{consent_events_url(None)}", 1, False, refused=True
                ),
                *(
                    Read(
                        "consenting users' names",
                        f"{base}/directoryObjects/getByIds",
                        1,
                        False,
                        body={
                            "ids": consenting[start : start + IDS_PER_REQUEST],
                            "types": ["user"],
                        },
                    )
                    for start in range(0, len(consenting), IDS_PER_REQUEST)
                ),
                Read(
                    "role holders",
                    f"{base}/servicePrincipals(appId='{self.portal_app_id}')?$select=id,appRoles",
                    1,
                    False,
                ),
                Read(
                    "role holders",
                    f"{base}/servicePrincipals/{portal}/appRoleAssignedTo"
                    f"?$select={HOLDER_FIELDS}&{top}",
                    max(1, _pages(by_resource[portal])),
                ),
                *(
                    Read(
                        "role holders",
                        f"{base}/groups/{group}/transitiveMembers?$select=id&{top}",
                        1,
                    )
                    for group in portal_groups
                ),
            ]
        )

    def floor(self, truth: GraphTruth) -> float:
        """The better of two passes, so that the emulator's first-touch costs do not count."""
        return min(self._floor_pass(truth), self._floor_pass(truth))

    def _floor_pass(self, truth: GraphTruth) -> float:
        """Every read of the bound, one after the other: its requests, and no more."""
        made = 0
        started = time.perf_counter()
        for read in truth.reads:
            headers = {**self.headers, **(read.headers or {})}
            if read.paged:
                made += pass_through(self.http, read.url, headers)[0]
                continue
            for _ in range(read.requests):
                response = self.http.request(
                    "POST" if read.body is not None else "GET",
                    read.url,
                    json=read.body,
                    headers=headers,
                    timeout=HTTP_TIMEOUT,
                )
                if response.ok == read.refused:
                    raise RuntimeError(
                        f"the floor's {read.what} read answered {response.status_code}"
                    )
                made += 1
        elapsed = time.perf_counter() - started
        if made != truth.lower_bound():
            raise RuntimeError(
                f"the floor made {made} requests, not the lower bound's {truth.lower_bound()}"
            )
        return elapsed

    def _count(self, url: str) -> int:
        return pass_through(self.http, url, self.headers)[1]

    def counters_reset(self) -> None:
        self.http.delete(f"{self.url}/_emulator/counters", timeout=HTTP_TIMEOUT).raise_for_status()

    def graph_requests(self) -> int:
        """Graph requests since the reset: no Entra endpoints, no `$batch` envelopes."""
        counts = self._get(f"{self.url}/_emulator/counters")["requests"]
        return sum(
            count
            for key, count in counts.items()
            if key.split(" ", 1)[1].startswith(("/v1.0/", "/beta/")) and key != "POST /v1.0/$batch"
        )

    def change_share(self, share: float) -> str:
        """Through Graph: re-creates `share` of the app-role assignments (each gets a new
        id: one grant gone, one new) and swaps one scope of `share` of the delegated
        grants (one scope gone, one new)."""
        state = self._get(f"{self.url}/_emulator/state?tenant={self.tenant_id}")
        assignments = _every_nth(state["appRoleAssignments"], share)
        delegated = _every_nth(state["oauth2PermissionGrants"], share)
        self._batch(
            {
                "method": "DELETE",
                "url": f"/servicePrincipals/{a['resourceId']}/appRoleAssignedTo/{a['id']}",
            }
            for a in assignments
        )
        self._batch(
            {
                "method": "POST",
                "url": f"/servicePrincipals/{a['resourceId']}/appRoleAssignedTo",
                "headers": {"Content-Type": "application/json"},
                "body": {key: a[key] for key in ("principalId", "resourceId", "appRoleId")},
            }
            for a in assignments
        )
        self._batch(
            {
                "method": "PATCH",
                "url": f"/oauth2PermissionGrants/{grant['id']}",
                "headers": {"Content-Type": "application/json"},
                "body": {"scope": _swap_one_scope(grant["scope"])},
            }
            for grant in delegated
        )
        return (
            f"{len(assignments)} of {len(state['appRoleAssignments'])} app-role assignments "
            f"re-created, one scope swapped in {len(delegated)} of "
            f"{len(state['oauth2PermissionGrants'])} delegated grants"
        )

    def requests_to(self, template: str) -> int:
        """Requests since the reset to one route, e.g. ``GET /v1.0/auditLogs/directoryAudits``."""
        return int(self._get(f"{self.url}/_emulator/counters")["requests"].get(template, 0))

    def grant_portal(self, portal_app_id: str, value: str) -> None:
        """Through Graph: gives the portal's app one more Microsoft Graph app role."""
        base = f"{self.url}/v1.0/servicePrincipals"
        resource = self._get(f"{base}(appId='{GRAPH_APP_ID}')?$select=id,appRoles")
        portal = self._get(f"{base}(appId='{portal_app_id}')?$select=id")
        role = next(r["id"] for r in resource["appRoles"] if r["value"] == value)
        body = {"principalId": portal["id"], "resourceId": resource["id"]}
        self._batch(
            [
                {
                    "method": "POST",
                    "url": f"/servicePrincipals/{resource['id']}/appRoleAssignedTo",
                    "headers": {"Content-Type": "application/json"},
                    "body": {**body, "appRoleId": role},
                }
            ]
        )

    def consent_outside(self) -> str:
        """An admin consent given in Entra, not through the portal: a client with no
        delegated grant gets one on Microsoft Graph."""
        state = self._get(f"{self.url}/_emulator/state?tenant={self.tenant_id}")
        graph = next(sp["id"] for sp in state["servicePrincipals"] if sp["appId"] == GRAPH_APP_ID)
        consented = {grant["clientId"] for grant in state["oauth2PermissionGrants"]}
        client = next(
            sp["id"]
            for sp in state["servicePrincipals"]
            if sp["id"] not in consented and sp["id"] != graph
        )
        grant = {
            "clientId": client,
            "consentType": "AllPrincipals",
            "resourceId": graph,
            "scope": "User.Read",
        }
        self._batch(
            [
                {
                    "method": "POST",
                    "url": "/oauth2PermissionGrants",
                    "body": grant,
                    "headers": {"Content-Type": "application/json"},
                }
            ]
        )
        return "a consent (User.Read for all users) given outside the portal"

    def grant_identities(self) -> set[str]:
        """Every grant the emulator holds, as the portal names them (tenants.snapshot):
        application grants to service principals and each scope of a delegated grant."""
        state = self._get(f"{self.url}/_emulator/state?tenant={self.tenant_id}")
        found = {
            f"a:{a['id']}"
            for a in state["appRoleAssignments"]
            if a["principalType"] == "ServicePrincipal"
        }
        found |= {
            f"d:{grant['id']}:{scope.lower()}"
            for grant in state["oauth2PermissionGrants"]
            for scope in (grant["scope"] or "").split()
        }
        return found

    def _batch(self, items: Iterable[dict[str, Any]]) -> None:
        numbered = [{"id": str(index), **item} for index, item in enumerate(items)]
        for start in range(0, len(numbered), BATCH_LIMIT):
            response = self.http.post(
                f"{self.url}/v1.0/$batch",
                json={"requests": numbered[start : start + BATCH_LIMIT]},
                headers=self.headers,
                timeout=HTTP_TIMEOUT,
            )
            response.raise_for_status()
            failed = [r for r in response.json()["responses"] if r["status"] >= 400]
            if failed:
                raise RuntimeError(f"a Graph change failed: {failed[0]}")

    def _get(self, url: str) -> dict[str, Any]:
        response = self.http.get(url, headers=self.headers, timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        return response.json()


def _pages(items: int, size: int = PAGE_SIZE) -> int:
    return math.ceil(items / size)


def _every_nth(items: list[dict[str, Any]], share: float) -> list[dict[str, Any]]:
    return items[:: round(1 / share)]


# The scopes the generator grants (at most four to one grant), so a spare one always exists.
_SCOPES = ("openid", "profile", "email", "offline_access", "User.Read", "Calendars.Read")


def _swap_one_scope(scope: str) -> str:
    current = scope.split()
    spare = next(name for name in _SCOPES if name not in current)
    return " ".join([*current[1:], spare])


# -- one measured sync -----------------------------------------------------------------------


def measure(name: str, tenant: Tenant, graph: GraphSide, *, unchanged: bool = False) -> Figures:
    from tenants.models import Grant, SyncRun
    from tenants.services import sync_run_queue

    truth = graph.truth()
    floor = graph.floor(truth)
    run = sync_run_queue(tenant=tenant, trigger=SyncRun.Trigger.COMMAND)
    if run is None:
        raise RuntimeError("the tenant already has an open sync run")
    writes_before = grant_table_writes()
    findings_before = findings_table_writes()
    graph.counters_reset()
    try:
        child = in_child(
            _sync_child, run.pk, str(tenant.tenant_id), timeout=SYNC_TIMEOUT, what="the sync"
        )
    except ChildFailed as failed:
        raise RuntimeError(f"{name}: {failed}") from None
    graph_requests = graph.graph_requests()
    findings_written = findings_table_writes() - findings_before
    run.refresh_from_db()
    if run.status != SyncRun.Status.SUCCEEDED:
        raise RuntimeError(f"{name}: the sync {run.status}: {run.error}")
    rows = Grant.objects.filter(tenant=tenant)
    figures = Figures(
        name=name,
        graph_requests=graph_requests,
        client_requests=child.client_requests,
        lower_bound=truth.lower_bound(),
        bound_reads=truth.by_what(),
        wall=child.wall,
        floor=floor,
        apply=child.apply,
        full_findings=full_findings_seconds(tenant),
        findings_written=findings_written,
        rows_written=rows.filter(first_seen_run=run).count()
        + rows.filter(removed_in_run=run).count(),
        table_writes=grant_table_writes() - writes_before,
        peak_mb=child.peak_kb / 1024,
        start_mb=child.start_kb / 1024,
        added=run.grants_added,
        removed=run.grants_removed,
        unchanged=unchanged,
        run_id=run.pk,
        read_mode=run.read_mode,
    )
    # Hours pass between two syncs of a tenant, and autovacuum runs in them; without this,
    # the next sync would share the two CPUs with autovacuum.
    tables_vacuum()
    return figures


def _sync_child(run_id: int, tenant_id: str) -> ChildResult:
    import tenants.sync
    from tenants.graph import GraphClient
    from tenants.sync import sync_run_execute

    applied = _timed(tenants.sync, "apply_snapshot")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    start_kb = _status_kb("VmHWM")
    client = GraphClient(tenant_id=tenant_id)
    started = time.perf_counter()
    sync_run_execute(run_id=run_id, client=client)
    wall = time.perf_counter() - started
    peak_kb = _status_kb("VmHWM")
    stats_flush()
    return ChildResult(wall, sum(applied), client.stats.requests, peak_kb, start_kb)


def _timed(module: Any, name: str) -> list[float]:
    """Replaces ``module.name`` (in this child only) by itself timed; the seconds of each
    call are appended to the list returned."""
    seconds: list[float] = []
    real = getattr(module, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - started)

    setattr(module, name, timed)
    return seconds


def full_findings_seconds(tenant: Tenant) -> float:
    """What refreshing every client's findings, as each sync did before it refreshed only
    the clients it changed, takes now: rolled back."""
    from django.db import transaction

    from tenants.findings import findings_refresh

    with transaction.atomic():
        started = time.perf_counter()
        findings_refresh(tenant=tenant)
        elapsed = time.perf_counter() - started
        transaction.set_rollback(True)
    stats_flush()  # the rolled-back rows count too: now, not in the next sync's figures
    return elapsed


def stats_flush() -> None:
    """A backend reports its table counters when idle; forced now, done by the next call."""
    with connection_cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT 1")


def findings_table_writes() -> int:
    """PostgreSQL's count of rows ever inserted, updated or deleted in the findings table."""
    from tenants.models import ApplicationFinding

    return table_writes(ApplicationFinding._meta.db_table)


def _status_kb(name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {name} in /proc/self/status")


def grant_table_writes() -> int:
    """PostgreSQL's count of rows ever inserted, updated or deleted in the grant table."""
    from tenants.models import Grant

    return table_writes(Grant._meta.db_table)


def table_writes(table: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables WHERE relname = %s",
            [table],
        )
        return int(cursor.fetchone()[0])


def insert_seconds(*, first_seen_run: int) -> float:
    """Seconds PostgreSQL itself takes to insert copies of the rows a run inserted, with
    the table's indexes and foreign keys checked, rolled back: what no sync can beat."""
    from django.db import connection, transaction

    from tenants.models import Grant
    from tenants.sync import NEW_GRANT_FIELDS

    table = connection.ops.quote_name(Grant._meta.db_table)
    columns = [Grant._meta.get_field(name).column for name in NEW_GRANT_FIELDS]
    copied = [f"{column} || '#'" if column == "identity" else column for column in columns]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # checked now, not at a commit
        started = time.perf_counter()
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) "
            f"SELECT {', '.join(copied)} FROM {table} WHERE first_seen_run_id = %s",
            [first_seen_run],
        )
        elapsed = time.perf_counter() - started
        transaction.set_rollback(True)
    return elapsed


# -- consent history ---------------------------------------------------------------------------


def consent_history_figures(tenant: Tenant, denied: int) -> str:
    """What reading the directory audit events adds to a sync (tenants.provenance): its
    Graph requests and seconds, read and kept, on the first read (every event Entra keeps)
    and on a later one (since the newest kept). ``denied``: the requests a sync made
    before the portal held AuditLog.Read.All (the 403 it answers)."""
    from django.db import transaction

    from tenants.graph import GraphClient
    from tenants.provenance import consent_events_apply, consent_events_read
    from tenants.snapshot import Snapshot

    def timed(through: Any) -> tuple[int, float, int, Any]:
        client = GraphClient(tenant_id=str(tenant.tenant_id))
        client.get_json("/organization?$select=id")  # the token, outside the timing
        before = client.stats.requests
        started = time.perf_counter()
        read = consent_events_read(client, Snapshot(), through)
        with transaction.atomic():
            consent_events_apply(tenant=tenant, events=read)
            transaction.set_rollback(True)
        elapsed = time.perf_counter() - started
        if read.status:
            raise RuntimeError(f"consent history: the read failed ({read.status})")
        newest = max((event.at for event in read.events), default=None)
        return client.stats.requests - before, elapsed, len(read.events), newest

    first_requests, first_seconds, events, newest = timed(None)
    later_requests, later_seconds, overlap, _ = timed(newest)
    return (
        f"sync: consent history: without AuditLog.Read.All {denied} request a sync (403); with "
        f"it, the first read {first_requests} requests and {first_seconds:.2f} s for {events} "
        f"events (read and kept), a later one {later_requests} requests and "
        f"{later_seconds:.2f} s for the {overlap} events of the hour it re-reads (here the "
        "1% change's)"
    )


# -- output ----------------------------------------------------------------------------------


def table(results: list[Figures]) -> list[str]:
    lines = [
        f"sync: {'':21} {'Graph requests / bound':24} {'wall s / floor s':22} "
        f"{'grant rows':12} peak MB"
    ]
    for f in results:
        requests_ratio = f.graph_requests / f.lower_bound
        wall_ratio = f.wall / f.floor
        rows_verdict = _verdict(f.rows_written == 0) if f.unchanged else ""
        lines.append(
            f"sync: {f.name:21} "
            f"{f.graph_requests:4} / {f.lower_bound:<3} {requests_ratio:4.2f}x "
            f"{_verdict(requests_ratio <= MAX_REQUESTS_RATIO)}  "
            f"{f.wall:5.2f} / {f.floor:4.2f} {wall_ratio:4.1f}x "
            f"{_verdict(wall_ratio <= MAX_WALL_RATIO)}  "
            f"{f.rows_written:6} {rows_verdict:4}  "
            f"{f.peak_mb:4.0f} {_verdict(f.peak_mb < MAX_PEAK_MB)}"
        )
    lines.append(
        f"sync: targets: requests <= {MAX_REQUESTS_RATIO}x the bound, wall <= {MAX_WALL_RATIO}x "
        f"the floor, 0 rows on an unchanged re-sync, peak < {MAX_PEAK_MB} MB"
    )
    for f in results:
        overhead = f.wall - f.floor
        lines.append(
            f"sync: {f.name}: {f.added} grants added, {f.removed} removed; "
            f"{f.client_requests} HTTP round trips; PostgreSQL counts {f.table_writes} rows "
            f"written; {f.lower_bound / f.wall:.0f} pages/s (floor {f.lower_bound / f.floor:.0f}); "
            f"apply {f.apply:.2f} s, {f.findings_written} finding rows written (a full "
            f"refresh of the findings: {f.full_findings:.2f} s); "
            f"{overhead:.2f} s beyond the download: the wall target holds once Graph takes "
            f"{overhead / f.lower_bound * 1000:.0f} ms a page (the emulator "
            f"{f.floor / f.lower_bound * 1000:.1f}); RSS {f.start_mb:.0f} MB at the start"
        )
    return lines


def delta_lines(results: list[Figures], before: set[str], after: set[str]) -> list[str]:
    """The delta re-syncs against issue 14's targets."""
    from tenants.models import Grant

    first, unchanged, changed = results
    share = unchanged.graph_requests / first.graph_requests
    rows = Grant.objects.values_list("identity", flat=True)
    added = set(rows.filter(first_seen_run_id=changed.run_id))
    removed = set(rows.filter(removed_in_run_id=changed.run_id))
    found = added == after - before and removed == before - after
    return [
        f"sync: read as: {', '.join(f'{f.name} {f.read_mode}' for f in results)}",
        f"sync: unchanged re-sync: {unchanged.graph_requests} Graph requests, "
        f"{share:.0%} of the full sync's {first.graph_requests} "
        f"{_verdict(share <= MAX_DELTA_SHARE and unchanged.read_mode == 'delta')} "
        f"(target: at most {MAX_DELTA_SHARE:.0%})",
        f"sync: re-sync after the 1% change: {len(added)} grants added and {len(removed)} "
        f"removed, of {len(after - before)} and {len(before - after)} that Graph changed: "
        f"{'every change found' if found else 'changes missed or invented'} "
        f"{_verdict(found and changed.read_mode == 'delta')}",
    ]


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


if __name__ == "__main__":
    main()
