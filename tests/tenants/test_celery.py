"""A real Celery worker runs the dispatcher and a sync against the emulator.

The broker is Redis when CELERY_BROKER_URL names one (CI), else the in-memory transport.
"""

import os
import threading
import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import connection
from django.utils import timezone

from portal.celery import app as celery_app
from tenants.models import SyncRun, Tenant
from tenants.tasks import dispatch_due_syncs
from tests.helpers import use_broker

pytestmark = pytest.mark.django_db(transaction=True)

BROKER = os.environ.get("CELERY_BROKER_URL", "").strip()
WAIT_SECONDS = 60


@pytest.fixture
def worker(emu):
    """A worker thread with its own consumer, on the configured broker."""
    redis = BROKER.startswith("redis://")
    use_broker(BROKER if redis else "memory://")
    if connection.vendor == "sqlite":
        # The test database is SQLite's shared-cache memory database, where a reader holds a
        # table lock that a writer is refused at once ("database table is locked"), busy
        # timeout or not: this thread's polling must not take it from the worker's writes.
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA read_uncommitted = 1")
    if redis:  # nothing another run left behind may be consumed here
        with celery_app.connection_for_write() as broker:
            broker.default_channel.queue_purge(celery_app.conf.task_default_queue)
    try:
        with start_worker(
            celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30
        ) as worker:
            yield worker
    finally:
        use_broker("memory://")


def wait_for_run(tenant: Tenant) -> SyncRun:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        run = SyncRun.objects.filter(tenant=tenant).order_by("-pk").first()
        if run and not run.is_open:
            return run
        time.sleep(0.2)
    raise AssertionError(f"no sync of {tenant} finished within {WAIT_SECONDS}s")


def test_a_worker_runs_the_dispatcher_and_the_sync_it_queues(worker, contoso):
    assert contoso.next_sync_at <= timezone.now()

    dispatch_due_syncs.delay()

    run = wait_for_run(contoso)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert run.trigger == SyncRun.Trigger.SCHEDULE
    assert run.grants_added > 30
    assert SyncRun.objects.filter(tenant=contoso).count() == 1
    contoso.refresh_from_db()
    assert contoso.last_good_sync == run


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row-level races need a server database"
)
def test_two_dispatchers_racing_for_a_tenant_queue_one_sync(contoso, monkeypatch):
    sent: list[int] = []
    monkeypatch.setattr("tenants.tasks.sync_tenant.delay", lambda run_id: sent.append(run_id))
    start = threading.Barrier(2)
    counts: list[int] = []

    def dispatcher() -> None:
        start.wait()
        try:
            counts.append(dispatch_due_syncs())
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(counts) == [0, 1]
    assert SyncRun.objects.filter(tenant=contoso).count() == 1
    assert len(sent) == 1
