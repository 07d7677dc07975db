"""The report as typed data: ``as_json()`` is DESIGN.md's JSON, key for key and in the
same order, the streamed JSON is the same text, and the CSV is written from the same data."""

import csv
import io
import json
import uuid
from datetime import UTC, date, datetime

from permissions.verdicts import JustificationNote, Verdict
from tenants.exports import csv_chunks, report_csv_chunks, report_json_chunks
from tenants.report import (
    ApplicationReport,
    CredentialsReport,
    GrantReport,
    MissingReport,
    TenantReport,
)

GRAPH = "00000003-0000-0000-c000-000000000000"
TENANT = uuid.UUID("11111111-2222-4333-8444-555555555555")
APP = uuid.UUID("8708fc71-9f71-4ad5-8445-a0746692feeb")
SP = uuid.UUID("6f4e2a1b-8c3d-4e5f-a6b7-c8d9e0f1a2b3")

REPORT = TenantReport(
    tenant_id=TENANT,
    synced_at=datetime(2026, 11, 30, 8, 0, tzinfo=UTC),
    applications=(
        ApplicationReport(
            app_id=APP,
            display_name="247connect",
            service_principal_id=SP,
            service_principal_type="Application",
            first_party=False,
            sign_in={"last": "2026-11-30T08:00:00Z", "inactive": False},
            kind="third_party",
            verified_publisher=True,
            owners=(
                {
                    "id": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                    "name": "Alice",
                    "upn": "alice@contoso.onmicrosoft.com",
                    "type": "user",
                },
                {"id": "1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e", "name": "", "upn": "", "type": ""},
            ),
            credentials=CredentialsReport(
                count=2,
                soonest_expiry=datetime(2026, 12, 20, 9, 0, tzinfo=UTC),
                on_service_principal=True,
            ),
            grants=(
                GrantReport(
                    permission="Group.Read.All",
                    kind="application",
                    resource_app_id=GRAPH,
                    consent="admin",
                    users=0,
                    verdict=Verdict.NEEDED,
                    features=("device-assignment",),
                    narrower="Group.ReadBasic.All",
                    tier="UserAccess",
                ),
                GrantReport(
                    permission="Calendars.Read",
                    kind="delegated",
                    resource_app_id=GRAPH,
                    consent="user",
                    users=3,
                    verdict=Verdict.UNEXPLAINED,
                    features=(),
                    narrower=None,
                    tier=None,
                    regranted=True,
                ),
                GrantReport(
                    permission="Sites.Read.All",
                    kind="application",
                    resource_app_id=GRAPH,
                    consent="admin",
                    users=0,
                    verdict=Verdict.NEEDED,
                    features=(),
                    narrower=None,
                    tier="ControlPlane",
                    justification=JustificationNote(
                        reason="The intranet search indexes every site.",
                        by="Alice (alice@contoso.onmicrosoft.com)",
                        expires=date(2027, 6, 30),
                    ),
                ),
            ),
            missing=(
                MissingReport(
                    permission="Device.Read.All",
                    kind="application",
                    resource_app_id=GRAPH,
                    features=("device-assignment",),
                ),
            ),
        ),
    ),
)

# DESIGN.md's contract, spelled out: the report command and the export print exactly this.
CONTRACT = """{
  "tenant_id": "11111111-2222-4333-8444-555555555555",
  "synced_at": "2026-11-30T08:00:00+00:00",
  "applications": [
    {
      "app_id": "8708fc71-9f71-4ad5-8445-a0746692feeb",
      "display_name": "247connect",
      "service_principal_id": "6f4e2a1b-8c3d-4e5f-a6b7-c8d9e0f1a2b3",
      "service_principal_type": "Application",
      "first_party": false,
      "sign_in": {
        "last": "2026-11-30T08:00:00Z",
        "inactive": false
      },
      "kind": "third_party",
      "verified_publisher": true,
      "owners": [
        {
          "id": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
          "name": "Alice",
          "upn": "alice@contoso.onmicrosoft.com",
          "type": "user"
        },
        {
          "id": "1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e",
          "name": "",
          "upn": "",
          "type": ""
        }
      ],
      "credentials": {
        "count": 2,
        "soonest_expiry": "2026-12-20T09:00:00Z",
        "on_service_principal": true
      },
      "grants": [
        {
          "permission": "Group.Read.All",
          "type": "application",
          "resource_app_id": "00000003-0000-0000-c000-000000000000",
          "consent": "admin",
          "users": 0,
          "verdict": "needed",
          "features": [
            "device-assignment"
          ],
          "narrower": "Group.ReadBasic.All",
          "tier": "UserAccess",
          "justification": null,
          "regranted": false
        },
        {
          "permission": "Calendars.Read",
          "type": "delegated",
          "resource_app_id": "00000003-0000-0000-c000-000000000000",
          "consent": "user",
          "users": 3,
          "verdict": "unexplained",
          "features": [],
          "narrower": null,
          "tier": null,
          "justification": null,
          "regranted": true
        },
        {
          "permission": "Sites.Read.All",
          "type": "application",
          "resource_app_id": "00000003-0000-0000-c000-000000000000",
          "consent": "admin",
          "users": 0,
          "verdict": "needed",
          "features": [],
          "narrower": null,
          "tier": "ControlPlane",
          "justification": {
            "reason": "The intranet search indexes every site.",
            "by": "Alice (alice@contoso.onmicrosoft.com)",
            "expires": "2027-06-30"
          },
          "regranted": false
        }
      ],
      "missing": [
        {
          "permission": "Device.Read.All",
          "type": "application",
          "resource_app_id": "00000003-0000-0000-c000-000000000000",
          "features": [
            "device-assignment"
          ]
        }
      ]
    }
  ]
}"""


