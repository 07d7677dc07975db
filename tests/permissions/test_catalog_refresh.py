"""The weekly catalog refresh: from the public URLs where it can reach them, recorded, never partial.

No test leaves the machine: the URLs point at the fixtures, as files or over HTTPS on
loopback with the emulator's private CA.
"""

import functools
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from emulator.pki import load_or_create
from permissions import catalog
from permissions.models import CatalogChange, CatalogImport, Permission
from permissions.tasks import refresh_catalog

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reference"
FILES = {
    "REFERENCE_PERMISSIONS_URL": "permissions.json",
    "REFERENCE_DESCRIPTIONS_URL": "permissions-descriptions.json",
}
CLASSIFICATIONS = ("Classification_MsGraphAppRoles.json", "Classification_MsGraphScopes.json")

pytestmark = pytest.mark.django_db


def point_urls_at(monkeypatch, base: str, **replace: str) -> None:
    """The refresh's public URLs, each now `base` + a fixture's name (or `replace`'s)."""
    for name, file in FILES.items():
        monkeypatch.setattr(catalog, name, replace.get(name, f"{base}{file}"))
    monkeypatch.setattr(
        catalog, "CLASSIFICATION_URLS", tuple(f"{base}{f}" for f in CLASSIFICATIONS)
    )


@pytest.fixture
def local_files(monkeypatch) -> None:
    point_urls_at(monkeypatch, f"{FIXTURES}/")


class _Handler(SimpleHTTPRequestHandler):
    asked: list[str]

    def log_message(self, format: str, *args: object) -> None:
        self.asked.append(self.path)


