"""The verdict engine, table-driven, with the seed vendors' cases."""

import pytest

from permissions.models import MICROSOFT_GRAPH_APP_ID as GRAPH
from permissions.models import MICROSOFT_INTUNE_APP_ID as INTUNE
from permissions.verdicts import (
    CallIndex,
    Need,
    PermissionKey,
    PermissionScope,
    Verdict,
    evaluate,
    normalize_api_call,
)


def app(value: str, resource: str = GRAPH) -> PermissionKey:
    return PermissionKey(resource, "application", value)


def delegated(value: str, resource: str = GRAPH) -> PermissionKey:
    return PermissionKey(resource, "delegated", value)


CONNECT_247 = [
    Need("device-assignment", app("Device.Read.All"), ("GET /devices",)),
    Need("device-assignment", app("Group.Read.All"), ("GET /groups",)),
    Need("organisation-details", app("Organization.Read.All"), ("GET /organization",)),
]
ROOMS_MONITORING = [
    Need("device-health", app("TeamworkDevice.ReadWrite.All")),
    Need("presence-alerts", app("Presence.Read.All")),
    Need("call-quality", app("CallRecords.Read.All")),
    Need("licence-insights", app("User.Read.All")),
    Need("smart-buildings", app("Place.Read.All")),
    Need("smart-buildings", app("Calendars.ReadBasic.All")),
]
ASKCODY = [
    Need("entra-integration-portal", delegated("User.Read.All")),
    Need("entra-user-sync", app("User.Read.All")),
]
LOOKOUT = [
    Need("enrollment-polling", app("Device.Read.All"), ("GET /devices",)),
    Need("app-inventory", app("update_device_health", INTUNE)),
]


def verdicts(evaluation) -> dict[PermissionKey, tuple[Verdict, tuple[str, ...]]]:
    return {f.permission: (f.verdict, f.features) for f in evaluation.grants}


@pytest.mark.parametrize(
    ("needs", "enabled", "granted", "expected"),
    [
        pytest.param(
            CONNECT_247,
            {"organisation-details"},
            [app("Device.Read.All"), app("Group.Read.All"), app("Organization.Read.All")],
            {
                app("Device.Read.All"): (Verdict.UNUSED, ("device-assignment",)),
                app("Group.Read.All"): (Verdict.UNUSED, ("device-assignment",)),
                app("Organization.Read.All"): (Verdict.NEEDED, ("organisation-details",)),
            },
            id="247connect with only organisation details enabled",
        ),
        pytest.param(
            ROOMS_MONITORING,
            {"device-health", "presence-alerts", "call-quality", "licence-insights"},
            [app("Place.Read.All"), app("Calendars.ReadBasic.All"), app("Presence.Read.All")],
            {
                app("Place.Read.All"): (Verdict.UNUSED, ("smart-buildings",)),
                app("Calendars.ReadBasic.All"): (Verdict.UNUSED, ("smart-buildings",)),
                app("Presence.Read.All"): (Verdict.NEEDED, ("presence-alerts",)),
            },
            id="monitoring platform without smart buildings",
        ),
        pytest.param(
            ASKCODY,
            {"entra-user-sync"},
            [app("User.Read.All"), delegated("User.Read.All")],
            {
                app("User.Read.All"): (Verdict.NEEDED, ("entra-user-sync",)),
                delegated("User.Read.All"): (Verdict.UNUSED, ("entra-integration-portal",)),
            },
            id="askcody application and delegated User.Read.All are different permissions",
        ),
        pytest.param(
            LOOKOUT,
            {"enrollment-polling", "app-inventory"},
            [app("update_device_health"), app("update_device_health", INTUNE)],
            {
                app("update_device_health"): (Verdict.UNEXPLAINED, ()),
                app("update_device_health", INTUNE): (Verdict.NEEDED, ("app-inventory",)),
            },
            id="lookout update_device_health lives on the Intune API, not Graph",
        ),
        pytest.param(
            [
                Need("mam", app("Device.Read.All")),
                Need("enrollment", app("Device.Read.All")),
            ],
            {"enrollment"},
            [app("Device.Read.All")],
            {app("Device.Read.All"): (Verdict.NEEDED, ("enrollment",))},
            id="a permission listed by two features is needed while either is enabled",
        ),
        pytest.param(
            [
                Need("mam", app("Device.Read.All")),
                Need("enrollment", app("Device.Read.All")),
            ],
            set(),
            [app("Device.Read.All")],
            {app("Device.Read.All"): (Verdict.UNUSED, ("mam", "enrollment"))},
            id="a permission listed by two disabled features is unused and names both",
        ),
        pytest.param(
            [],
            set(),
            [app("Directory.ReadWrite.All")],
            {app("Directory.ReadWrite.All"): (Verdict.UNEXPLAINED, ())},
            id="an application without a manifest explains nothing",
        ),
        pytest.param(
            CONNECT_247,
            {"device-assignment", "organisation-details"},
            [app("device.read.all")],
            {app("Device.Read.All"): (Verdict.NEEDED, ("device-assignment",))},
            id="permission values match whatever their case",
        ),
    ],
)
def test_grant_verdicts(needs, enabled, granted, expected):
    assert verdicts(evaluate(needs=needs, enabled_features=enabled, granted=granted)) == expected


