"""The soak run: start the topology, sync every tenant, load the pages at rest and while
syncs run, break one part after another while syncs and revokes run, then check that
nothing was lost, duplicated, written twice or left running.

``python -m soak`` is the full run (`make soak`: 60 s of load, a 30 s Graph outage, the
benchmark tenant at full size); ``--short`` the one CI runs (`make soak-short`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.db import DatabaseError, connection

from soak.load import (
    REQUEST_TIMEOUT,
    Figures,
    Sample,
    Samples,
    load,
    percentile,
    read_loop,
    sample_errors,
    sessions_make,
)
from soak.scenario import scenario_write
from soak.topology import REPO, Topology, topology

SESSIONS = 20
P95_RATIO = 3.0
HEALTH_EVERY = 0.5
DISPATCH_EVERY = 10.0
# How long Redis and PostgreSQL stay down: a few health checks' worth (each waits up to
# 3 s for the broker).
DOWN_SECONDS = 10
# What marks the portal's own error page (templates/500.html) rather than a bare one.
ERROR_PAGE_MARK = "Permission Portal"


@dataclass(frozen=True)
class Profile:
    load_seconds: float
    rest_seconds: float
    outage_seconds: float
    throttle_seconds: float
    benchmark_scale: float
    # The sync task's limits: a dead worker's run fails a minute after the hard one; a
    # sync may wait for Graph for the soft one less 60 s (tenants.graph.default_time_budget).
    task_time_limit: int
    task_soft_time_limit: int
    revoke_time_limit: int  # a dead worker's revoke is taken over after this
    settle_timeout: float  # for every run and request to end after the faults
    sync_timeout: float
    # Whether the p95 target decides the run. The short run (CI) prints it but is decided
    # by correctness alone: twelve seconds of load on a shared machine are a figure, not a
    # test (speed targets live in benchmarks).
    latency_decides: bool


FULL = Profile(60, 20, 30, 20, 1.0, 240, 200, 60, 420, 300, latency_decides=True)
SHORT = Profile(12, 6, 10, 8, 0.1, 100, 90, 40, 240, 90, latency_decides=False)


@dataclass
class Outcome:
    fault: str
    running: str
    outcome: str
    recovered: float | None  # seconds from the fault's end until all was well again
    ok: bool


@dataclass
class Watch:
    """What /healthz and a few sessions saw while the faults ran, second by second."""

    health: list[tuple[float, int, dict[str, str]]] = field(default_factory=list)
    pages: Samples = field(default_factory=Samples)
    stopped: threading.Event = field(default_factory=threading.Event)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__)
    parser.add_argument("--short", action="store_true", help="the CI variant (a few minutes)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the folder of logs and data (kept on failure)"
    )
    args = parser.parse_args(argv)
    profile = SHORT if args.short else FULL
    folder = Path(tempfile.mkdtemp(prefix="soak-"))
    print(f"soak: logs under {folder}", flush=True)
    started = time.monotonic()
    ok = False
    try:
        with topology(folder) as parts:
            ok = Soak(parts, profile).run()
    finally:
        print(f"soak: {time.monotonic() - started:.0f} s in all", flush=True)
        if ok and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0 if ok else 1


class Soak:
    def __init__(self, parts: Topology, profile: Profile) -> None:
        self.parts = parts
        self.profile = profile
        self.verdicts: list[bool] = []
        self.outcomes: list[Outcome] = []
        self.watch = Watch()
        # Runs left running by a killed worker until the sweep closes them, and what tells
        # how each such fault ended, once the other faults are through.
        self.left_running: set[int] = set()
        self.finishers: list[Callable[[], None]] = []

    # -- the whole run ------------------------------------------------------------------------

    def run(self) -> bool:
        self.start()
        self.sync_all(first=True)
        self.measure_load()
        self.faults()
        self.settle()
        self.sync_all(first=False)
        self.check()
        self.print_table()
        passed = all(self.verdicts)
        print(f"soak: {'PASS' if passed else 'FAIL'}", flush=True)
        return passed

    def start(self) -> None:
        parts, profile = self.parts, self.profile
        begun = time.monotonic()
        scenario = scenario_write(
            parts.folder / "scenario.yaml", benchmark_scale=profile.benchmark_scale
        )
        parts.env.update({k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")})
        parts.postgres_init()
        parts.redis_start()
        parts.emulator_start(scenario)
        parts.portal_env(
            task_time_limit=profile.task_time_limit,
            task_soft_time_limit=profile.task_soft_time_limit,
            revoke_time_limit=profile.revoke_time_limit,
        )
        self.http = parts.emulator_session()
        state = self.http.get(f"{parts.emulator_url}/_emulator/state", timeout=30).json()
        self.tenant_ids = [t["id"] for t in state["tenants"]]
        self.big = self.tenant_ids[0]
        parts.env["PORTAL_OPERATOR_TENANT_ID"] = self.big
        _database_create(parts)
        os.environ.update(parts.env)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        call_command("collectstatic", verbosity=0, interactive=False)
        call_command("import_catalog", "--starter", verbosity=0)
        manifests = sorted(str(p) for p in (REPO / "permissions/manifests").glob("*.yaml"))
        call_command("import_manifest", *manifests, verbosity=0)
        from tenants.services import tenant_add

        for number, tenant_id in enumerate(self.tenant_ids):
            tenant_add(tenant_id=tenant_id, name="Benchmark" if not number else f"Small {number}")
        parts.web_start()
        parts.worker_start(1)
        parts.worker_start(2)
        parts.beat_start()
        print(
            f"soak: topology up in {time.monotonic() - begun:.0f} s: PostgreSQL, Redis, the "
            f"emulator ({len(self.tenant_ids)} tenants), gunicorn (2 workers), 2 Celery "
            "workers, beat",
            flush=True,
        )

    # -- syncs ---------------------------------------------------------------------------------

    def sync_all(self, *, first: bool) -> None:
        """Every tenant synced: the first time through beat's schedule (they are due when
        added), afterwards queued here, as "Sync now" does."""
        from tenants.models import SyncRun, Tenant

        begun = time.monotonic()
        since = _now()
        if first:
            self.dispatch()  # beat's first tick comes a minute after it starts
        else:
            self.queue_syncs(Tenant.objects.all())
        deadline = time.monotonic() + self.profile.sync_timeout
        while time.monotonic() < deadline:
            done = (
                SyncRun.objects.filter(status=SyncRun.Status.SUCCEEDED, finished_at__gte=since)
                .values("tenant")
                .distinct()
                .count()
            )
            if done == len(self.tenant_ids) and not self.open_work():
                break
            time.sleep(1)
        synced = (
            SyncRun.objects.filter(status=SyncRun.Status.SUCCEEDED, finished_at__gte=since)
            .values("tenant")
            .distinct()
            .count()
        )
        what = "first sync" if first else "final sync"
        self.verdict(
            synced == len(self.tenant_ids),
            f"{what} of every tenant: {synced} of {len(self.tenant_ids)} succeeded in "
            f"{time.monotonic() - begun:.0f} s",
        )

    def queue_syncs(self, tenants: Any) -> list[int]:
        from tenants.models import SyncRun
        from tenants.services import sync_run_request

        runs = [sync_run_request(tenant=t, trigger=SyncRun.Trigger.MANUAL) for t in tenants]
        return [run.pk for run in runs if run is not None]

    def open_work(self) -> int:
        from tenants.models import RevokeRequest, SyncRun

        return (
            SyncRun.objects.filter(status__in=SyncRun.OPEN_STATUSES)
            .exclude(pk__in=self.left_running)
            .count()
            + RevokeRequest.objects.filter(
                status__in=[RevokeRequest.Status.QUEUED, RevokeRequest.Status.RUNNING]
            ).count()
        )

    # -- load ----------------------------------------------------------------------------------

    def measure_load(self) -> None:
        from tenants.models import Tenant

        self.sessions = sessions_make(
            SESSIONS, operator_tenant=self.big, small_tenants=self.tenant_ids[1:]
        )
        url = self.parts.web_url
        # Each page once, by two sessions (one per gunicorn worker): a page's own cost.
        pair = self.sessions[:2]  # an operator and an admin, one request at a time each
        alone = load(url, pair, seconds=120, max_requests=max(len(s.urls) for s in pair))
        print(f"soak: slowest pages alone: {_slowest(alone)}", flush=True)
        rest = load(url, self.sessions, seconds=self.profile.rest_seconds, max_requests=500)
        self.queue_syncs(Tenant.objects.all())
        busy = load(url, self.sessions, seconds=self.profile.load_seconds, max_requests=2000)
        syncs_during = self.runs_finished_since(busy[0].at if busy else time.monotonic())
        at_rest, under_load = Figures.of(rest), Figures.of(busy)
        print(at_rest.line(f"at rest, {SESSIONS} sessions, no sync running"), flush=True)
        print(
            under_load.line(f"under load, {SESSIONS} sessions while every tenant syncs"),
            flush=True,
        )
        print(f"soak: syncs that ended during the load: {syncs_during}", flush=True)
        print(f"soak: slowest pages under load (p50): {_slowest(busy)}", flush=True)
        errors = sample_errors([*rest, *busy])
        self.verdict(not errors, f"no errors under load ({errors or 'none'})")
        ratio = under_load.p95 / at_rest.p95 if at_rest.p95 else float("inf")
        self.verdict(
            ratio <= P95_RATIO,
            f"p95 under load {ratio:.1f}x p95 at rest (target <= {P95_RATIO:.0f}x)",
            decides=self.profile.latency_decides,
        )
        self.wait_quiet(self.profile.sync_timeout)

    def runs_finished_since(self, monotonic_at: float) -> int:
        from tenants.models import SyncRun

        since = _now() - timedelta(seconds=time.monotonic() - monotonic_at)
        return SyncRun.objects.filter(finished_at__gte=since).count()

    def wait_quiet(self, timeout: float, *, dispatch: bool = False) -> float | None:
        """Seconds until no run or request is queued or running (None: not within timeout);
        with ``dispatch``, beat's sweep is sent every few seconds rather than each minute."""
        return self.wait_for(lambda: not self.open_work(), timeout, dispatch=dispatch)

    def dispatch(self) -> None:
        """Beat's every-minute task (the sweeps, then due syncs), sent now."""
        from portal.celery import app

        try:
            app.send_task("tenants.tasks.dispatch_due_syncs")
        except Exception as exc:  # the broker may be the part that is down
            print(f"soak: could not send the sweep: {exc.__class__.__name__}", flush=True)

    # -- faults --------------------------------------------------------------------------------

    def faults(self) -> None:
        watchers = [threading.Thread(target=self.watch_health, daemon=True)]
        until = time.monotonic() + 3600
        for session in self.sessions[:4]:
            watchers.append(
                threading.Thread(
                    target=read_loop,
                    args=(self.parts.web_url, session, self.watch.pages),
                    kwargs={"until": until, "pause": 0.5, "stop": self.watch.stopped.is_set},
                    daemon=True,
                )
            )
        for thread in watchers:
            thread.start()
        try:
            for fault in (
                self.fault_kill_sync,
                self.fault_kill_revoke,
                self.fault_redis,
                self.fault_postgres,
                self.fault_outage,
                self.fault_throttling,
            ):
                fault()
            for finish in self.finishers:
                finish()
        finally:
            self.watch.stopped.set()
            for thread in watchers:
                thread.join(timeout=REQUEST_TIMEOUT + 5)

    def watch_health(self) -> None:
        import requests

        with requests.Session() as http:
            http.trust_env = False
            while not self.watch.stopped.is_set():
                at = time.monotonic()
                try:
                    response = http.get(f"{self.parts.web_url}/healthz", timeout=10)
                    parts = response.json()
                    self.watch.health.append((at, response.status_code, parts))
                except Exception:
                    self.watch.health.append((at, 0, {}))
                time.sleep(HEALTH_EVERY)

    def fault_kill_sync(self) -> None:
        """kill -9 of the worker running the benchmark tenant's sync, mid-way. Only the
        sweep can close that run, a minute after the task's hard limit: the faults after
        this one run meanwhile, and :meth:`kill_sync_finish` tells how it ended."""
        from tenants.models import Tenant

        tenant = Tenant.objects.get(tenant_id=self.big)
        run_id, worker = self.sync_on_a_worker(tenant)
        running = f"sync {run_id} of the benchmark tenant on {worker}, pages read"
        if worker is None:
            self.outcome("kill -9 worker mid-sync", running, "the sync never ran", None, False)
            return
        self.parts.kill9(worker)
        killed = time.monotonic()
        self.parts.worker_start(int(worker[-1]))  # as a supervisor restarts it
        self.left_running.add(run_id)
        self.finishers.append(lambda: self.kill_sync_finish(tenant, run_id, running, killed))

    def kill_sync_finish(self, tenant: Any, run_id: int, running: str, killed: float) -> None:
        """The killed run closed by the sweep, and the tenant's next sync (queued by a
        later fault, or now) succeeded: the times are the database's."""
        from tenants.models import SyncRun

        timeout = max(0.0, killed + self.profile.task_time_limit + 120 - time.monotonic())
        ended = self.wait_for(
            lambda: _run_status(run_id) not in SyncRun.OPEN_STATUSES, timeout, dispatch=True
        )
        self.left_running.discard(run_id)
        run = SyncRun.objects.get(pk=run_id)
        killed_at = _now() - timedelta(seconds=time.monotonic() - killed)
        if not SyncRun.objects.filter(
            tenant=tenant, status=SyncRun.Status.SUCCEEDED, finished_at__gt=killed_at
        ).exists():
            again = self.queue_syncs([tenant])
            self.wait_for(
                lambda: bool(again) and _run_status(again[0]) == SyncRun.Status.SUCCEEDED,
                self.profile.sync_timeout,
            )
        resynced = (
            SyncRun.objects.filter(
                tenant=tenant, status=SyncRun.Status.SUCCEEDED, finished_at__gt=killed_at
            )
            .order_by("finished_at")
            .first()
        )
        closed = (
            f"run {run.status} {(run.finished_at - killed_at).total_seconds():.0f} s after the "
            "kill (the sweep, audited)"
            if ended is not None and run.finished_at
            else f"run still {run.status}"
        )
        # Recovered once the run is closed: from then on the tenant syncs again.
        self.outcome(
            "kill -9 worker mid-sync",
            running,
            f"{closed}; the tenant's next sync {'succeeded' if resynced else 'did not succeed'}",
            (run.finished_at - killed_at).total_seconds() if resynced and run.finished_at else None,
            ended is not None and run.status == SyncRun.Status.FAILED and resynced is not None,
        )

    def sync_on_a_worker(self, tenant: Any) -> tuple[int, str | None]:
        """Queues a sync and returns it with the worker that has started it."""
        from tenants.models import SyncRun
        from tenants.services import sync_run_queue
        from tenants.tasks import sync_tenant

        self.wait_quiet(self.profile.sync_timeout)
        run = sync_run_queue(tenant=tenant, trigger=SyncRun.Trigger.MANUAL)
        assert run is not None
        task_id = str(uuid.uuid4())
        sync_tenant.apply_async(args=(run.pk,), task_id=task_id)
        worker = self.worker_of(task_id, lambda: _run_progress(run.pk) != "")
        return run.pk, worker

    def worker_of(self, task_id: str, started: Callable[[], bool]) -> str | None:
        """The worker whose log says it received ``task_id``, once ``started()``."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for name in ("worker1", "worker2"):
                log = self.parts.children[name].log.read_text(errors="replace")
                if task_id in log and started():
                    return name
            time.sleep(0.2)
        return None

    def fault_kill_revoke(self) -> None:
        """kill -9 of the worker running a revoke, after its DELETE, while it verifies."""
        from tenants.models import RevokeRequest
        from tenants.tasks import execute_revoke

        self.wait_quiet(self.profile.sync_timeout)
        # Reads by id show the state before a write for a while: the revoke keeps verifying.
        self.behaviour({"replication_lag": {"collections": 0, "by_id": 8}})
        revokes = self.revokes_create(self.tenant_ids[1], count=1, queue=False)
        task_id = str(uuid.uuid4())
        execute_revoke.apply_async(args=(revokes[0],), task_id=task_id)
        worker = self.worker_of(task_id, lambda: _revoke_wrote(revokes[0]))
        running = f"revoke {revokes[0]} (verifying after its DELETE) on {worker}"
        if worker is None:
            self.outcome("kill -9 worker mid-revoke", running, "never wrote", None, False)
            return
        self.parts.kill9(worker)
        self.behaviour({"replication_lag": {"collections": 0, "by_id": 0}})
        self.parts.worker_start(int(worker[-1]))
        took = self.wait_for(
            lambda: _revoke_status(revokes[0]) not in RevokeRequest.OPEN_STATUSES,
            self.profile.revoke_time_limit + 90,
            dispatch=True,
        )
        status = _revoke_status(revokes[0])
        writes = _revoke_writes(revokes[0])
        self.outcome(
            "kill -9 worker mid-revoke",
            running,
            f"request {status} {took:.0f} s after the kill (taken over by the sweep), "
            f"{writes} write sent in all"
            if took is not None
            else f"request still {status}",
            took,
            status == RevokeRequest.Status.SUCCEEDED and writes == 1,
        )

    def fault_redis(self) -> None:
        """Redis restarted (no persistence: queued messages are lost) while syncs and
        revokes are queued."""
        from tenants.models import Tenant

        self.wait_quiet(self.profile.sync_timeout)
        small = Tenant.objects.exclude(tenant_id=self.big)
        runs = self.queue_syncs(small)
        revokes = self.revokes_create(self.tenant_ids[2], count=2, queue=True)
        running = f"{len(runs)} syncs queued, {len(revokes)} revokes queued"
        down = time.monotonic()
        self.parts.stop("redis")
        time.sleep(DOWN_SECONDS)
        self.parts.redis_start()
        back = time.monotonic()
        # What the broker lost is sent again once queued longer than the task's hard limit.
        took = self.wait_quiet(self.profile.task_time_limit + 120, dispatch=True)
        self.outcome(
            "Redis restarted",
            running,
            self.work_outcome(runs, revokes) + self.health_said(down, back, "broker"),
            took,
            took is not None
            and self.all_good(runs, revokes)
            and self.health_ok(down, back, "broker"),
        )

    def fault_postgres(self) -> None:
        """PostgreSQL stopped, then started again, while syncs run."""
        from tenants.models import Tenant

        self.wait_quiet(self.profile.sync_timeout)
        runs = self.queue_syncs(Tenant.objects.all())
        revokes = self.revokes_create(self.tenant_ids[3], count=2, queue=True)
        self.wait_for(lambda: _any_running(runs), 30)
        running = f"{len(runs)} syncs, {len(revokes)} revokes"
        down = time.monotonic()
        self.parts.postgres_stop()
        time.sleep(DOWN_SECONDS)
        self.parts.postgres_start()
        back = time.monotonic()
        took = self.wait_quiet(self.profile.settle_timeout, dispatch=True)
        self.outcome(
            "PostgreSQL restarted",
            running,
            self.work_outcome(runs, revokes) + self.health_said(down, back, "database"),
            took,
            took is not None and self.health_ok(down, back, "database"),
        )

    def fault_outage(self) -> None:
        """Graph and Entra unreachable (every connection dropped) while syncs and revokes run."""
        from tenants.models import Tenant

        self.wait_quiet(self.profile.sync_timeout)
        runs = self.queue_syncs(Tenant.objects.all())
        revokes = self.revokes_create(self.tenant_ids[4], count=2, queue=True)
        self.wait_for(lambda: _any_running(runs), 30)
        running = f"{len(runs)} syncs, {len(revokes)} revokes"
        self.faults_set([{"path": ".", "drop": True}])
        time.sleep(self.profile.outage_seconds)
        self.faults_set([])
        took = self.wait_quiet(self.profile.settle_timeout, dispatch=True)
        self.outcome(
            f"Graph down {self.profile.outage_seconds:.0f} s",
            running,
            self.work_outcome(runs, revokes),
            took,
            took is not None,
        )

    def fault_throttling(self) -> None:
        """Graph throttling nearly every request (the emulator's throttling switch)."""
        from tenants.models import Tenant

        self.wait_quiet(self.profile.sync_timeout)
        runs = self.queue_syncs(Tenant.objects.all())
        revokes = self.revokes_create(self.tenant_ids[5], count=2, queue=True)
        running = f"{len(runs)} syncs, {len(revokes)} revokes"
        self.behaviour({"throttling": {"limit": 3, "window_seconds": 2, "enforce": True}})
        time.sleep(self.profile.throttle_seconds)
        self.behaviour({"throttling": {"limit": 0}})
        took = self.wait_quiet(self.profile.settle_timeout, dispatch=True)
        self.outcome(
            f"Graph throttling {self.profile.throttle_seconds:.0f} s",
            running,
            self.work_outcome(runs, revokes),
            took,
            took is not None,
        )

    # -- fault helpers ---------------------------------------------------------------------

    def revokes_create(self, tenant_id: str, *, count: int, queue: bool) -> list[int]:
        """Admin revokes of ``count`` application grants of one small tenant."""
        from tenants.access import Role
        from tenants.models import Grant, Tenant
        from tenants.revokes import revoke_request_create
        from tenants.slots import GrantSlot

        tenant = Tenant.objects.get(tenant_id=tenant_id)
        grants = (
            Grant.objects.filter(tenant=tenant, removed_in_run__isnull=True, kind="application")
            .exclude(value="")
            .exclude(client__display_name="Permission Portal")
            .select_related("client")
            .order_by("pk")
        )
        made: list[int] = []
        for grant in grants:
            if len(made) == count:
                break
            try:
                revoke, created = revoke_request_create(
                    tenant=tenant,
                    client=grant.client,
                    slot=GrantSlot.from_grant(grant),
                    actor=None,
                    role=Role.ADMIN,
                    queue=queue,
                )
            except ValueError:
                continue
            if created:
                made.append(revoke.pk)
        self.revokes = [*getattr(self, "revokes", []), *made]
        return made

    def behaviour(self, switches: dict[str, Any]) -> None:
        url = f"{self.parts.emulator_url}/_emulator/behaviour"
        self.http.patch(url, json=switches, timeout=30).raise_for_status()

    def faults_set(self, rules: list[dict[str, Any]]) -> None:
        url = f"{self.parts.emulator_url}/_emulator/faults"
        self.http.put(url, json={"rules": rules}, timeout=30).raise_for_status()

    def wait_for(
        self, done: Callable[[], bool], timeout: float, *, dispatch: bool = False
    ) -> float | None:
        begun = time.monotonic()
        last_dispatch = 0.0
        while True:  # asked at least once, however little time is left
            try:
                if done():
                    return time.monotonic() - begun
            except DatabaseError:  # the database may be coming back
                connection.close()
            if time.monotonic() - begun >= timeout:
                return None
            if dispatch and time.monotonic() - last_dispatch > DISPATCH_EVERY:
                self.dispatch()
                last_dispatch = time.monotonic()
            time.sleep(0.5)

    def work_outcome(self, runs: list[int], revokes: list[int]) -> str:
        from tenants.models import RevokeRequest, SyncRun

        run_states = _count(SyncRun.objects.filter(pk__in=runs).values_list("status", flat=True))
        revoke_states = _count(
            RevokeRequest.objects.filter(pk__in=revokes).values_list("status", flat=True)
        )
        return f"syncs {run_states}; revokes {revoke_states}"

    def all_good(self, runs: list[int], revokes: list[int]) -> bool:
        from tenants.models import RevokeRequest, SyncRun

        return not SyncRun.objects.filter(
            pk__in=runs, status__in=SyncRun.OPEN_STATUSES
        ).exists() and (
            not RevokeRequest.objects.filter(
                pk__in=revokes, status__in=RevokeRequest.OPEN_STATUSES
            ).exists()
        )

    def health_said(self, down: float, back: float, part: str) -> str:
        seen = [h for h in self.watch.health if down <= h[0] < back]
        said = sum(1 for h in seen if h[1] == 503 and h[2].get(part) == "unavailable")
        return f"; /healthz said {part} unavailable {said} of {len(seen)} times while down"

    def health_ok(self, down: float, back: float, part: str) -> bool:
        seen = [h for h in self.watch.health if down + 1 <= h[0] < back]
        return bool(seen) and any(h[2].get(part) == "unavailable" for h in seen)

    def outcome(
        self, fault: str, running: str, outcome: str, recovered: float | None, ok: bool
    ) -> None:
        self.outcomes.append(Outcome(fault, running, outcome, recovered, ok))
        took = f"{recovered:.0f} s" if recovered is not None else "not recovered"
        print(f"soak: {fault}: {outcome}; recovered in {took} {_verdict(ok)}", flush=True)
        self.verdicts.append(ok)

    # -- after the faults ----------------------------------------------------------------------

    def settle(self) -> None:
        took = self.wait_quiet(self.profile.settle_timeout, dispatch=True)
        self.verdict(
            took is not None,
            "every sync run and revoke request ended after the faults"
            + ("" if took is not None else f": {self.stuck()}"),
        )

    def stuck(self) -> str:
        from tenants.models import RevokeRequest, SyncRun

        runs = list(
            SyncRun.objects.filter(status__in=SyncRun.OPEN_STATUSES).values_list("pk", "status")
        )
        revokes = list(
            RevokeRequest.objects.filter(
                status__in=[RevokeRequest.Status.QUEUED, RevokeRequest.Status.RUNNING]
            ).values_list("pk", "status")
        )
        return f"runs {runs}, revokes {revokes}"

    def check(self) -> None:
        self.check_final_states()
        self.check_grants()
        self.check_writes()
        self.check_audit()
        self.check_pages()

    def check_final_states(self) -> None:
        from tenants.models import RevokeRequest, SyncRun

        runs = _count(SyncRun.objects.values_list("status", flat=True))
        revokes = _count(
            RevokeRequest.objects.filter(pk__in=self.revokes).values_list("status", flat=True)
        )
        open_runs = SyncRun.objects.filter(status__in=SyncRun.OPEN_STATUSES).count()
        unfinished = RevokeRequest.objects.filter(pk__in=self.revokes).exclude(
            status=RevokeRequest.Status.SUCCEEDED
        )
        self.verdict(open_runs == 0, f"sync runs in a final state: {runs}")
        self.verdict(
            not unfinished.exists(),
            f"revoke requests succeeded: {revokes}"
            + "".join(f"; {r.pk} {r.status}: {r.error}" for r in unfinished),
        )

    def check_grants(self) -> None:
        """The portal's current grants are Graph's, tenant by tenant, and no grant's
        history overlaps itself (the same identity current twice at once)."""
        from django.db.models import Count

        from tenants.models import Grant, Tenant

        lost = extra = 0
        for tenant in Tenant.objects.all():
            truth = self.graph_grants(str(tenant.tenant_id))
            current = set(
                Grant.objects.filter(tenant=tenant, removed_in_run__isnull=True).values_list(
                    "identity", flat=True
                )
            )
            lost += len(truth - current)
            extra += len(current - truth)
        overlapping = 0
        repeated = (
            Grant.objects.values("tenant", "identity").annotate(rows=Count("pk")).filter(rows__gt=1)
        )
        for row in repeated:
            spans = sorted(
                Grant.objects.filter(
                    tenant_id=int(row["tenant"]), identity=row["identity"]
                ).values_list("first_seen_run", "removed_in_run")
            )
            for (_, removed), (added, _) in zip(spans, spans[1:], strict=False):
                if removed is None or added < removed:
                    overlapping += 1
        self.verdict(
            lost == 0 and extra == 0,
            f"grants: the portal's current grants are Graph's ({lost} missing, {extra} extra)",
        )
        self.verdict(overlapping == 0, f"grant history: {overlapping} overlapping duplicates")

    def graph_grants(self, tenant_id: str) -> set[str]:
        state = self.http.get(
            f"{self.parts.emulator_url}/_emulator/state?tenant={tenant_id}", timeout=60
        ).json()
        found = {
            f"a:{a['id']}"
            for a in state["appRoleAssignments"]
            if a.get("principalType") == "ServicePrincipal"
        }
        for grant in state["oauth2PermissionGrants"]:
            for scope in (grant.get("scope") or "").split():
                found.add(f"d:{grant['id']}:{scope.lower()}")
        return found

    def check_writes(self) -> None:
        """Each Graph object the revokes wrote to was written once: the emulator's log of
        requests as sent, and of writes as carried out (its directory audit events)."""
        from tenants.models import RevokeRequest

        counters = self.http.get(f"{self.parts.emulator_url}/_emulator/counters", timeout=30)
        paths = counters.json()["paths"]
        writes = {
            key: n
            for key, n in paths.items()
            if key.split(" ", 1)[0] in ("DELETE", "PATCH", "POST")
            and key.split(" ", 1)[1].startswith("/v1.0/")
            and not key.endswith("/$batch")  # the envelopes of the syncs' reads
        }
        twice = {key: n for key, n in writes.items() if n > 1}
        # What a retry resent after a dropped connection never reached Graph's state: it
        # shows in the audit events (one per write carried out), not in the requests.
        carried_out: dict[str, int] = {}
        for tenant_id in self.tenant_ids[1:]:
            state = self.http.get(
                f"{self.parts.emulator_url}/_emulator/state?tenant={tenant_id}", timeout=60
            ).json()
            for event in state.get("directoryAudits", []):
                if event.get("initiatedBy", {}).get("app") is None:
                    continue
                targets = event.get("targetResources") or [{}]
                key = f"{event.get('activityDisplayName')} {targets[0].get('id')} " + " ".join(
                    str(p.get("oldValue")) for p in targets[0].get("modifiedProperties", [])
                )
                carried_out[key] = carried_out.get(key, 0) + 1
        done_twice = {key: n for key, n in carried_out.items() if n > 1}
        revoked = RevokeRequest.objects.filter(pk__in=self.revokes).count()
        self.verdict(
            not done_twice,
            f"Graph writes: {sum(writes.values())} sent for {revoked} revokes (throttled and "
            f"dropped ones sent again count: {len(twice)} objects, e.g. "
            f"{', '.join(f'{k} x{n}' for k, n in list(twice.items())[:3]) or 'none'}); "
            f"{sum(carried_out.values())} carried out, {len(done_twice)} of them twice",
        )

    def check_audit(self) -> None:
        """Every ended run and request has its event in the audit trail."""
        from tenants.models import AuditEvent, RevokeRequest, SyncRun

        ended_runs = set(
            SyncRun.objects.filter(
                status__in=[SyncRun.Status.SUCCEEDED, SyncRun.Status.FAILED]
            ).values_list("pk", flat=True)
        )
        audited_runs = {
            e.details.get("sync_run")
            for e in AuditEvent.objects.filter(
                action__in=[AuditEvent.Action.SYNC_SUCCEEDED, AuditEvent.Action.SYNC_FAILED]
            )
        }
        ended_revokes = set(
            RevokeRequest.objects.filter(pk__in=self.revokes)
            .exclude(status__in=RevokeRequest.OPEN_STATUSES)
            .values_list("pk", flat=True)
        )
        audited_revokes = {
            e.details.get("revoke_request")
            for e in AuditEvent.objects.filter(
                action__in=[AuditEvent.Action.REVOKE_SUCCEEDED, AuditEvent.Action.REVOKE_FAILED]
            )
        }
        requested = {
            e.details.get("revoke_request")
            for e in AuditEvent.objects.filter(action=AuditEvent.Action.REVOKE_REQUESTED)
        }
        missing_runs = sorted(ended_runs - audited_runs)
        missing_revokes = sorted(
            (ended_revokes - audited_revokes) | (set(self.revokes) - requested)
        )
        self.verdict(
            not missing_runs and not missing_revokes,
            f"audit trail: {len(ended_runs)} ended runs and {len(ended_revokes)} revokes, "
            f"without an event: runs {missing_runs or 'none'}, revokes {missing_revokes or 'none'}",
        )

    def check_pages(self) -> None:
        """Pages answered throughout the faults: a page, or the portal's own error page."""
        samples = self.watch.pages.items
        bare = [s for s in samples if s.status >= 500 and ERROR_PAGE_MARK not in s.body]
        refused = [s for s in samples if s.status == 0 and not s.cut_off]
        cut_off = [s for s in samples if s.cut_off]
        other = [s for s in samples if 400 <= s.status < 500]
        errors = [s for s in samples if s.status >= 500]
        self.verdict(
            not bare and not refused and not other,
            f"pages during the faults: {len(samples)} requests, {len(errors)} error pages "
            f"({len(bare)} without the portal's error page), {len(refused)} unanswered, "
            f"{len(other)} 4xx, {len(cut_off)} downloads cut off mid-stream (failed downloads)",
        )
        print(
            f"soak: /healthz during the faults: {len(self.watch.health)} checks, "
            f"{sum(1 for h in self.watch.health if h[1] == 503)} said 503",
            flush=True,
        )

    def print_table(self) -> None:
        print("soak: | fault | what was running | outcome | time to recover |", flush=True)
        print("soak: |---|---|---|---|", flush=True)
        for o in self.outcomes:
            took = f"{o.recovered:.0f} s" if o.recovered is not None else "not recovered"
            print(
                f"soak: | {o.fault} | {o.running} | {o.outcome} | {took} {_verdict(o.ok)} |",
                flush=True,
            )

    def verdict(self, ok: bool, text: str, *, decides: bool = True) -> None:
        """Prints a check with PASS or FAIL; one that ``decides`` fails the whole run."""
        if decides:
            self.verdicts.append(ok)
        print(f"soak: {text} {_verdict(ok)}{'' if decides else ' (printed only)'}", flush=True)


# -- small reads ---------------------------------------------------------------------------


def _database_create(parts: Topology) -> None:
    from benchmarks._database import database_ensure

    database_ensure(parts.env["DATABASE_URL"])


def _now() -> Any:
    from django.utils import timezone

    return timezone.now()


def _run_status(run_id: int) -> str:
    from tenants.models import SyncRun

    return SyncRun.objects.values_list("status", flat=True).get(pk=run_id)


def _run_progress(run_id: int) -> str:
    from tenants.models import SyncRun

    return SyncRun.objects.values_list("progress", flat=True).get(pk=run_id) or ""


def _any_running(runs: list[int]) -> bool:
    from tenants.models import SyncRun

    return SyncRun.objects.filter(pk__in=runs, status=SyncRun.Status.RUNNING).exists()


def _revoke_status(revoke_id: int) -> str:
    from tenants.models import RevokeRequest

    return RevokeRequest.objects.values_list("status", flat=True).get(pk=revoke_id)


def _revoke_wrote(revoke_id: int) -> bool:
    from tenants.models import RevokeRequest

    calls = RevokeRequest.objects.values_list("graph_calls", flat=True).get(pk=revoke_id)
    return any(call["method"] != "GET" and call.get("status") for call in calls)


def _revoke_writes(revoke_id: int) -> int:
    """The writes a request sent, as it recorded them (the worker's and its successor's)."""
    from tenants.models import RevokeRequest

    calls = RevokeRequest.objects.values_list("graph_calls", flat=True).get(pk=revoke_id)
    return sum(1 for call in calls if call["method"] != "GET")


def _count(values: Any) -> dict[str, int]:
    counted: dict[str, int] = {}
    for value in values:
        counted[str(value)] = counted.get(str(value), 0) + 1
    return counted


def _slowest(samples: list[Sample], shown: int = 3) -> str:
    by_page: dict[str, list[float]] = {}
    for sample in samples:
        page = sample.url.split("/tenants/")[-1]
        by_page.setdefault(page, []).append(sample.seconds)
    medians = sorted(((percentile(v, 0.5), page) for page, v in by_page.items()), reverse=True)
    return ", ".join(f"{page} {median * 1000:.0f} ms" for median, page in medians[:shown])


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"