@pytest.fixture
def https_server(tmp_path, monkeypatch) -> Iterator[tuple[str, list[str]]]:
    """The fixtures served over HTTPS on 127.0.0.1; yields the base URL and the paths asked."""
    pki = load_or_create(tmp_path / "pki")
    asked: list[str] = []
    handler = functools.partial(
        type("Handler", (_Handler,), {"asked": asked}), directory=str(FIXTURES)
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.socket = pki.server_context().wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # requests trusts the emulator's CA only through this variable, for these tests.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.ca_path))
    yield f"https://127.0.0.1:{server.server_address[1]}/", asked
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def catalog_state() -> list[tuple]:
    return list(
        Permission.objects.order_by("pk").values_list(
            "pk", "value", "kind", "graph_id", "tier", "privilege_level", "description", "source"
        )
    )


def test_the_weekly_task_refreshes_the_catalog_and_records_how(local_files):
    assert refresh_catalog() == "succeeded"

    run = CatalogImport.objects.get()
    assert (run.source, run.trigger, run.status, run.error) == (
        "reference",
        "schedule",
        "succeeded",
        "",
    )
    assert (run.permissions_added, run.api_calls_added, run.tiers_set) == (10, 22, 8)
    assert run.locations == [
        catalog.REFERENCE_PERMISSIONS_URL,
        catalog.REFERENCE_DESCRIPTIONS_URL,
        *catalog.CLASSIFICATION_URLS,
    ]
    assert Permission.objects.get(value="Device.Read.All").tier == "ControlPlane"
    assert set(CatalogChange.objects.values_list("catalog_import", flat=True)) == {run.pk}


def test_a_second_refresh_changes_nothing_and_says_so(local_files):
    refresh_catalog()
    before = catalog_state()

    assert refresh_catalog() == "succeeded"

    second = CatalogImport.objects.order_by("-pk").first()
    assert not second.changed_anything
    assert second.permissions_unchanged == 10
    assert catalog_state() == before


def test_the_refresh_reads_the_urls_over_https(https_server, monkeypatch):
    base, asked = https_server
    point_urls_at(monkeypatch, base)

    assert refresh_catalog() == "succeeded"

    assert sorted(asked) == sorted(f"/{name}" for name in [*FILES.values(), *CLASSIFICATIONS])
    assert Permission.objects.count() == 10


def test_an_unreachable_url_is_a_failed_row_and_the_catalog_stays(local_files, monkeypatch):
    catalog_import_fixtures()
    before, changes = catalog_state(), CatalogChange.objects.count()
    url = f"https://127.0.0.1:{closed_port()}/permissions.json"
    monkeypatch.setattr(catalog, "REFERENCE_PERMISSIONS_URL", url)

    assert refresh_catalog() == "failed"

    run = CatalogImport.objects.get(trigger="schedule")
    assert run.status == "failed"
    assert run.error == f"{url}: cannot connect (ConnectionError)"
    assert run.finished_at is not None
    assert catalog_state() == before
    assert CatalogChange.objects.count() == changes


def test_a_missing_file_on_the_server_is_a_failed_row(https_server, monkeypatch):
    base, _ = https_server
    point_urls_at(
        monkeypatch, base, REFERENCE_DESCRIPTIONS_URL=f"{base}gone/permissions-descriptions.json"
    )

    assert refresh_catalog() == "failed"

    error = CatalogImport.objects.get().error
    assert error == f"{base}gone/permissions-descriptions.json: HTTP 404 File not found"
    assert not Permission.objects.exists()


def test_bad_data_in_any_file_imports_nothing_from_the_others(local_files, monkeypatch, tmp_path):
    broken = tmp_path / "Classification_MsGraphScopes.json"
    broken.write_text('[{"ScopeId": "5f8c59db-677d-491f-a6b8-5f174b11ec1d"}]')
    monkeypatch.setattr(
        catalog, "CLASSIFICATION_URLS", (catalog.CLASSIFICATION_URLS[0], str(broken))
    )

    assert refresh_catalog() == "failed"

    assert CatalogImport.objects.get().error == (
        "Classification_MsGraphScopes.json: [0] has no 'EAMTierLevelName'"
    )
    assert not Permission.objects.exists()


def test_a_failure_while_writing_rolls_the_whole_import_back(local_files, monkeypatch):
    catalog_import_fixtures()
    before = catalog_state()
    monkeypatch.setattr(catalog, "REFERENCE_PERMISSIONS_URL", str(FIXTURES / "permissions-v2.json"))
    monkeypatch.setattr(
        catalog, "REFERENCE_DESCRIPTIONS_URL", str(FIXTURES / "permissions-descriptions-v2.json")
    )

    def disk_full(**kwargs):
        raise OSError("disk full")

    # After the permissions are written, before the API calls are.
    real = catalog._sync_api_calls
    monkeypatch.setattr(catalog, "_sync_api_calls", disk_full)

    with pytest.raises(OSError, match="disk full"):
        refresh_catalog()

    run = CatalogImport.objects.get(trigger="schedule")
    assert (run.status, run.error) == ("failed", "OSError: disk full")
    assert catalog_state() == before
    # Not for want of changes: without the failure, the same refresh changes permissions.
    monkeypatch.setattr(catalog, "_sync_api_calls", real)
    assert refresh_catalog() == "succeeded"
    assert catalog_state() != before


def test_a_refresh_waits_for_an_import_that_is_running(local_files):
    CatalogImport.objects.create(source="reference", trigger="command", started_at=timezone.now())

    assert refresh_catalog() == "another import is running"

    assert CatalogImport.objects.count() == 1
    assert not Permission.objects.exists()


def test_an_import_that_never_finished_is_marked_abandoned(local_files):
    long_ago = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)
    stuck = CatalogImport.objects.create(
        source="reference", trigger="schedule", started_at=long_ago
    )

    assert refresh_catalog() == "succeeded"

    stuck.refresh_from_db()
    assert stuck.status == "failed"
    assert stuck.error.startswith("Abandoned")


def test_beat_runs_the_refresh_once_a_week():
    entry = settings.CELERY_BEAT_SCHEDULE["weekly-catalog-refresh"]

    assert entry["task"] == refresh_catalog.name == "permissions.tasks.refresh_catalog"
    assert entry["schedule"].day_of_week == {0}  # Sunday, before Monday's weekly digests
    assert len(entry["schedule"].hour) == len(entry["schedule"].minute) == 1


def catalog_import_fixtures() -> None:
    catalog.catalog_import_reference(
        permissions=str(FIXTURES / "permissions.json"),
        descriptions=str(FIXTURES / "permissions-descriptions.json"),
        classifications=[str(FIXTURES / name) for name in CLASSIFICATIONS],
    )


def test_an_interrupted_import_does_not_hold_off_the_next_one(local_files, monkeypatch):
    def interrupted(**kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(catalog, "catalog_import_reference", interrupted)

    with pytest.raises(KeyboardInterrupt):
        refresh_catalog()

    assert CatalogImport.objects.get().status == "failed"
    monkeypatch.undo()
    point_urls_at(monkeypatch, f"{FIXTURES}/")
    assert refresh_catalog() == "succeeded"
