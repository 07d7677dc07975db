"""Reading and validating manifest YAML: no database involved (no django_db mark)."""

import uuid
from pathlib import Path

import pytest

from permissions.manifests import (
    FeatureSpec,
    ManifestError,
    ManifestSpec,
    RequirementSpec,
    manifest_parse,
    manifest_read,
)
from permissions.models import MICROSOFT_GRAPH_APP_ID, MICROSOFT_INTUNE_APP_ID, PermissionKind

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "manifests"
EXAMPLE = (FIXTURES / "example.yaml").read_text()
GRAPH = uuid.UUID(MICROSOFT_GRAPH_APP_ID)


def parse(text: str) -> ManifestSpec:
    return manifest_parse(data=text.encode(), source="247connect.yaml")


def error_of(data: bytes) -> str:
    with pytest.raises(ManifestError) as caught:
        manifest_parse(data=data, source="247connect.yaml")
    return str(caught.value)


def test_it_reads_the_example_with_defaults_filled_in():
    spec = parse(EXAMPLE)

    assert spec.app_id == uuid.UUID("8708fc71-9f71-4ad5-8445-a0746692feeb")
    assert (spec.name, spec.publisher, spec.docs_url) == ("247connect", "247connect", "")
    assert [feature.key for feature in spec.features] == [
        "device-assignment",
        "organisation-details",
        "intune-health",
    ]
    assert spec.features[0] == FeatureSpec(
        key="device-assignment",
        name="Device assignment",
        description="Puts devices into device groups.",
        default_enabled=True,
        requirements=(
            RequirementSpec(
                permission="Device.Read.All",
                kind=PermissionKind.APPLICATION,
                resource_app_id=GRAPH,
                reason="Reads devices to place them.",
                api_calls=("GET /devices", "GET /groups"),
            ),
            RequirementSpec(
                permission="Group.Read.All",
                kind=PermissionKind.APPLICATION,
                resource_app_id=GRAPH,
                reason="Reads the device groups.",
            ),
        ),
    )
    assert spec.features[1].default_enabled is False
    assert spec.features[2].requirements[0].resource_app_id == uuid.UUID(MICROSOFT_INTUNE_APP_ID)


def test_the_spec_is_frozen():
    spec = parse(EXAMPLE)
    with pytest.raises(AttributeError):
        spec.name = "Something else"  # type: ignore[misc]


def test_it_trims_the_newline_a_block_scalar_ends_with():
    text = EXAMPLE.replace(
        "    description: Puts devices into device groups.\n",
        "    description: |\n      Puts devices into device groups.\n      Every hour.\n",
    )
    assert parse(text).features[0].description == "Puts devices into device groups.\nEvery hour."


def test_it_accepts_a_byte_order_mark():
    assert manifest_parse(data=b"\xef\xbb\xbf" + EXAMPLE.encode(), source="x.yaml").name == (
        "247connect"
    )


