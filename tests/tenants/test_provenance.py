"""Consent provenance over HTTPS from the emulator through the real sync: directory audit
events read incrementally and kept for good, each grant's "granted by", the application's
consent history, and "unknown" (never a failed sync) without AuditLog.Read.All."""

import datetime as dt
import json
import re

import pytest
import requests
from django.urls import reverse
from django.utils import timezone

from tenants.graph import GraphClient
from tenants.models import ConsentEvent, ServicePrincipal
from tenants.provenance import OVERLAP, ConsentEvents, consent_events_apply, event_record
from tenants.services import tenant_add
from tests.helpers import demo_catalog, member, signed_in, sync
from tests.ids import CONTOSO, WOODGROVE

pytestmark = pytest.mark.django_db(transaction=True)

AUDITS = r"/v1\.0/auditLogs/directoryAudits$"
ASKCODY = "6f4e2a1b-8c3d-4e5f-a6b7-c8d9e0f1a2b3"
TEAMS_ROOMS = "3c1a9d6e-5b2f-4e8a-9c7d-1f0e2b3a4c5d"
CONNECT = "8708fc71-9f71-4ad5-8445-a0746692feeb"
LOOKOUT = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
PORTAL = "0d3c2b1a-9f8e-4d7c-8b6a-5f4e3d2c1b0a"
GRAPH = "00000003-0000-0000-c000-000000000000"
MAIL_READ = "810c84a8-4a9e-49e6-bf7d-12d183f40d01"
DIRECTORY_READ_ALL = "7ab1d382-f21e-4acd-a863-ba3e13f7da61"
GRAPH_SP = "11111111-2222-4333-8444-555555555555"
CLIENT_SP = "66666666-7777-4888-9999-000000000000"
ALICE_ID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
DAY = 86400


def page(client, tenant, app_id) -> str:
    response = client.get(reverse("tenants:application", args=[tenant.tenant_id, app_id]))
    assert response.status_code == 200
    return response.content.decode()


def origin_line(html: str, value: str) -> str:
    """The "Granted by" line of the grant named ``value``."""
    grant = html.split(f"<code>{value}</code></a>", 1)[1].split("</article>", 1)[0]
    return re.sub(r"\s+", " ", grant.split('class="grant-origin">', 1)[1].split("</dd>", 1)[0])


def kept(tenant, app_id) -> list[ConsentEvent]:
    sp = ServicePrincipal.objects.get(tenant=tenant, app_id=app_id)
    return list(ConsentEvent.objects.filter(tenant=tenant, client_object_id=sp.object_id))


def grant_role(tenant_id: str, client_object_id: str, app_role_id: str) -> None:
    """The portal's app gives a client a Graph app role: Entra logs it as done by the app."""
    graph = GraphClient(tenant_id=tenant_id)
    resource = graph.get_json(f"/servicePrincipals(appId='{GRAPH}')?$select=id")["id"]
    graph.request(
        "POST",
        f"/servicePrincipals/{resource}/appRoleAssignedTo",
        json={"principalId": client_object_id, "resourceId": resource, "appRoleId": app_role_id},
    )


