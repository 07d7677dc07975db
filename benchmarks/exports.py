"""The report exports of a large tenant and of one ten times larger, on PostgreSQL.

Two tenants built as `benchmarks.pages` builds its tenant (bulk inserts): 2,000
applications holding 60,000 grants (1x) and 20,000 holding 600,000 (10x). Each export (the
JSON and the CSV download) is requested through Django's test client as a superuser, with
DEBUG off as in production, and its streamed body consumed chunk by chunk and dropped, as
a WSGI server sends it on. Each runs in a forked child, so that one's memory is not
another's, and is measured twice:

- time to the first byte and to the first application (the first chunk that holds one),
  and to the last byte; without tracing;
- peak memory: the peak of Python's allocations while the response is made and consumed
  (tracemalloc, from the request on), and the process's peak RSS growth beside it.

PASS/FAIL: peak memory at 10x at most 1.2x that at 1x (issue 14).

Settings: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/portal_bench_exports);
the database is created if missing and migrated, and its portal tables are emptied first.
BENCH_EXPORTS_SCALE (default 10): the larger tenant's size in 1x tenants.
"""

from __future__ import annotations

import os
import secrets
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks._database import database_ensure
from benchmarks._fork import in_child
from benchmarks._interpreter import in_fresh_interpreter
from benchmarks.sync import _status_kb

if TYPE_CHECKING:
    from tenants.models import Tenant

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal_bench_exports"
APPLICATIONS = 2000
GRANTS_PER_APPLICATION = 30
MAX_MEMORY_RATIO = 1.2
CHILD_TIMEOUT = 900
EXPORTS = (("JSON", "tenants:report-json"), ("CSV", "tenants:report-csv"))


@dataclass(frozen=True)
class Timing:
    first_byte: float
    first_application: float
    total: float
    size: int


@dataclass(frozen=True)
class Memory:
    traced_peak: int
    rss_growth_kb: int


def main() -> None:
    in_fresh_interpreter("exports", run)


def run() -> None:
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    scale = int(os.environ.get("BENCH_EXPORTS_SCALE", "10"))
    database_ensure(database_url)
    django_setup(database_url)
    from benchmarks.pages import large_tenant_create, tables_clear

    tables_clear()
    started = time.perf_counter()
    sizes = {}
    for times, seed in ((1, 1), (scale, 2)):
        tenant = large_tenant_create(
            applications=APPLICATIONS * times,
            grants_per_application=GRANTS_PER_APPLICATION,
            seed=seed,
            name=f"Exports {times}x",
        )
        sizes[times] = tenant
    _vacuum()
    print(
        f"exports: tenants of {APPLICATIONS:,} and {APPLICATIONS * scale:,} applications, "
        f"{GRANTS_PER_APPLICATION} grants each, built in {time.perf_counter() - started:.0f} s; "
        "PostgreSQL; Django test client, DEBUG off; each export in a forked child",
        flush=True,
    )
    for line in measure(sizes, scale):
        print(line, flush=True)


def django_setup(database_url: str) -> None:
    """Settings come from the environment, so it is set before Django reads it."""
    os.environ.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        # As in production: with DEBUG, Django keeps every query's SQL, which grows with
        # the number of chunks.
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL=database_url,
    )
    import django
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    django.setup()
    setup_test_environment()  # the test client's host is allowed
    call_command("migrate", verbosity=0, interactive=False)


def _vacuum() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def measure(tenants: dict[int, Tenant], scale: int) -> list[str]:
    from django.contrib.auth import get_user_model

    user, _ = get_user_model().objects.get_or_create(
        username="bench-exports", defaults={"is_superuser": True, "is_staff": True}
    )
    lines = [
        f"exports: {'':12} {'first byte':>11} {'first app':>10} {'last byte':>10} "
        f"{'MiB':>7} {'traced peak':>12} {'RSS growth':>11}"
    ]
    peaks: dict[tuple[str, int], Memory] = {}
    for label, url_name in EXPORTS:
        for times, tenant in tenants.items():
            timing = in_child(
                _timed_child,
                user.pk,
                url_name,
                str(tenant.tenant_id),
                timeout=CHILD_TIMEOUT,
                what="an export",
            )
            memory = in_child(
                _memory_child,
                user.pk,
                url_name,
                str(tenant.tenant_id),
                timeout=CHILD_TIMEOUT,
                what="an export",
            )
            peaks[(label, times)] = memory
            lines.append(
                f"exports: {label:4} at {times:2}x  {timing.first_byte * 1000:8.0f} ms "
                f"{timing.first_application * 1000:7.0f} ms {timing.total:8.2f} s "
                f"{timing.size / 2**20:7.1f} {memory.traced_peak / 2**20:8.1f} MiB "
                f"{memory.rss_growth_kb / 1024:7.1f} MiB"
            )
    for label, _ in EXPORTS:
        small, large = peaks[(label, 1)], peaks[(label, scale)]
        ratio = large.traced_peak / small.traced_peak
        verdict = "PASS" if ratio <= MAX_MEMORY_RATIO else "FAIL"
        lines.append(
            f"exports: {label} peak memory at {scale}x is {ratio:.2f}x that at 1x "
            f"(target <= {MAX_MEMORY_RATIO}x): {verdict}"
        )
    return lines


def _response(user_id: int, url_name: str, tenant_id: str) -> Any:
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    client = Client()
    client.force_login(get_user_model().objects.get(pk=user_id))
    url = reverse(url_name, args=[tenant_id])
    return lambda: client.get(url, secure=True)


def _timed_child(user_id: int, url_name: str, tenant_id: str) -> Timing:
    get = _response(user_id, url_name, tenant_id)
    started = time.perf_counter()
    response = get()
    if response.status_code != 200 or not response.streaming:
        raise RuntimeError(f"{url_name} answered {response.status_code}, not a stream")
    first_byte = first_application = 0.0
    size = 0
    for chunk in response.streaming_content:
        now = time.perf_counter() - started
        first_byte = first_byte or now
        size += len(chunk)
        # The JSON's first application opens its object; the CSV's first chunk has rows.
        if not first_application and (b'"app_id"' in chunk or b"\n" in chunk.rstrip(b"\n")):
            first_application = now
    response.close()
    return Timing(first_byte, first_application, time.perf_counter() - started, size)


def _memory_child(user_id: int, url_name: str, tenant_id: str) -> Memory:
    get = _response(user_id, url_name, tenant_id)
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    start_kb = _status_kb("VmHWM")
    tracemalloc.start()
    response = get()
    for _chunk in response.streaming_content:
        pass
    response.close()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return Memory(peak, _status_kb("VmHWM") - start_kb)