# Each case changes one thing in tests/fixtures/manifests/example.yaml; the line numbers
# are that file's.
INVALID = {
    "unknown type": (
        "type: application\n        reason: Reads the device groups.",
        "type: app\n        reason: Reads the device groups.",
        "247connect.yaml:16: features[0].permissions[1].type: "
        "'app' is not one of application, delegated",
    ),
    "unknown top-level key": (
        'PartnerTenantHeartbeat"]\n',
        'PartnerTenantHeartbeat"]\ncolour: blue\n',
        "247connect.yaml:36: colour: unknown key; expected one of manifest, application, features",
    ),
    "unknown application key": (
        "  publisher: 247connect\n",
        "  publisher: 247connect\n  vendor: 247connect\n",
        "247connect.yaml:6: application.vendor: unknown key; "
        "expected one of app_id, name, publisher, docs_url",
    ),
    "unknown feature key": (
        "    default_enabled: false",
        "    enabled: false",
        "247connect.yaml:21: features[1].enabled: unknown key; "
        "expected one of key, name, description, default_enabled, permissions",
    ),
    "unknown permission key": (
        "        reason: Reads the organisation profile.",
        "        why: Reads the organisation profile.",
        "247connect.yaml:26: features[1].permissions[0].why: unknown key; "
        "expected one of permission, type, resource, reason, api_calls",
    ),
    "missing reason": (
        "        reason: Reads the device groups.\n",
        "",
        "247connect.yaml:15: features[0].permissions[1].reason: required key is missing",
    ),
    "missing application name": (
        "  name: 247connect\n",
        "",
        "247connect.yaml:3: application.name: required key is missing",
    ),
    "bad app_id": (
        "app_id: 8708fc71-9f71-4ad5-8445-a0746692feeb",
        "app_id: 8708fc71-9f71-4ad5-8445",
        "247connect.yaml:3: application.app_id: '8708fc71-9f71-4ad5-8445' is not a GUID "
        "(like 00000003-0000-0000-c000-000000000000)",
    ),
    "bad resource": (
        "resource: c161e42e-d4df-4a3d-9b42-e7a3c31f59d4",
        "resource: intune",
        "247connect.yaml:33: features[2].permissions[0].resource: 'intune' is not a GUID "
        "(like 00000003-0000-0000-c000-000000000000)",
    ),
    "duplicate feature key, in another case": (
        "key: intune-health",
        "key: Device-Assignment",
        "247connect.yaml:27: features[2].key: duplicate feature key 'Device-Assignment' "
        "(first at line 7)",
    ),
    "duplicate permission in a feature, in another case": (
        "permission: Group.Read.All",
        "permission: device.read.all",
        "247connect.yaml:15: features[0].permissions[1]: device.read.all (application) "
        "is already listed in this feature (line 11)",
    ),
    "wrong manifest version": (
        "manifest: 1",
        "manifest: 2",
        "247connect.yaml:1: manifest: version 2 is not supported; this portal reads manifest: 1",
    ),
    "manifest version as text": (
        "manifest: 1",
        'manifest: "1"',
        "247connect.yaml:1: manifest: expected a version number, got text ('1'); "
        "this portal reads manifest: 1",
    ),
    "api call with a lower-case method": (
        '"GET /groups"',
        '"get /groups"',
        "247connect.yaml:14: features[0].permissions[0].api_calls[1]: 'get /groups' is not of "
        'the form "METHOD /path" with METHOD one of GET, POST, PUT, PATCH, DELETE',
    ),
    "api call with an unknown method": (
        '"GET /groups"',
        '"FETCH /groups"',
        "247connect.yaml:14: features[0].permissions[0].api_calls[1]: 'FETCH /groups' is not of "
        'the form "METHOD /path" with METHOD one of GET, POST, PUT, PATCH, DELETE',
    ),
    "api call without a path": (
        '"GET /groups"',
        '"GET groups"',
        "247connect.yaml:14: features[0].permissions[0].api_calls[1]: 'GET groups' is not of "
        'the form "METHOD /path" with METHOD one of GET, POST, PUT, PATCH, DELETE',
    ),
    "api call listed twice": (
        '"GET /groups"',
        '"GET /devices"',
        "247connect.yaml:14: features[0].permissions[0].api_calls[1]: 'GET /devices' is listed "
        "twice",
    ),
    "api_calls not a list": (
        'api_calls: ["GET /devices", "GET /groups"]',
        "api_calls: GET /devices",
        "247connect.yaml:14: features[0].permissions[0].api_calls: expected a list, "
        "got text ('GET /devices')",
    ),
    "feature key not a slug": (
        "key: organisation-details",
        "key: organisation details",
        "247connect.yaml:18: features[1].key: 'organisation details' is not a slug "
        "(letters, digits, hyphens and underscores only)",
    ),
    "key given twice in one mapping": (
        "    name: Intune health\n",
        "    name: Intune health\n    name: Intune health again\n",
        "247connect.yaml:29: features[2].name: key given twice (first at line 28)",
    ),
    "a number where text belongs": (
        "  name: 247connect",
        "  name: 2024",
        "247connect.yaml:4: application.name: expected text, got a number ('2024')",
    ),
    "an empty reason": (
        "reason: Reads devices to place them.",
        'reason: ""',
        "247connect.yaml:13: features[0].permissions[0].reason: must not be empty",
    ),
    "default_enabled not a boolean": (
        "default_enabled: false",
        "default_enabled: maybe",
        "247connect.yaml:21: features[1].default_enabled: expected true or false, "
        "got text ('maybe')",
    ),
    "docs_url not a URL": (
        "  publisher: 247connect\n",
        "  publisher: 247connect\n  docs_url: the vendor's site\n",
        '247connect.yaml:6: application.docs_url: "the vendor\'s site" is not an http(s) URL',
    ),
    "permission value with a space": (
        "permission: Group.Read.All",
        "permission: Group.Read.All User.Read",
        "247connect.yaml:15: features[0].permissions[1].permission: "
        "'Group.Read.All User.Read' contains a space",
    ),
    "a name longer than the column": (
        "  name: 247connect",
        "  name: " + "x" * 201,
        "247connect.yaml:4: application.name: longer than 200 characters",
    ),
    "not YAML": (
        "    name: Device assignment",
        "    name: Device: assignment",
        "247connect.yaml:8: not valid YAML: mapping values are not allowed here",
    ),
}