def test_as_json_is_the_contracts_json_key_for_key_and_in_order():
    assert json.dumps(REPORT.as_json(), indent=2) == CONTRACT


def streamed(report: TenantReport) -> str:
    return "".join(
        report_json_chunks(
            tenant_id=report.tenant_id,
            synced_at=report.synced_at,
            applications=iter(report.applications),
        )
    )


def test_the_streamed_json_is_the_contracts_text_byte_for_byte():
    assert streamed(REPORT) == CONTRACT


def test_the_streamed_json_of_several_applications_is_what_json_dumps_writes():
    (app,) = REPORT.applications
    other = ApplicationReport(
        app_id=SP,
        display_name='Quote " and \n newline',
        service_principal_id=APP,
        service_principal_type=None,
        first_party=True,
        sign_in=None,
        grants=(),
        missing=(),
    )
    report = TenantReport(tenant_id=TENANT, synced_at=None, applications=(app, other, app))
    assert streamed(report) == json.dumps(report.as_json(), indent=2)


def test_a_tenant_never_synced_reports_no_sync_time():
    empty = TenantReport(tenant_id=TENANT, synced_at=None, applications=())
    assert empty.as_json() == {"tenant_id": str(TENANT), "synced_at": None, "applications": []}
    assert streamed(empty) == json.dumps(empty.as_json(), indent=2)


def test_facts_no_sync_has_read_are_null_in_the_json():
    unread = ApplicationReport(
        app_id=APP,
        display_name="x",
        service_principal_id=SP,
        service_principal_type=None,
        first_party=False,
        sign_in=None,
        grants=(),
        missing=(),
    )
    facts = {key: unread.as_json()[key] for key in ("kind", "verified_publisher")}
    assert facts == {"kind": "unknown", "verified_publisher": None}
    assert unread.as_json()["owners"] is None and unread.as_json()["credentials"] is None


def report_csv(report: TenantReport) -> str:
    return "".join(report_csv_chunks(report.applications))


def test_unused_and_unexplained_grants_are_the_revoke_candidates():
    needed, unexplained, justified = REPORT.applications[0].grants
    assert not needed.is_revoke_candidate and unexplained.is_revoke_candidate
    assert not justified.is_revoke_candidate


def test_the_csv_has_a_row_per_grant_then_per_missing_permission():
    rows = list(csv.DictReader(io.StringIO(report_csv(REPORT))))
    assert [(r["permission"], r["verdict"], r["features"]) for r in rows] == [
        ("Group.Read.All", "needed", "device-assignment"),
        ("Calendars.Read", "unexplained", ""),
        ("Sites.Read.All", "needed", ""),
        ("Device.Read.All", "missing", "device-assignment"),
    ]
    assert rows[0]["narrower"] == "Group.ReadBasic.All" and rows[1]["narrower"] == ""
    assert rows[1]["users"] == "3" and rows[3]["users"] == rows[3]["consent"] == ""
    assert {r["app_id"] for r in rows} == {str(APP)}


def test_the_csv_carries_a_justification_in_three_columns():
    rows = list(csv.DictReader(io.StringIO(report_csv(REPORT))))
    justified = [
        (r["justification"], r["justified_by"], r["justified_until"])
        for r in rows
        if r["justification"]
    ]
    assert justified == [
        (
            "The intranet search indexes every site.",
            "Alice (alice@contoso.onmicrosoft.com)",
            "2027-06-30",
        )
    ]
    assert rows[0]["justified_by"] == rows[0]["justified_until"] == ""


def test_the_csv_carries_the_applications_facts_on_each_of_its_rows():
    rows = list(csv.DictReader(io.StringIO(report_csv(REPORT))))
    facts = {
        (
            r["service_principal_type"],
            r["first_party"],
            r["kind"],
            r["verified_publisher"],
            r["owners"],
            r["owner_names"],
            r["credentials"],
            r["credentials_soonest_expiry"],
            r["credentials_on_service_principal"],
        )
        for r in rows
    }
    assert facts == {
        (
            "Application",
            "false",
            "third_party",
            "true",
            "2",
            "Alice; 1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e",
            "2",
            "2026-12-20T09:00:00Z",
            "true",
        )
    }
    assert [r["regranted"] for r in rows] == ["false", "true", "false", ""]


def test_the_csv_keeps_its_first_columns_in_their_places():
    header = next(csv.reader(io.StringIO(report_csv(REPORT))))
    assert header[:15] == [
        "app_id",
        "display_name",
        "service_principal_id",
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
        "justified_by",
        "justified_until",
    ]


def test_csv_chunks_split_between_rows_and_join_to_one_text():
    rows = [[n, f"={n}"] for n in range(5)]
    chunks = list(csv_chunks(["n", "formula"], rows, chunk_rows=2))
    assert len(chunks) == 3  # the header with 2 rows, 2 rows, the last row
    assert "".join(chunks) == "".join(csv_chunks(["n", "formula"], rows, chunk_rows=100))
    assert all(chunk.endswith("\r\n") for chunk in chunks)
    assert list(csv_chunks(["n"], [[1], [2]], chunk_rows=2)) == ["n\r\n1\r\n2\r\n"]
    assert "".join(chunks).splitlines()[1] == "0,'=0"
