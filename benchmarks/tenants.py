"""Many tenants: how many tenants real Celery workers sync per minute, with 1, 2 and 4
worker processes, on PostgreSQL and Redis, against the emulator in its own process.

The emulator serves 100 generated tenants of 200 service principals each (1,000 app-role
assignments, 2,000 delegated grants, 200 users: a tenth of the sync benchmark's tenant).
For each worker count, the tenant tables are emptied, the tenants onboarded again and one
sync of each queued at once (what the dispatcher does when they are all due); a worker
node started with ``--concurrency N`` (prefork: N processes, each reserving one task at a
time) works through the queue. Timed from the first sync queued to the last run ended;
every run must succeed. The after-sync digest tasks the syncs queue run on the same
workers, as in production.

PASS/FAIL: 2 worker processes sync at least 1.6x the tenants per minute of one (issue 14).
4 processes are measured too. Beside each rate: how many syncs ran at once at most (from
the runs' own start and end times), the CPU seconds the worker processes, the emulator
and PostgreSQL (the whole server) used per sync, and how busy the machine's CPUs were over the round (other work on the machine included):
the workers share the CPUs with the emulator (one Python process: it serves at most one
CPU's worth) and PostgreSQL, so where the CPUs are full more processes cannot sync faster.

Settings: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/portal_bench_tenants),
BENCH_BROKER_URL (default redis://127.0.0.1:6379/14; its queue is purged), BENCH_TENANTS
(default 100) for a quicker run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks._database import database_ensure
from benchmarks._interpreter import in_fresh_interpreter
from benchmarks.emulator_paging import REPO, emulator_process

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal_bench_tenants"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/14"
TENANTS = 100
TENANT_SIZE = {
    "service_principals": 200,
    "app_role_assignments": 1000,
    "delegated_grants": 2000,
    "users": 200,
}
WORKER_COUNTS = (1, 2, 4)
MIN_SPEEDUP_AT_TWO = 1.6
ROUND_TIMEOUT = 900
WORKER_START_SECONDS = 60


def main() -> None:
    in_fresh_interpreter("tenants", run)


def run() -> None:
    from benchmarks.sync import django_setup

    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    broker_url = os.environ.get("BENCH_BROKER_URL", DEFAULT_BROKER_URL)
    count = int(os.environ.get("BENCH_TENANTS", TENANTS))
    database_ensure(database_url)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        scenario, tenant_ids = scenario_write(Path(folder), count)
        with emulator_process(Path(folder), scenario) as running:
            print(
                f"tenants: {count} generated tenants of "
                + ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in TENANT_SIZE.items())
                + f"; the emulator up in {time.perf_counter() - started:.0f} s; PostgreSQL, "
                f"Redis, {os.cpu_count()} CPUs shared by the workers, the emulator and "
                "PostgreSQL",
                flush=True,
            )
            os.environ["CELERY_BROKER_URL"] = broker_url
            # Workers log warnings only: their lines would swamp the figures.
            os.environ["LOG_LEVEL"] = "WARNING"
            django_setup(database_url, running)
            emulator = emulator_pid()
            rates = {}
            for workers in WORKER_COUNTS:
                result = sync_round(tenant_ids, workers, Path(folder), emulator)
                rates[workers] = len(tenant_ids) / result.seconds * 60
                print(
                    f"tenants: {workers} worker process{'es' if workers > 1 else '  '}: "
                    f"{len(tenant_ids)} tenants in {result.seconds:6.1f} s, "
                    f"{rates[workers]:6.1f} tenants/min ({rates[workers] / rates[1]:.2f}x one); "
                    f"at most {result.parallel} at once; CPU a sync: workers "
                    f"{result.worker_cpu / len(tenant_ids):.2f} s, emulator "
                    f"{result.emulator_cpu / len(tenant_ids):.2f} s, PostgreSQL "
                    f"{result.postgres_cpu / len(tenant_ids):.2f} s; machine CPUs "
                    f"{result.machine_busy:.0%} busy",
                    flush=True,
                )
    speedup = rates[2] / rates[1]
    verdict = "PASS" if speedup >= MIN_SPEEDUP_AT_TWO else "FAIL"
    print(
        f"tenants: 2 workers sync {speedup:.2f}x the tenants per minute of one "
        f"(target >= {MIN_SPEEDUP_AT_TWO}x): {verdict}; 4 workers {rates[4] / rates[1]:.2f}x "
        f"on {os.cpu_count()} CPUs",
        flush=True,
    )


def scenario_write(folder: Path, count: int) -> tuple[Path, list[str]]:
    """One scenario holding ``count`` generated tenants (seeds 0...count-1)."""
    import yaml

    from emulator.generator import generate

    merged: dict[str, Any] | None = None
    for seed in range(count):
        one = generate(**TENANT_SIZE, seed=seed)
        if merged is None:
            merged = {**one, "name": f"{count} generated tenants"}
            continue
        if one["resources"] != merged["resources"]:
            raise RuntimeError("generated tenants disagree on the resources they share")
        known = {app["app_id"] for app in merged["applications"]}
        merged["applications"] += [a for a in one["applications"] if a["app_id"] not in known]
        merged["tenants"] += one["tenants"]
    assert merged is not None
    path = folder / "tenants.yaml"
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    path.write_text(yaml.dump(merged, Dumper=dumper, sort_keys=False))
    return path, [tenant["id"] for tenant in merged["tenants"]]


@dataclass(frozen=True)
class Round:
    seconds: float
    # The most runs that were running at the same moment.
    parallel: int
    # CPU seconds of the worker node's processes and of the emulator, and the share of
    # the machine's CPU time that was busy over the round.
    worker_cpu: float
    emulator_cpu: float
    # PostgreSQL's, other databases of the server included.
    postgres_cpu: float
    machine_busy: float


def sync_round(tenant_ids: list[str], workers: int, folder: Path, emulator: int) -> Round:
    """``workers`` processes sync every tenant once, from empty tables."""
    from benchmarks.sync import tables_clear
    from tenants.models import SyncRun
    from tenants.services import sync_run_request, tenant_add

    tables_clear()
    queue_purge()
    tenants = [tenant_add(tenant_id=tenant_id)[0] for tenant_id in tenant_ids]
    with worker_node(workers, folder / f"worker-{workers}.log") as node:
        cpu_before, machine_before = process_cpu_seconds(node.pid), machine_cpu()
        emulator_before, postgres_before = process_cpu_seconds(emulator), postgres_cpu_seconds()
        started = time.perf_counter()
        for tenant in tenants:
            # Outside a transaction: sent at once, as the dispatcher's are when it commits.
            if sync_run_request(tenant=tenant, trigger=SyncRun.Trigger.SCHEDULE) is None:
                raise RuntimeError(f"tenant {tenant.tenant_id} had an open run")
        deadline = started + ROUND_TIMEOUT
        runs = SyncRun.objects.all()
        while runs.filter(status__in=SyncRun.OPEN_STATUSES).exists():
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{workers} workers: not done within {ROUND_TIMEOUT} s")
            time.sleep(0.2)
        seconds = time.perf_counter() - started
        worker_cpu = process_cpu_seconds(node.pid) - cpu_before
        emulator_cpu = process_cpu_seconds(emulator) - emulator_before
        postgres_cpu = postgres_cpu_seconds() - postgres_before
        busy_after, total_after = machine_cpu()
        busy, total = busy_after - machine_before[0], total_after - machine_before[1]
    failed = runs.exclude(status=SyncRun.Status.SUCCEEDED)
    if failed.exists() or runs.count() != len(tenants):
        first = failed.first()
        raise RuntimeError(
            f"{workers} workers: {failed.count()} of {runs.count()} syncs did not succeed"
            + (f" ({first.status}: {first.error})" if first else "")
        )
    spans = list(runs.values_list("started_at", "finished_at"))
    return Round(seconds, most_at_once(spans), worker_cpu, emulator_cpu, postgres_cpu, busy / total)


def most_at_once(spans: list[tuple[datetime, datetime]]) -> int:
    """The most spans that overlap at one moment."""
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def emulator_pid() -> int:
    """The emulator: the child process of this one that runs `python -m emulator`."""
    pid = os.getpid()
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        if b"emulator" in Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0"):
            return int(child)
    raise RuntimeError("the emulator's process was not found")


def machine_cpu() -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine so far, in clock ticks (/proc/stat)."""
    fields = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