def test_a_sync_keeps_the_consent_events_entra_returns(emu, synced):
    contoso = synced.contoso
    assert contoso.consent_history_status == ""
    askcody = kept(contoso, ASKCODY)
    consents = [e for e in askcody if e.activity == "Consent to application"]
    admin = next(e for e in consents if e.consent == "admin")
    assert admin.initiator_upn == "alice@contoso.onmicrosoft.com"
    assert admin.initiator_name == "Azure ESTS Service"
    assert admin.kind == "delegated" and "Group.Read.All" in admin.permissions
    erin = next(e for e in consents if e.consent == "user")
    assert erin.permissions == ["Calendars.Read"]
    (mail,) = kept(contoso, TEAMS_ROOMS)
    assert (mail.activity, mail.permissions, mail.kind) == (
        "Add app role assignment to service principal",
        ["Mail.Read"],
        "application",
    )
    assert str(mail.resource_app_id) == GRAPH
    assert mail.initiator_upn == "oscar@contoso.onmicrosoft.com"
    # 247connect's roles were granted 45 days ago: past the 30 days Entra ID P1 keeps.
    assert kept(contoso, CONNECT) == []
    ids = [e.event_id for e in ConsentEvent.objects.filter(tenant=contoso)]
    assert len(ids) == len(set(ids)) == len(emu.audit_events(CONTOSO)) - 3
    # The watermark is the newest event; what Entra no longer had, a month before the read.
    newest = max(ConsentEvent.objects.filter(tenant=contoso).values_list("at", flat=True))
    assert contoso.consent_history_through == newest
    assert dt.timedelta(days=29) < timezone.now() - contoso.consent_history_from
    # Entra ID Free (Fabrikam, no sign-in report) keeps 7 days.
    assert timezone.now() - synced.fabrikam.consent_history_from < dt.timedelta(days=8)


def test_the_next_sync_reads_only_events_since_the_newest_kept(emu, synced, client_for):
    contoso = synced.contoso
    through = contoso.consent_history_through
    first = emu.queries_to(AUDITS, "GET")
    assert first[0]["$filter"] == "category eq 'ApplicationManagement'"
    before = ConsentEvent.objects.filter(tenant=contoso).count()
    lookout = emu.sp_id(CONTOSO, LOOKOUT)
    grant_role(CONTOSO, lookout, MAIL_READ)
    emu.reset_counters()

    sync(contoso, client_for(CONTOSO))

    (query,) = emu.queries_to(AUDITS, "GET")
    since = (through - OVERLAP).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert query["$filter"] == (
        f"category eq 'ApplicationManagement' and activityDateTime ge {since}"
    )
    # The overlap re-read the newest events: kept once, by their id.
    assert ConsentEvent.objects.filter(tenant=contoso).count() == before + 1
    added = ConsentEvent.objects.filter(tenant=contoso).first()
    assert added.initiator_is_app and added.initiator_name == "Permission Portal"
    assert added.permissions == ["Mail.Read"] and str(added.client_object_id) == lookout
    contoso.refresh_from_db()
    assert contoso.consent_history_through == added.at


def test_events_past_entras_retention_stay_in_the_portal(emu, synced, client_for):
    contoso = synced.contoso
    before = set(ConsentEvent.objects.filter(tenant=contoso).values_list("event_id", flat=True))
    emu.advance_clock(40 * DAY)  # Entra returns none of them now

    sync(contoso, client_for(CONTOSO))

    after = set(ConsentEvent.objects.filter(tenant=contoso).values_list("event_id", flat=True))
    assert before and after == before
    assert emu.queries_to(AUDITS, "GET")[-1]["$filter"].startswith(
        "category eq 'ApplicationManagement' and activityDateTime ge "
    )


def test_a_sync_after_a_gap_longer_than_retention_says_what_was_lost(emu, synced, client_for):
    contoso = synced.contoso
    # As if the portal had lost AuditLog.Read.All for six weeks.
    contoso.consent_history_through = timezone.now() - dt.timedelta(days=42)
    contoso.save(update_fields=["consent_history_through"])
    count = ConsentEvent.objects.count()

    run = sync(contoso, client_for(CONTOSO))

    assert any(
        n.startswith("Consent history: events between ") and "past Entra's retention" in n
        for n in run.notes
    )
    assert ConsentEvent.objects.count() == count  # read again, kept once


def test_without_audit_log_read_all_the_sync_succeeds_and_the_page_says_how(emu, client_for):
    demo_catalog()
    tenant = tenant_add(tenant_id=WOODGROVE, name="Woodgrove")[0]
    run = sync(tenant, client_for(WOODGROVE))

    assert tenant.consent_history_status == "no_permission"
    assert any("Consent history not read" in n and "AuditLog.Read.All" in n for n in run.notes)
    assert not ConsentEvent.objects.filter(tenant=tenant).exists()
    wendy = signed_in(member("wendy@woodgrove.onmicrosoft.com", tenant, "Portal.Admin"))
    html = page(wendy, tenant, "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e")
    assert "Who granted its permissions is unknown: the portal lacks AuditLog.Read.All" in html
    assert "unknown: see the consent history" in origin_line(html, "Payroll.Read.All")


