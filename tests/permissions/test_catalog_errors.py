"""Bad input: one line naming the file and the problem, and nothing written."""

import json
from pathlib import Path

import pytest
import requests

from permissions.catalog import CatalogImportError, catalog_import_reference
from permissions.models import CatalogChange, Permission, Resource
from permissions.sources import SourceError, load_json

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reference"
PERMISSIONS = FIXTURES / "permissions.json"


def broken_permissions(tmp_path, change):
    data = json.loads(PERMISSIONS.read_text())
    change(data)
    path = tmp_path / "permissions.json"
    path.write_text(json.dumps(data))
    return str(path)


def import_error(**arguments) -> str:
    with pytest.raises(CatalogImportError) as error:
        catalog_import_reference(**arguments)
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.mark.django_db
def test_a_missing_permissions_key_is_named(tmp_path):
    path = broken_permissions(tmp_path, lambda data: data.pop("permissions"))

    assert import_error(permissions=path) == "permissions.json: 'permissions' is missing"
    assert not Resource.objects.exists()


@pytest.mark.django_db
def test_a_path_set_without_paths_is_named_with_its_position(tmp_path):
    path = broken_permissions(
        tmp_path,
        lambda data: data["permissions"]["Group.ReadBasic.All"]["pathSets"][1].pop("paths"),
    )

    assert import_error(permissions=path) == (
        "permissions.json: Group.ReadBasic.All.pathSets[1] has no 'paths'"
    )


@pytest.mark.django_db
def test_a_privilege_level_that_is_not_a_number_is_named(tmp_path):
    def change(data):
        data["permissions"]["User.Read"]["schemes"]["DelegatedWork"]["privilegeLevel"] = "high"

    path = broken_permissions(tmp_path, change)

    assert import_error(permissions=path) == (
        "permissions.json: User.Read.schemes.DelegatedWork.privilegeLevel is not a number"
    )


@pytest.mark.django_db
def test_a_file_that_is_not_json_is_refused(tmp_path):
    path = tmp_path / "permissions.json"
    path.write_text('{"permissions": {')

    assert import_error(permissions=str(path)).startswith(f"{path}: not JSON (")


@pytest.mark.django_db
def test_a_missing_file_is_named():
    assert import_error(permissions="/nowhere/permissions.json") == (
        "/nowhere/permissions.json: not found"
    )


@pytest.mark.django_db
def test_an_id_that_is_not_a_guid_is_named(tmp_path):
    data = json.loads((FIXTURES / "permissions-descriptions.json").read_text())
    data["applicationScopesList"][1]["id"] = "not-a-guid"
    path = tmp_path / "permissions-descriptions.json"
    path.write_text(json.dumps(data))

    assert import_error(descriptions=str(path)) == (
        "permissions-descriptions.json: applicationScopesList[1].id is not a GUID"
    )


@pytest.mark.django_db
def test_an_unknown_tier_is_named(tmp_path):
    data = json.loads((FIXTURES / "Classification_MsGraphScopes.json").read_text())
    data[2]["EAMTierLevelName"] = "Tier0"
    path = tmp_path / "Classification_MsGraphScopes.json"
    path.write_text(json.dumps(data))

    assert import_error(classifications=[str(path)]) == (
        "Classification_MsGraphScopes.json: [2].EAMTierLevelName 'Tier0' is not a known tier"
    )


@pytest.mark.django_db
def test_a_bad_second_file_keeps_the_first_one_from_being_written(tmp_path):
    catalog_import_reference(permissions=str(PERMISSIONS))
    before = list(Permission.objects.values_list("pk", "updated_at", "graph_id"))
    descriptions = tmp_path / "permissions-descriptions.json"
    descriptions.write_text(json.dumps({"delegatedScopesList": []}))

    message = import_error(
        permissions=str(FIXTURES / "permissions-v2.json"), descriptions=str(descriptions)
    )

    assert message == "permissions-descriptions.json: 'applicationScopesList' is missing"
    assert list(Permission.objects.values_list("pk", "updated_at", "graph_id")) == before
    assert CatalogChange.objects.filter(action="changed").count() == 0


class FakeResponse:
    def __init__(self, status_code: int, reason: str, content: bytes = b"") -> None:
        self.status_code = status_code
        self.reason = reason
        self.content = content


def test_load_json_reads_an_https_url(monkeypatch):
    monkeypatch.setattr(requests, "get", lambda url, timeout: FakeResponse(200, "OK", b'{"a": 1}'))

    assert load_json("https://example.test/p.json") == {"a": 1}


def test_load_json_names_the_http_status(monkeypatch):
    monkeypatch.setattr(requests, "get", lambda url, timeout: FakeResponse(404, "Not Found"))

    with pytest.raises(SourceError) as error:
        load_json("https://example.test/p.json")

    assert str(error.value) == "https://example.test/p.json: HTTP 404 Not Found"


def test_load_json_says_when_it_cannot_connect(monkeypatch):
    def refuse(url, timeout):
        raise requests.ConnectionError("refused")

    monkeypatch.setattr(requests, "get", refuse)

    with pytest.raises(SourceError) as error:
        load_json("https://example.test/p.json")

    assert str(error.value) == "https://example.test/p.json: cannot connect (ConnectionError)"


def test_load_json_reads_a_file_that_starts_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "classification.json"
    path.write_bytes(b"\xef\xbb\xbf[]")

    assert load_json(str(path)) == []