def process_cpu_seconds(pid: int, *, ended_children: bool = False) -> float:
    """User and system CPU seconds so far of a process and its live children (a worker
    node's pool), and with ``ended_children`` of the children it has reaped (PostgreSQL's
    postmaster: a backend ends with its connection)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    ticks = 0
    for process in [str(pid), *children]:
        try:
            # The fields after the command's closing parenthesis: utime, stime, cutime and
            # cstime are the 12th to 15th of them.
            stat = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue  # ended meanwhile
        ticks += int(stat[11]) + int(stat[12])
        if ended_children and process == str(pid):
            ticks += int(stat[13]) + int(stat[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """PostgreSQL's CPU seconds so far, every database of the server included: its
    postmaster (the postgres process whose parent is not one) and its backends."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            parent = Path(f"/proc/{text.rsplit(')', 1)[1].split()[1]}/comm").read_text()
        except (FileNotFoundError, IndexError):
            continue
        if "(postgres)" in text and parent.strip() != "postgres":
            return process_cpu_seconds(int(stat.parent.name), ended_children=True)
    return float("nan")  # a server on another machine: not measured


def queue_purge() -> None:
    """Nothing an earlier run left in the broker's queue may be taken for this one's."""
    from portal.celery import app

    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge(app.conf.task_default_queue)


@contextmanager
def worker_node(processes: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A Celery worker node of ``processes`` prefork processes, ready to take tasks."""
    from portal.celery import app

    name = f"bench-{processes}-{os.getpid()}@localhost"
    command = [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool", "prefork"]
    command += ["--concurrency", str(processes), "--hostname", name, "--loglevel", "WARNING"]
    command += ["--without-gossip", "--without-mingle"]
    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=REPO, stdout=output, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + WORKER_START_SECONDS
            while not app.control.ping(destination=[name], timeout=1.0):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the worker did not start: {log.read_text()[-2000:]}")
            yield process
        finally:
            process.terminate()  # a warm shutdown: the node is idle by now
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