def test_a_failed_read_keeps_the_events_and_the_watermark(emu, synced):
    contoso = synced.contoso
    through, count = contoso.consent_history_through, ConsentEvent.objects.count()
    consent_events_apply(tenant=contoso, events=ConsentEvents(status="failed"))
    contoso.refresh_from_db()
    assert (contoso.consent_history_through, ConsentEvent.objects.count()) == (through, count)
    assert contoso.consent_history_status == "failed"


def test_each_grant_says_who_granted_it_and_the_page_lists_the_history(emu, synced, alice_client):
    html = page(alice_client, synced.contoso, ASKCODY)
    assert origin_line(html, "User.ReadBasic.All").startswith(
        "alice@contoso.onmicrosoft.com on <time"
    )
    # Its application roles were granted before Entra's retention.
    line = origin_line(html, "GroupMember.Read.All")
    assert line.startswith("not on record (events before ")
    assert "are past Entra's retention)" in line
    history = html.split('id="consent-history"', 1)[1].split("</section>", 1)[0]
    assert "4 events on record" in history
    assert "<td>Microsoft Graph</td>" in history  # the API of the permissions
    assert history.index("Calendars.Read") < history.index("Group.Read.All")  # newest first


def test_a_consent_given_in_entra_shows_on_the_page_after_the_next_sync(
    emu, synced, client_for, alice_client
):
    """Alice consents for Lookout to read mail, on Entra's admin consent page."""
    alice = next(
        u for u in emu.state(CONTOSO)["users"] if u["userPrincipalName"].startswith("alice")
    )
    url = f"{emu.url}/{CONTOSO}/v2.0/adminconsent"
    params = {
        "client_id": LOOKOUT,
        "redirect_uri": "https://lookout.example/consented",
        "scope": f"{GRAPH}/Mail.Read",
    }
    done = requests.post(
        url,
        params=params,
        data={"decision": "accept", "user": alice["id"]},
        allow_redirects=False,
        verify=emu.ca_path,
        timeout=10,
    )
    assert done.status_code == 302, done.text

    sync(synced.contoso, client_for(CONTOSO))

    line = origin_line(page(alice_client, synced.contoso, LOOKOUT), "Mail.Read")
    assert line.startswith("alice@contoso.onmicrosoft.com on <time")


def test_hostile_names_in_events_are_escaped(emu, synced, client_for, alice_client):
    portal = emu.sp_id(CONTOSO, PORTAL)
    emu.update_service_principal(
        CONTOSO, portal, displayName="<img src=x onerror=alert(1)>\u202eevil"
    )
    grant_role(CONTOSO, emu.sp_id(CONTOSO, LOOKOUT), MAIL_READ)
    sync(synced.contoso, client_for(CONTOSO))

    html = page(alice_client, synced.contoso, LOOKOUT)
    assert "<img src=x" not in html
    line = origin_line(html, "Mail.Read")
    assert line.startswith("&lt;img src=x onerror=alert(1)&gt;\ufffdevil (an application) on")


def test_an_event_that_shows_up_late_is_read_by_the_overlap(emu, synced, client_for):
    contoso = synced.contoso
    lookout = emu.sp_id(CONTOSO, LOOKOUT)
    emu.set_behaviour(audit_latency=600)
    grant_role(CONTOSO, lookout, MAIL_READ)  # logged first, shown in ten minutes
    emu.set_behaviour(audit_latency=0)
    grant_role(CONTOSO, lookout, DIRECTORY_READ_ALL)  # logged next, shown at once
    sync(contoso, client_for(CONTOSO))

    def graph_roles() -> list[list[str]]:
        return [e.permissions for e in kept(contoso, LOOKOUT) if str(e.resource_app_id) == GRAPH]

    assert graph_roles() == [["Directory.Read.All"]]
    emu.advance_clock(700)
    sync(contoso, client_for(CONTOSO))

    # Older than the newest event the last sync kept, yet read: the overlap covers it.
    assert graph_roles() == [["Directory.Read.All"], ["Mail.Read"]]


