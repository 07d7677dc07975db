"""The report contract of DESIGN.md, on the demo tenants synced from the emulator."""

import csv
import io
import json
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from permissions.models import Permission
from tests.factories import PermissionApiCallFactory
from tests.ids import ASKCODY, CONNECT_247, CONTOSO, FABRIKAM, LEGACY, PORTAL_APP, ROOMS

pytestmark = pytest.mark.django_db(transaction=True)

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
GRANT_KEYS = {
    "permission",
    "type",
    "resource_app_id",
    "consent",
    "users",
    "verdict",
    "features",
    "narrower",
    "tier",
    "justification",
    "regranted",
}


def report(tenant_id: str, *args: str) -> dict:
    out = io.StringIO()
    call_command("report", tenant_id, "--format", "json", *args, stdout=out)
    return json.loads(out.getvalue())


def app_entry(data: dict, app_id: str) -> dict:
    return next(app for app in data["applications"] if app["app_id"] == app_id)


def grant(app: dict, permission: str, kind: str = "application", consent: str = "admin") -> dict:
    return next(
        g
        for g in app["grants"]
        if (g["permission"], g["type"], g["consent"]) == (permission, kind, consent)
    )


def assert_contract(data: dict) -> None:
    """Every key and type of DESIGN.md's report JSON, and nothing else."""
    assert set(data) == {"tenant_id", "synced_at", "applications"}
    assert GUID.match(data["tenant_id"]) and isinstance(data["synced_at"], str)
    for app in data["applications"]:
        assert set(app) == {
            "app_id",
            "display_name",
            "service_principal_id",
            "service_principal_type",
            "first_party",
            "sign_in",
            "kind",
            "verified_publisher",
            "owners",
            "credentials",
            "grants",
            "missing",
        }
        assert app["kind"] in {"own", "third_party", "microsoft", "managed_identity", "unknown"}
        assert app["verified_publisher"] in {True, False, None}
        assert app["owners"] is None or all(
            set(owner) == {"id", "name", "upn", "type"} for owner in app["owners"]
        )
        assert app["credentials"] is None or (
            set(app["credentials"]) == {"count", "soonest_expiry", "on_service_principal"}
        )
        assert GUID.match(app["app_id"]) and GUID.match(app["service_principal_id"])
        assert app["service_principal_type"] is None or isinstance(
            app["service_principal_type"], str
        )
        assert isinstance(app["first_party"], bool)
        assert app["sign_in"] is None or set(app["sign_in"]) == {"last", "inactive"}
        for entry in app["grants"]:
            assert set(entry) == GRANT_KEYS
            assert entry["type"] in {"application", "delegated"}
            assert entry["consent"] in {"admin", "user"}
            assert entry["verdict"] in {"needed", "unused", "unexplained"}
            assert isinstance(entry["users"], int) and isinstance(entry["features"], list)
            assert entry["narrower"] is None or isinstance(entry["narrower"], str)
            assert entry["tier"] is None or entry["tier"] in {
                "ControlPlane",
                "ManagementPlane",
                "UserAccess",
            }
            assert GUID.match(entry["resource_app_id"])
            justification = entry["justification"]
            assert justification is None or (
                set(justification) == {"reason", "by", "expires"}
                and isinstance(justification["reason"], str)
                and isinstance(justification["by"], str)
                and (justification["expires"] is None or isinstance(justification["expires"], str))
            )
            assert entry["regranted"] is False  # nothing was revoked in the demo
        for missing in app["missing"]:
            assert set(missing) == {"permission", "type", "resource_app_id", "features"}


def test_the_demo_reports_follow_the_contract(synced):
    for tenant_id in (CONTOSO, FABRIKAM):
        assert_contract(report(tenant_id))


def test_the_report_keys_come_in_the_contracts_order(synced):
    data = report(CONTOSO)
    assert list(data) == ["tenant_id", "synced_at", "applications"]
    apps = data["applications"]
    assert {tuple(app) for app in apps} == {
        ("app_id", "display_name", "service_principal_id")
        + ("service_principal_type", "first_party", "sign_in")
        + ("kind", "verified_publisher", "owners", "credentials", "grants", "missing")
    }
    assert {tuple(g) for app in apps for g in app["grants"]} == {
        ("permission", "type", "resource_app_id", "consent", "users")
        + ("verdict", "features", "narrower", "tier", "justification", "regranted")
    }
    assert {tuple(m) for app in report(FABRIKAM)["applications"] for m in app["missing"]} == {
        ("permission", "type", "resource_app_id", "features")
    }


def test_contoso_shows_unexplained_and_needed_grants_with_their_features(synced):
    data = report(CONTOSO)
    rooms = app_entry(data, ROOMS)
    assert grant(rooms, "Mail.Read")["verdict"] == "unexplained"
    # Smart buildings is an add-on, off unless a tenant switches it on.
    assert grant(rooms, "Place.Read.All")["verdict"] == "unused"
    assert grant(rooms, "Place.Read.All")["features"] == ["smart-buildings"]
    assert grant(rooms, "Presence.Read.All")["verdict"] == "needed"
    legacy = app_entry(data, LEGACY)
    assert [(g["permission"], g["verdict"]) for g in legacy["grants"]] == [
        ("Directory.ReadWrite.All", "unexplained")
    ]
    askcody = app_entry(data, "6f4e2a1b-8c3d-4e5f-a6b7-c8d9e0f1a2b3")
    assert grant(askcody, "Calendars.Read", "delegated", "user")["users"] == 3
    assert grant(askcody, "Calendars.Read", "delegated", "user")["verdict"] == "needed"