def test_missing_lists_permissions_of_enabled_features_that_are_not_granted():
    evaluation = evaluate(
        needs=CONNECT_247,
        enabled_features={"device-assignment", "organisation-details"},
        granted=[app("Device.Read.All"), app("Organization.Read.All")],
    )
    assert [(m.permission, m.features) for m in evaluation.missing] == [
        (app("Group.Read.All"), ("device-assignment",))
    ]


def test_permissions_of_disabled_features_are_not_missing():
    evaluation = evaluate(needs=CONNECT_247, enabled_features={"organisation-details"}, granted=[])
    assert [m.permission for m in evaluation.missing] == [app("Organization.Read.All")]


def test_a_permission_granted_twice_gets_one_finding():
    evaluation = evaluate(
        needs=CONNECT_247,
        enabled_features={"organisation-details"},
        granted=[app("Organization.Read.All"), app("Organization.Read.All")],
    )
    assert len(evaluation.grants) == 1


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ("GET /groups", ("GET", "/groups")),
        ("get /Groups/{group-id}/members", ("GET", "/groups/{}/members")),
        ("GET /groups/0b3e8a55-6f8e-4f0a-9d7c-2a1b3c4d5e6f", ("GET", "/groups/{}")),
        ("GET /users/{id | UPN}/ownedDevices", ("GET", "/users/{}/owneddevices")),
        ("GET /users/adele@contoso.com", ("GET", "/users/{}")),
        ("GET /v1.0/organization?$select=id", ("GET", "/organization")),
        ("GET /servicePrincipals(appId='{appId}')", ("GET", "/serviceprincipals(appid={})")),
    ],
)
def test_api_calls_match_path_templates_with_ids_in_any_form(call, expected):
    assert normalize_api_call(call) == expected


def _calls(*calls: str, extra: int = 0, prefix: str = "/x") -> frozenset[tuple[str, str]]:
    """The named calls plus `extra` filler calls under `prefix` (the bulk of a permission)."""
    named = {normalize_api_call(c) for c in calls}
    return frozenset(named | {("GET", f"{prefix}/{i}") for i in range(extra)})


# Shaped like Microsoft's reference (Application scheme): sizes and overlaps as there.
GROUP_READ_ALL = _calls(
    "GET /groups", "GET /groups/{id}", "GET /groups/{id}/members", extra=100, prefix="/groups/{}/r"
)
GROUP_READ_BASIC = _calls(
    "GET /groups", "GET /groups/{id}", extra=29, prefix="/groups/{}/r"
) | _calls("GET /groups/{id}/transitiveMemberOf", "GET /users/{id}/memberOf")
GROUP_MEMBER_READ = _calls(
    "GET /groups", "GET /groups/{id}/members", extra=31, prefix="/groups/{}/r"
)
GROUP_NESTING = _calls(
    "GET /groups",
    "POST /groups/{id}/members/$ref",
    "DELETE /groups/{id}/members/{id}/$ref",
    "PATCH /groups/{id}",
)
ORGANIZATION_READ = _calls(
    "GET /organization", "GET /organization/{id}", extra=9, prefix="/organization/{}/r"
)
SERVICE_CONFIG_READ = _calls("GET /organization", extra=102, prefix="/devicemanagement")
DIRECTORY_READ = GROUP_READ_ALL | ORGANIZATION_READ | _calls(extra=150, prefix="/directory")
TEAMWORK_READWRITE = _calls(
    "GET /teamwork/devices",
    "GET /teamwork/devices/{id}",
    "POST /teamwork/devices/{id}/restart",
    "POST /teamwork/devices/{id}/updateSoftware",
    extra=6,
    prefix="/teamwork/devices/{}/r",
)
TEAMWORK_READ = _calls(
    "GET /teamwork/devices", "GET /teamwork/devices/{id}", extra=5, prefix="/teamwork/devices/{}/r"
)