def scope_event(activity: str, old: str | None, new: str | None, **over) -> dict:
    """A delegated grant's event as Entra logs it (values JSON-encoded)."""

    def encoded(value):
        return None if value is None else json.dumps(value)

    return {
        "id": "Directory_1_ABC_00000001",
        "activityDisplayName": activity,
        "activityDateTime": "2026-11-30T08:00:00.1234567Z",
        "result": "success",
        "initiatedBy": {
            "user": {"id": ALICE_ID, "userPrincipalName": "alice@x", "displayName": "A"}
        },
        "targetResources": [
            {
                "id": GRAPH_SP,
                "modifiedProperties": [
                    {
                        "displayName": "DelegatedPermissionGrant.Scope",
                        "oldValue": encoded(old),
                        "newValue": encoded(new),
                    },
                    {
                        "displayName": "DelegatedPermissionGrant.ConsentType",
                        "oldValue": encoded("Principal" if old else None),
                        "newValue": encoded("Principal" if new else None),
                    },
                    {
                        "displayName": "ServicePrincipal.ObjectID",
                        "oldValue": None,
                        "newValue": encoded(CLIENT_SP),
                    },
                ],
            }
        ],
        **over,
    }


@pytest.mark.parametrize(
    ("activity", "old", "new", "values"),
    [
        ("Add delegated permission grant", None, " User.Read", ("User.Read",)),
        ("Add delegated permission grant", " User.Read", " User.Read Mail.Read", ("Mail.Read",)),
        ("Remove delegated permission grant", " User.Read Mail.Read", " User.Read", ("Mail.Read",)),
        ("Remove delegated permission grant", " User.Read", None, ("User.Read",)),
    ],
)
def test_a_grant_event_keeps_what_it_added_or_removed(activity, old, new, values):
    record = event_record(scope_event(activity, old, new), {GRAPH_SP: GRAPH})
    assert record is not None
    assert (record.permissions, record.kind, record.consent) == (values, "delegated", "user")
    assert (record.client_object_id, record.resource_app_id) == (CLIENT_SP, GRAPH)
    assert record.at == dt.datetime(2026, 11, 30, 8, 0, 0, 123456, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "over",
    [
        {"id": "Directory_<script>"},
        {"id": ["Directory_1"]},
        {"activityDateTime": "yesterday"},
        {"activityDateTime": "2026-13-45T00:00:00Z"},
        {"targetResources": "Microsoft Graph"},
        {"targetResources": []},
    ],
)
def test_an_event_without_a_usable_id_time_or_target_is_skipped(over):
    event = scope_event("Add delegated permission grant", None, " User.Read", **over)
    assert event_record(event, {}) is None


def test_an_event_with_an_unusable_client_or_initiator_is_skipped_or_left_anonymous():
    no_client = scope_event("Add delegated permission grant", None, " User.Read")
    properties = no_client["targetResources"][0]["modifiedProperties"]
    properties[2]["newValue"] = json.dumps("not-a-guid")
    assert event_record(no_client, {}) is None
    odd = scope_event(
        "Add delegated permission grant",
        None,
        " User.Read <b>x</b> " + "A" * 500,
        initiatedBy={"user": ["alice"], "app": 7},
    )
    record = event_record(odd, {})
    # Values as the grants keep them (shown escaped); none longer than a permission name.
    assert record is not None and record.permissions == ("User.Read", "<b>x</b>")
    assert (record.initiator_name, record.initiator_upn, record.initiator_id) == ("", "", None)