@pytest.mark.parametrize(("old", "new", "expected"), INVALID.values(), ids=INVALID.keys())
def test_each_error_is_one_line_naming_file_line_and_key(old, new, expected):
    assert old in EXAMPLE
    message = error_of(EXAMPLE.replace(old, new, 1).encode())

    assert message == expected
    assert "\n" not in message


def test_features_must_be_a_list():
    text = EXAMPLE[: EXAMPLE.index("features:")] + "features:\n"
    assert error_of(text.encode()) == "247connect.yaml:6: features: expected a list, got nothing"


def test_the_first_error_in_file_order_wins():
    text = EXAMPLE.replace("type: application", "type: app").replace(
        "key: intune-health", "key: intune health"
    )
    assert error_of(text.encode()).startswith("247connect.yaml:12: features[0].permissions[0].type")


def test_a_newer_manifest_version_is_named_before_its_unknown_keys():
    text = "manifest: 2\nproduct:\n  id: 1\n"
    assert error_of(text.encode()) == (
        "247connect.yaml:1: manifest: version 2 is not supported; this portal reads manifest: 1"
    )


def test_a_binary_file_is_rejected():
    assert error_of(b"manifest: 1\n\x00\x01\x02") == (
        "247connect.yaml:2: binary file (NUL byte), not a YAML manifest"
    )


def test_a_file_that_is_not_utf8_names_the_line_of_the_bad_byte():
    data = EXAMPLE.replace("Intune health", "Intune sant\xe9").encode("latin-1")
    assert error_of(data) == "247connect.yaml:28: not UTF-8 text (byte 0xe9)"


def test_a_utf16_file_is_named_as_such_rather_than_binary():
    assert error_of(EXAMPLE.encode("utf-16")) == (
        "247connect.yaml:1: not UTF-8 text (UTF-16); save the file as UTF-8"
    )


@pytest.mark.parametrize("data", [b"", b"\n  \n", b"# nothing here yet\n"])
def test_an_empty_file_is_rejected(data):
    assert error_of(data) == "247connect.yaml:1: empty file, expected a manifest"


@pytest.mark.parametrize(
    ("data", "got"), [(b"- manifest: 1\n", "a list"), (b"just words\n", "text ('just words')")]
)
def test_the_top_level_must_be_a_mapping(data, got):
    assert error_of(data) == (
        f"247connect.yaml:1: expected a mapping (manifest, application, features), got {got}"
    )


def test_a_control_character_is_reported_as_invalid_yaml():
    assert error_of(b"manifest: 1\nname: a\x07b\n") == (
        "247connect.yaml:2: not valid YAML: character U+0007 is not allowed"
    )


def test_two_documents_in_one_file_are_rejected():
    message = error_of(EXAMPLE.encode() + b"---\nmanifest: 1\n")
    assert message.startswith("247connect.yaml:36: not valid YAML: ")
    assert "single document" in message


def test_reading_a_missing_file_names_it(tmp_path):
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(ManifestError) as caught:
        manifest_read(path=path)
    assert str(caught.value) == f"{path}: cannot read the file: No such file or directory"