INDEX = CallIndex.build(
    [
        PermissionScope(app("Group.Read.All"), 3, GROUP_READ_ALL),
        PermissionScope(app("Group.ReadBasic.All"), 3, GROUP_READ_BASIC),
        PermissionScope(app("GroupMember.Read.All"), 3, GROUP_MEMBER_READ),
        PermissionScope(app("Group-NestingSupport.ReadWrite.All"), 3, GROUP_NESTING),
        PermissionScope(app("Organization.Read.All"), 3, ORGANIZATION_READ),
        PermissionScope(app("DeviceManagementServiceConfig.Read.All"), 3, SERVICE_CONFIG_READ),
        PermissionScope(app("Directory.Read.All"), 3, DIRECTORY_READ),
        PermissionScope(app("TeamworkDevice.ReadWrite.All"), 3, TEAMWORK_READWRITE),
        PermissionScope(app("TeamworkDevice.Read.All"), 3, TEAMWORK_READ),
        PermissionScope(delegated("Group.ReadBasic.All"), 2, GROUP_READ_BASIC),
    ]
)


@pytest.mark.parametrize(
    ("granted", "calls", "expected"),
    [
        pytest.param(
            app("Group.Read.All"),
            ["GET /groups"],
            app("Group.ReadBasic.All"),
            id="groups list needs only the basic read",
        ),
        pytest.param(
            app("Group.Read.All"),
            ["GET /groups/{group-id}/members"],
            app("GroupMember.Read.All"),
            id="members need only group member read",
        ),
        pytest.param(
            app("TeamworkDevice.ReadWrite.All"),
            ["GET /teamwork/devices", "POST /teamwork/devices/{id}/restart"],
            None,
            id="restarting devices keeps the write permission",
        ),
        pytest.param(
            app("TeamworkDevice.ReadWrite.All"),
            ["GET /teamwork/devices"],
            app("TeamworkDevice.Read.All"),
            id="only reading devices needs the read permission",
        ),
        pytest.param(
            app("Organization.Read.All"),
            ["GET /organization"],
            None,
            id="organization read is already the narrowest",
        ),
        pytest.param(
            app("Directory.Read.All"),
            ["GET /organization"],
            app("Organization.Read.All"),
            id="directory read for the organization is too broad",
        ),
        pytest.param(
            app("Group.Read.All"),
            ["GET /users/{id}/messages"],
            None,
            id="a call the grant does not allow gets no suggestion",
        ),
        pytest.param(
            app("Unknown.Read.All"),
            ["GET /groups"],
            None,
            id="a permission the catalog does not map gets none",
        ),
        pytest.param(app("Group.Read.All"), [], None, id="no declared calls gets none"),
    ],
)
def test_narrower_suggestions(granted, calls, expected):
    assert INDEX.narrower_than(granted, calls) == expected


def test_a_write_permission_is_never_offered_in_place_of_a_read_one():
    # Group-NestingSupport.ReadWrite.All allows GET /groups with only 4 calls, but 3 of them
    # are writes that Group.Read.All does not allow.
    index = CallIndex.build(
        [
            PermissionScope(app("Group.Read.All"), 3, GROUP_READ_ALL),
            PermissionScope(app("Group-NestingSupport.ReadWrite.All"), 3, GROUP_NESTING),
        ]
    )
    assert index.narrower_than(app("Group.Read.All"), ["GET /groups"]) is None


def test_a_more_privileged_candidate_is_not_narrower():
    index = CallIndex.build(
        [
            PermissionScope(app("Group.Read.All"), 2, GROUP_READ_ALL),
            PermissionScope(app("Group.ReadBasic.All"), 3, GROUP_READ_BASIC),
        ]
    )
    assert index.narrower_than(app("Group.Read.All"), ["GET /groups"]) is None


def test_narrower_stays_within_kind():
    assert INDEX.narrower_than(delegated("Group.Read.All"), ["GET /groups"]) is None


def test_a_needed_grant_carries_its_narrower_suggestion():
    evaluation = evaluate(
        needs=CONNECT_247,
        enabled_features={"device-assignment", "organisation-details"},
        granted=[app("Group.Read.All"), app("Organization.Read.All")],
        call_index=INDEX,
    )
    narrower = {f.permission: f.narrower for f in evaluation.grants}
    assert narrower == {
        app("Group.Read.All"): app("Group.ReadBasic.All"),
        app("Organization.Read.All"): None,
    }


def test_no_suggestion_when_an_enabled_feature_does_not_declare_its_calls():
    needs = [
        Need("listing", app("Group.Read.All"), ("GET /groups",)),
        Need("sync", app("Group.Read.All")),
    ]
    evaluation = evaluate(
        needs=needs,
        enabled_features={"listing", "sync"},
        granted=[app("Group.Read.All")],
        call_index=INDEX,
    )
    assert evaluation.grants[0].narrower is None


def test_unused_grants_get_no_narrower_suggestion():
    evaluation = evaluate(
        needs=CONNECT_247, enabled_features=set(), granted=[app("Group.Read.All")], call_index=INDEX
    )
    assert evaluation.grants[0].narrower is None