def test_fabrikam_reports_247connects_missing_group_read(synced):
    connect = app_entry(report(FABRIKAM), CONNECT_247)
    assert connect["missing"] == [
        {
            "permission": "Group.Read.All",
            "type": "application",
            "resource_app_id": "00000003-0000-0000-c000-000000000000",
            "features": ["device-assignment"],
        }
    ]


def test_feature_switches_move_grants_between_needed_and_unused(synced):
    call_command(
        "set_features",
        CONTOSO,
        ROOMS,
        "--enable",
        "smart-buildings",
        "--disable",
        "presence-alerts",
    )
    rooms = app_entry(report(CONTOSO, "--app", ROOMS), ROOMS)
    assert grant(rooms, "Place.Read.All")["verdict"] == "needed"
    assert grant(rooms, "Calendars.ReadBasic.All")["verdict"] == "needed"
    assert grant(rooms, "Presence.Read.All")["verdict"] == "unused"
    assert grant(rooms, "Presence.Read.All")["features"] == ["presence-alerts"]


def test_report_for_one_app_lists_only_that_app(synced):
    assert [app["app_id"] for app in report(CONTOSO, "--app", CONNECT_247)["applications"]] == [
        CONNECT_247
    ]


def test_a_needed_grant_carries_the_narrower_permission_the_catalog_allows(synced):
    group_read = Permission.objects.get(value="Group.Read.All", kind="application")
    basic = Permission.objects.get(value="Group.ReadBasic.All", kind="application")
    group_read.privilege_level = basic.privilege_level = 3
    group_read.save()
    basic.save()
    for path in [
        "/groups",
        "/groups/{id}",
        "/groups/{id}/members",
        "/groups/{id}/owners",
        "/groups/{id}/drive",
    ]:
        PermissionApiCallFactory(permission=group_read, path=path)
    for path in ["/groups", "/groups/{id}"]:
        PermissionApiCallFactory(permission=basic, path=path)

    connect = app_entry(report(CONTOSO, "--app", CONNECT_247), CONNECT_247)

    assert grant(connect, "Group.Read.All")["narrower"] == "Group.ReadBasic.All"
    assert grant(connect, "Organization.Read.All")["narrower"] is None


def test_report_csv_has_one_row_per_grant_and_per_missing_permission(synced):
    out = io.StringIO()
    call_command("report", FABRIKAM, "--format", "csv", stdout=out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    data = report(FABRIKAM)
    assert len(rows) == sum(len(a["grants"]) + len(a["missing"]) for a in data["applications"])
    assert {
        "app_id": CONNECT_247,
        "permission": "Group.Read.All",
        "verdict": "missing",
    }.items() <= next(
        r for r in rows if r["verdict"] == "missing" and r["app_id"] == CONNECT_247
    ).items()


def test_each_application_carries_its_owners_credentials_and_kind(synced):
    data = report(CONTOSO)
    askcody = app_entry(data, ASKCODY)
    assert [(o["name"], o["upn"], o["type"]) for o in askcody["owners"]] == [
        ("Erin Eklund", "erin@contoso.onmicrosoft.com", "user"),
        ("Frank Falk", "frank@contoso.onmicrosoft.com", "user"),
    ]
    assert askcody["credentials"] == {
        "count": 0,
        "soonest_expiry": None,
        "on_service_principal": False,
    }
    # A secret expiring in 20 days and a certificate expired 30 days ago, both placed on
    # the service principal itself: the soonest expiry is the expired one.
    legacy = app_entry(data, LEGACY)
    assert legacy["owners"] == []
    assert legacy["credentials"]["count"] == 2
    assert legacy["credentials"]["on_service_principal"] is True
    soonest = legacy["credentials"]["soonest_expiry"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", soonest)
    assert soonest < data["synced_at"]
    # The portal is registered in Contoso; its credentials are on its registration.
    portal = app_entry(data, PORTAL_APP)
    assert portal["kind"] == "own" and portal["credentials"]["on_service_principal"] is False
    assert portal["verified_publisher"] is False


def test_the_csv_repeats_the_facts_on_each_row_of_an_application(synced):
    out = io.StringIO()
    call_command("report", CONTOSO, "--format", "csv", "--app", LEGACY, stdout=out)
    (row,) = csv.DictReader(io.StringIO(out.getvalue()))
    assert {
        "service_principal_type": "Application",
        "first_party": "false",
        "owners": "0",
        "owner_names": "",
        "credentials": "2",
        "credentials_on_service_principal": "true",
        "regranted": "false",
    }.items() <= row.items()
    assert row["credentials_soonest_expiry"].endswith("Z")


def test_the_json_report_is_printed_as_json_dumps_would_indent_it(synced):
    out = io.StringIO()
    call_command("report", CONTOSO, "--format", "json", stdout=out)
    assert out.getvalue() == json.dumps(json.loads(out.getvalue()), indent=2) + "\n"


def test_report_of_a_tenant_never_synced_says_so(contoso):
    with pytest.raises(CommandError, match="has not been synced yet"):
        call_command("report", CONTOSO)


def test_report_of_an_unknown_tenant_says_so(db):
    with pytest.raises(CommandError, match="is not onboarded"):
        call_command("report", "00000000-0000-0000-0000-000000000001")
