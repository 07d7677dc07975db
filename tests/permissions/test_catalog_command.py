"""The import_catalog management command."""

from io import StringIO
from pathlib import Path

import pytest
import requests
from django.core.management import CommandError, call_command

from permissions.catalog import REFERENCE_PERMISSIONS_URL

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


def test_it_loads_the_starter_catalog():
    assert "Permissions: 30 added" in run("--starter")


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
