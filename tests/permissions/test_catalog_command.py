"""The import_catalog management command."""

from io import StringIO
from pathlib import Path

import pytest
import requests
from django.core.management import CommandError, call_command
from django.utils import timezone

from permissions.catalog import REFERENCE_PERMISSIONS_URL
from permissions.models import CatalogChange, CatalogImport, Permission

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reference"
ALL_FILES = [
    "--permissions",
    str(FIXTURES / "permissions.json"),
    "--descriptions",
    str(FIXTURES / "permissions-descriptions.json"),
    "--classification",
    str(FIXTURES / "Classification_MsGraphAppRoles.json"),
    "--classification",
    str(FIXTURES / "Classification_MsGraphScopes.json"),
]

pytestmark = pytest.mark.django_db


def run(*arguments: str) -> str:
    out = StringIO()
    call_command("import_catalog", *arguments, stdout=out)
    return out.getvalue()


def test_it_prints_the_counts_and_the_time_taken():
    output = run(*ALL_FILES)

    assert "Permissions: 10 added, 0 changed, 0 removed, 0 unchanged." in output
    assert "API calls: 22 added, 0 removed" in output
    assert "Tiers set: 8." in output
    assert "Skipped 1 resource-specific consent (RSC) permissions." in output
    assert "Catalog imported in " in output


def test_it_says_nothing_changed_on_a_second_run():
    run(*ALL_FILES)

    output = run(*ALL_FILES)

    assert output.startswith("Catalog up to date, nothing changed (10 permissions checked) in ")


def test_it_loads_the_built_in_catalog_and_records_the_import():
    output = run("--starter")

    added = Permission.objects.count()
    assert added > 1400  # every Graph permission, from the snapshot
    assert f"Permissions: {added} added" in output
    recorded = CatalogImport.objects.get()
    assert (recorded.source, recorded.trigger, recorded.status) == (
        "starter",
        "command",
        "succeeded",
    )
    assert recorded.permissions_added == added


def test_each_run_is_recorded_with_what_it_read_and_its_counts():
    run(*ALL_FILES)

    recorded = CatalogImport.objects.get()
    assert recorded.locations == ALL_FILES[1::2]
    assert (recorded.permissions_added, recorded.api_calls_added, recorded.skipped) == (10, 22, 1)
    assert recorded.finished_at >= recorded.started_at
    assert CatalogChange.objects.filter(catalog_import=recorded).count() == 10


def test_a_failed_run_is_recorded_and_exits_with_its_reason():
    with pytest.raises(CommandError) as error:
        run("--permissions", str(FIXTURES / "missing.json"))

    recorded = CatalogImport.objects.get()
    assert recorded.status == "failed"
    assert recorded.error == str(error.value) == f"{FIXTURES / 'missing.json'}: not found"


def test_it_refuses_to_run_while_another_import_runs():
    CatalogImport.objects.create(source="reference", trigger="schedule", started_at=timezone.now())

    with pytest.raises(CommandError, match="another catalog import is running"):
        run(*ALL_FILES)

    assert not Permission.objects.exists()


def test_bad_input_fails_with_one_line_naming_the_file():
    with pytest.raises(CommandError) as error:
        run("--permissions", str(FIXTURES / "Classification_MsGraphScopes.json"))

    assert str(error.value) == "Classification_MsGraphScopes.json: the file is not an object"


def test_without_options_it_reads_the_public_urls(monkeypatch):
    asked = []

    def offline(url, timeout):
        asked.append(url)
        raise requests.ConnectionError("offline")

    monkeypatch.setattr(requests, "get", offline)

    with pytest.raises(CommandError) as error:
        run()

    assert asked == [REFERENCE_PERMISSIONS_URL]
    assert str(error.value) == f"{REFERENCE_PERMISSIONS_URL}: cannot connect (ConnectionError)"


def test_the_starter_is_not_mixed_with_reference_files():
    with pytest.raises(CommandError, match="--starter cannot be combined"):
        run("--starter", "--permissions", str(FIXTURES / "permissions.json"))
