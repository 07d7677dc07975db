"""The example manifest (tests/fixtures/manifests/example.yaml) and the ways to spoil it,
each with the one-line error it gives: the parser's and the import command's tests."""

from pathlib import Path

EXAMPLE_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "manifests" / "example.yaml"

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
