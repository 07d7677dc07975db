"""Reading and validating manifest YAML: no database involved (no django_db mark)."""

import uuid

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
from tests.permissions.manifest_cases import EXAMPLE_PATH, INVALID

EXAMPLE = EXAMPLE_PATH.read_text()
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
