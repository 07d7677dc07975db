"""Evidence beside the verdicts (issue 13): the sign-in activity report, directory audit
events, owners and credentials, in Graph's shapes and with its errors."""

import base64
import datetime as dt
import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from emulator import evidence, run_emulator
from emulator.generator import generate
from tests.emulator.helpers import (
    ASKCODY_APP_ID,
    CONNECT_APP_ID,
    CONTOSO,
    FABRIKAM,
    GRAPH_APP_ID,
    LOOKOUT_APP_ID,
    MAIL_READ,
    NORTHWIND,
    PORTAL_APP_ID,
    PORTAL_SECRET,
    WOODGROVE,
    assert_graph_error,
    bearer,
    get_token,
    page_all,
    session_for,
)

REPORT = "/beta/reports/servicePrincipalSignInActivities"
AUDITS = "/v1.0/auditLogs/directoryAudits"
DAY = 86400
TEAMS_ROOMS_APP_ID = "3c1a9d6e-5b2f-4e8a-9c7d-1f0e2b3a4c5d"
LEGACY_APP_ID = "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e"
PAYROLL_APP_ID = "7e1c2d3b-4a5f-4e6d-8c7b-9a0f1e2d3c4b"
HR_PORTAL_APP_ID = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"
GLOBEX_APP_ID = "6e7f8a9b-0c1d-4e2f-9a3b-4c5d6e7f8091"
SYNC_IDENTITY_APP_ID = "4c5d6e7f-8a9b-4c0d-9e1f-2a3b4c5d6e7f"
DIRECTORY_READ_ALL = "7ab1d382-f21e-4acd-a863-ba3e13f7da61"
REDIRECT = "http://127.0.0.1:8000/accounts/microsoft/login/callback/"
AUDIT_KEYS = [
    "id",
    "category",
    "correlationId",
    "result",
    "resultReason",
    "activityDisplayName",
    "activityDateTime",
    "loggedByService",
    "operationType",
    "initiatedBy",
    "targetResources",
    "additionalDetails",
]
CONSENT = "Consent to application"
ADD_ROLE = "Add app role assignment to service principal"
REMOVE_ROLE = "Remove app role assignment from service principal"
ADD_GRANT = "Add delegated permission grant"
REMOVE_GRANT = "Remove delegated permission grant"


def moment(text):
    """Epoch seconds of a Graph time (Entra writes up to seven decimals)."""
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
    return dt.datetime.fromisoformat(text).timestamp()


def ago(emu, text):
    """Seconds between a Graph time and the emulator's clock."""
    return emu.app.state.clock.now() - moment(text)


def get(emu, http, headers, path, **params):
    response = http.get(f"{emu.url}{path}", headers=headers, params=params or None)
    assert response.status_code == 200, response.text
    return response.json()


def sign_ins(emu, http, headers):
    return {i["appId"]: i for i in get(emu, http, headers, REPORT)["value"]}


def audits(emu, http, headers, **params):
    return get(emu, http, headers, AUDITS, **params)["value"]


def prop(event, name):
    """A modified property's (old, new) values, decoded from their JSON strings."""
    found = next(
        p for p in event["targetResources"][0]["modifiedProperties"] if p["displayName"] == name
    )
    decode = lambda value: None if value is None else json.loads(value)  # noqa: E731
    return decode(found["oldValue"]), decode(found["newValue"])


def tenant_headers(emu, http, tenant):
    return bearer(get_token(emu, http, tenant=tenant))


def delegated_headers(emu, http, upn, scope="openid AuditLog.Read.All"):
    """A user's token through the sign-in page and the authorization code."""
    params = {
        "client_id": PORTAL_APP_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": scope,
        "state": "s",
    }
    request = requests.Request(
        "GET", f"{emu.url}/organizations/oauth2/v2.0/authorize", params=params
    )
    url = request.prepare().url
    page = http.get(url).text
    users = {u: o for o, u in re.findall(r"name='user' value='([^']+)'>[^<]*&lt;([^&]+)&gt;", page)}
    location = http.post(url, data={"user": users[upn]}, allow_redirects=False).headers["Location"]
    form = {
        "grant_type": "authorization_code",
        "client_id": PORTAL_APP_ID,
        "client_secret": PORTAL_SECRET,
        "code": parse_qs(urlsplit(location).query)["code"][0],
        "redirect_uri": REDIRECT,
        "scope": scope,
    }
    tokens = http.post(f"{emu.url}/organizations/oauth2/v2.0/token", data=form)
    assert tokens.status_code == 200, tokens.text
    return bearer(tokens.json()["access_token"])


# -- the sign-in activity report ------------------------------------------------------


def test_the_sign_in_report_has_graphs_shape_and_each_apps_last_sign_ins(emu, http, contoso):
    body = get(emu, http, contoso, REPORT)
    assert body["@odata.context"] == (
        f"{emu.url}/beta/$metadata#reports/servicePrincipalSignInActivities"
    )
    items = {i["appId"]: i for i in body["value"]}
    for item in items.values():
        assert list(item) == list(evidence.SIGN_IN_ACTIVITY_FIELDS)
        assert base64.b64decode(item["id"]).decode() == item["appId"]
    connect = items[CONNECT_APP_ID]
    app_only = connect["applicationAuthenticationClientSignInActivity"]
    assert abs(ago(emu, app_only["lastSignInDateTime"]) - 2 * 3600) < 120
    assert connect["lastSignInActivity"] == app_only
    assert connect["delegatedClientSignInActivity"] is None
    assert connect["delegatedResourceSignInActivity"] is None
    teams = items[TEAMS_ROOMS_APP_ID]["lastSignInActivity"]["lastSignInDateTime"]
    assert abs(ago(emu, teams) - 300 * DAY) < 120
    assert LOOKOUT_APP_ID not in items  # no sign-in on record: not in the report at all
    askcody = items[ASKCODY_APP_ID]
    assert askcody["lastSignInActivity"] == askcody["delegatedClientSignInActivity"]
    # A resource is signed in to by its clients: the fixture's token, AskCody's users.
    graph = items[GRAPH_APP_ID]
    assert (
        ago(emu, graph["applicationAuthenticationResourceSignInActivity"]["lastSignInDateTime"])
        < 60
    )
    delegated = graph["delegatedResourceSignInActivity"]["lastSignInDateTime"]
    assert abs(ago(emu, delegated) - 3 * 3600) < 120
    assert graph["applicationAuthenticationClientSignInActivity"] is None


def test_a_token_issued_is_a_sign_in_on_the_emulators_clock(emu, http, contoso):
    emu.advance_clock(5 * DAY)
    headers = bearer(get_token(emu, http))

    portal = sign_ins(emu, http, headers)[PORTAL_APP_ID]

    last = portal["applicationAuthenticationClientSignInActivity"]["lastSignInDateTime"]
    assert ago(emu, last) < 60
    assert portal["lastSignInActivity"]["lastSignInDateTime"] == last
    # The portal's own delegated sign-in (a day before the demo began) is kept apart.
    delegated = portal["delegatedClientSignInActivity"]["lastSignInDateTime"]
    assert abs(ago(emu, delegated) - 6 * DAY) < 120


def test_the_report_pages_with_next_links_serving_each_app_once(emu, http, contoso):
    whole = [i["id"] for i in get(emu, http, contoso, REPORT)["value"]]
    items, pages = page_all(http, f"{emu.url}{REPORT}", contoso, {"$top": 2})

    assert [i["id"] for i in items] == whole
    assert pages == (len(whole) + 1) // 2 and pages > 2


def test_the_report_filters_on_app_id_and_takes_select(emu, http, contoso):
    body = get(
        emu,
        http,
        contoso,
        REPORT,
        **{"$filter": f"appId eq '{CONNECT_APP_ID}'", "$select": "appId,lastSignInActivity"},
    )
    assert [list(i) for i in body["value"]] == [["appId", "lastSignInActivity"]]
    assert body["value"][0]["appId"] == CONNECT_APP_ID

    one = get(emu, http, contoso, f"{REPORT}/{base64.b64encode(CONNECT_APP_ID.encode()).decode()}")
    assert one["appId"] == CONNECT_APP_ID


def test_without_audit_log_read_all_the_reports_are_refused(emu, http):
    headers = tenant_headers(emu, http, WOODGROVE)  # the portal holds only read roles there
    for path in (REPORT, AUDITS):
        error = assert_graph_error(
            http.get(f"{emu.url}{path}", headers=headers),
            403,
            "Authentication_MSGraphPermissionMissing",
        )
        assert error["message"].endswith("AuditLog.Read.All")


def test_a_tenant_without_entra_id_p1_gets_the_licence_403_until_it_has_one(emu, http):
    headers = tenant_headers(emu, http, FABRIKAM)
    error = assert_graph_error(
        http.get(f"{emu.url}{REPORT}", headers=headers),
        403,
        "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
    )
    assert error["message"] == "Neither tenant is B2C or tenant doesn't have premium license"
    # The audit log has no such gate: Free keeps it 7 days.
    assert http.get(f"{emu.url}{AUDITS}", headers=headers).status_code == 200

    emu.set_premium(FABRIKAM, True)
    assert CONNECT_APP_ID in sign_ins(emu, http, headers)

    taken = http.patch(f"{emu.url}/_emulator/tenants/{FABRIKAM}", json={"premium": False})
    assert taken.status_code == 204
    assert http.get(f"{emu.url}{REPORT}", headers=headers).status_code == 403
    bad = http.patch(f"{emu.url}/_emulator/tenants/{FABRIKAM}", json={"premium": "yes"})
    assert bad.status_code == 400


def test_a_user_reads_the_reports_only_in_an_admin_role(emu, http):
    bob = delegated_headers(emu, http, "bob@contoso.onmicrosoft.com")
    assert_graph_error(
        http.get(f"{emu.url}{REPORT}", headers=bob),
        403,
        "Authentication_RequestFromUnsupportedUserRole",
    )
    alice = delegated_headers(emu, http, "alice@contoso.onmicrosoft.com")
    assert http.get(f"{emu.url}{REPORT}", headers=alice).status_code == 200
    # Her sign-in was a delegated one, to Graph.
    graph = sign_ins(emu, http, alice)[GRAPH_APP_ID]
    assert ago(emu, graph["delegatedResourceSignInActivity"]["lastSignInDateTime"]) < 60


# -- directory audit events ---------------------------------------------------------


def test_audit_events_have_graphs_shape_newest_first(emu, http, contoso):
    body = get(emu, http, contoso, AUDITS)
    assert body["@odata.context"] == f"{emu.url}/v1.0/$metadata#auditLogs/directoryAudits"
    events = body["value"]
    times = [moment(e["activityDateTime"]) for e in events]
    assert times == sorted(times, reverse=True)
    for event in events:
        assert list(event) == AUDIT_KEYS
        assert event["category"] == "ApplicationManagement"
        assert event["loggedByService"] == "Core Directory"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z", event["activityDateTime"])
        assert set(event["initiatedBy"]) == {"user", "app"}
        assert [v is None for v in event["initiatedBy"].values()].count(True) == 1

    mail = next(
        e for e in events if e["activityDisplayName"] == ADD_ROLE
        and prop(e, "AppRole.Value")[1] == "Mail.Read"
    )  # fmt: skip
    assert mail["targetResources"][0]["displayName"] == "Microsoft Graph"
    assert mail["targetResources"][0]["type"] == "ServicePrincipal"
    assert prop(mail, "ServicePrincipal.AppId") == (None, TEAMS_ROOMS_APP_ID)
    assert mail["initiatedBy"]["user"]["userPrincipalName"] == "oscar@contoso.onmicrosoft.com"
    assert mail["operationType"] == "Assign" and mail["result"] == "success"
    assert abs(ago(emu, mail["activityDateTime"]) - 12 * DAY) < 120

    consent = next(
        e for e in events if e["activityDisplayName"] == CONSENT
        and e["initiatedBy"]["user"]["userPrincipalName"] == "alice@contoso.onmicrosoft.com"
    )  # fmt: skip
    assert consent["targetResources"][0]["displayName"] == "AskCody"
    assert prop(consent, "ConsentContext.IsAdminConsent") == (None, "True")
    assert "Scope:  openid profile" in prop(consent, "ConsentAction.Permissions")[1]
    # Consents are logged as done by Entra's token service, over the user's own UPN.
    assert consent["initiatedBy"]["user"]["displayName"] == "Azure ESTS Service"
    refused = next(e for e in events if e["result"] == "failure")
    assert refused["activityDisplayName"] == CONSENT and refused["resultReason"]


def test_audit_events_older_than_the_licence_keeps_are_not_returned(emu, http, contoso):
    returned = audits(emu, http, contoso)
    kept = emu.audit_events(CONTOSO)
    assert len(kept) == len(returned) + 3  # 247connect's three roles, 45 days ago (P1: 30)
    assert all(ago(emu, e["activityDateTime"]) < 30 * DAY for e in returned)

    fabrikam = tenant_headers(emu, http, FABRIKAM)  # Entra ID Free: 7 days
    users = {e["initiatedBy"]["user"]["userPrincipalName"] for e in audits(emu, http, fabrikam)}
    assert "grace@fabrikam.onmicrosoft.com" in users
    assert "heidi@fabrikam.onmicrosoft.com" not in users  # 9 days ago
    emu.set_premium(FABRIKAM, True)
    users = {e["initiatedBy"]["user"]["userPrincipalName"] for e in audits(emu, http, fabrikam)}
    assert "heidi@fabrikam.onmicrosoft.com" in users

    emu.set_premium(FABRIKAM, False)
    emu.advance_clock(6 * DAY)  # grace's consent is 8 days old now
    assert audits(emu, http, bearer(get_token(emu, http, tenant=FABRIKAM))) == []


def test_audit_events_page_newest_first_serving_each_once(emu, http, contoso):
    whole = [e["id"] for e in audits(emu, http, contoso)]
    items, pages = page_all(http, f"{emu.url}{AUDITS}", contoso, {"$top": 3})

    assert [e["id"] for e in items] == whole
    assert pages == -(-len(whole) // 3) and pages > 2
    oldest_first, _ = page_all(
        http, f"{emu.url}{AUDITS}", contoso, {"$top": 4, "$orderby": "activityDateTime asc"}
    )
    assert [e["id"] for e in oldest_first] == whole[::-1]


@pytest.mark.parametrize(
    ("expression", "wanted"),
    [
        (
            "category eq 'ApplicationManagement' and activityDisplayName eq 'Consent to application'",
            lambda e: e["activityDisplayName"] == CONSENT,
        ),
        (
            "activityDisplayName eq 'remove APP ROLE assignment from service principal'",
            lambda e: e["activityDisplayName"] == REMOVE_ROLE,
        ),
        (
            "startswith(activityDisplayName, 'Add ')",
            lambda e: e["activityDisplayName"][:4] == "Add ",
        ),
        ("result eq 'failure'", lambda e: e["result"] == "failure"),
        (
            "initiatedBy/user/userPrincipalName eq 'erin@contoso.onmicrosoft.com'",
            lambda e: (
                e["initiatedBy"]["user"]["userPrincipalName"] == "erin@contoso.onmicrosoft.com"
            ),
        ),
        (
            "(activityDisplayName eq 'Consent to application' or activityDisplayName eq "
            "'Add delegated permission grant') and "
            "initiatedBy/user/userPrincipalName eq 'alice@contoso.onmicrosoft.com'",
            lambda e: (
                e["activityDisplayName"] in (CONSENT, ADD_GRANT)
                and e["initiatedBy"]["user"]["userPrincipalName"] == "alice@contoso.onmicrosoft.com"
            ),
        ),
        (
            "targetResources/any(t: t/displayName eq 'AskCody')",
            lambda e: e["targetResources"][0]["displayName"] == "AskCody",
        ),
    ],
)
def test_audit_events_filter_as_graph_documents(emu, http, contoso, expression, wanted):
    everything = audits(emu, http, contoso)
    found = audits(emu, http, contoso, **{"$filter": expression})
    assert found == [e for e in everything if wanted(e)]
    assert found


def test_audit_events_filter_on_their_time_unquoted(emu, http, contoso):
    everything = audits(emu, http, contoso)
    since = dt.datetime.fromtimestamp(emu.app.state.clock.now() - 4 * DAY, dt.UTC)
    bound = since.strftime("%Y-%m-%dT%H:%M:%SZ")
    found = audits(emu, http, contoso, **{"$filter": f"activityDateTime ge {bound}"})

    assert found == [e for e in everything if moment(e["activityDateTime"]) >= moment(bound)]
    assert 0 < len(found) < len(everything)


@pytest.mark.parametrize(
    ("expression", "status", "code"),
    [
        ("activityDateTime ge '2026-01-01T00:00:00Z'", 400, "BadRequest"),
        ("colour eq 'blue'", 400, "Request_UnsupportedQuery"),
        ("activityDisplayName gt 'A'", 400, "BadRequest"),
        ("category eq", 400, "BadRequest"),
        ("targetResources/any(t: t/type eq 'User')", 400, "Request_UnsupportedQuery"),
    ],
)
def test_a_bad_audit_filter_is_refused(emu, http, contoso, expression, status, code):
    response = http.get(f"{emu.url}{AUDITS}", headers=contoso, params={"$filter": expression})
    assert_graph_error(response, status, code)


def events_since(emu, http, headers, since):
    bound = dt.datetime.fromtimestamp(since, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return audits(emu, http, headers, **{"$filter": f"activityDateTime ge {bound}"})


def test_app_role_writes_append_the_events_entra_logs_on_the_emulators_clock(emu, http, contoso):
    emu.advance_clock(3 * DAY)
    start = emu.app.state.clock.now() - 1
    graph, lookout = emu.sp_id(CONTOSO, GRAPH_APP_ID), emu.sp_id(CONTOSO, LOOKOUT_APP_ID)
    portal = emu.sp_id(CONTOSO, PORTAL_APP_ID)
    created = http.post(
        f"{emu.url}/v1.0/servicePrincipals/{graph}/appRoleAssignedTo",
        headers=contoso,
        json={"principalId": lookout, "resourceId": graph, "appRoleId": MAIL_READ},
    )
    assert created.status_code == 201, created.text
    deleted = http.delete(
        f"{emu.url}/v1.0/servicePrincipals/{graph}/appRoleAssignedTo/{created.json()['id']}",
        headers=contoso,
    )
    assert deleted.status_code == 204

    removed, added = events_since(emu, http, contoso, start)

    assert (added["activityDisplayName"], removed["activityDisplayName"]) == (ADD_ROLE, REMOVE_ROLE)
    assert ago(emu, added["activityDateTime"]) < 60  # three days ahead of the wall clock
    assert added["initiatedBy"] == {
        "app": {
            "appId": None,
            "displayName": "Permission Portal",
            "servicePrincipalId": portal,
            "servicePrincipalName": None,
        },
        "user": None,
    }
    assert added["targetResources"][0]["id"] == graph
    assert prop(added, "AppRole.Value") == (None, "Mail.Read")
    assert prop(added, "ServicePrincipal.ObjectID") == (None, lookout)
    assert prop(removed, "AppRole.Value") == ("Mail.Read", None)
    assert removed["operationType"] == "Unassign"
    assert added["correlationId"] != removed["correlationId"]


def test_grant_writes_append_add_and_remove_events(emu, http, contoso):
    start = emu.app.state.clock.now() - 1
    graph, lookout = emu.sp_id(CONTOSO, GRAPH_APP_ID), emu.sp_id(CONTOSO, LOOKOUT_APP_ID)
    bob = emu.state(CONTOSO)["users"][1]["id"]
    created = http.post(
        f"{emu.url}/v1.0/oauth2PermissionGrants",
        headers=contoso,
        json={
            "clientId": lookout,
            "consentType": "Principal",
            "principalId": bob,
            "resourceId": graph,
            "scope": "User.Read",
        },
    )
    assert created.status_code == 201, created.text
    grant = f"{emu.url}/v1.0/oauth2PermissionGrants/{created.json()['id']}"
    assert http.patch(grant, headers=contoso, json={"scope": "User.Read Calendars.Read"}).ok
    assert http.delete(grant, headers=contoso).status_code == 204

    deleted, *changed, first = events_since(emu, http, contoso, start)

    assert first["activityDisplayName"] == ADD_GRANT
    assert prop(first, "DelegatedPermissionGrant.Scope") == (None, " User.Read")
    assert prop(first, "DelegatedPermissionGrant.ConsentType") == (None, "Principal")
    assert prop(first, "DelegatedPermissionGrant.PrincipalId") == (None, bob)
    assert prop(first, "ServicePrincipal.ObjectID") == (None, lookout)
    # A changed scope is an Add and a Remove, both old -> new, as Entra logs it.
    assert sorted(e["activityDisplayName"] for e in changed) == [ADD_GRANT, REMOVE_GRANT]
    for event in changed:
        scope = prop(event, "DelegatedPermissionGrant.Scope")
        assert scope == (" User.Read", " User.Read Calendars.Read")
    assert changed[0]["correlationId"] == changed[1]["correlationId"]
    assert deleted["activityDisplayName"] == REMOVE_GRANT
    assert prop(deleted, "DelegatedPermissionGrant.Scope") == (" User.Read Calendars.Read", None)


def test_an_admin_consent_logs_each_grant_then_the_consent(emu, http):
    params = {
        "client_id": PORTAL_APP_ID,
        "redirect_uri": "http://127.0.0.1:8000/tenants/connect/callback/",
    }
    request = requests.Request("GET", f"{emu.url}/{NORTHWIND}/adminconsent", params=params)
    url = request.prepare().url
    nina = re.search(r"name='user' value='([^']+)'>Accept as Nina Novak", http.get(url).text)
    done = http.post(url, data={"decision": "accept", "user": nina.group(1)}, allow_redirects=False)
    assert done.status_code == 302

    events = emu.audit_events(NORTHWIND)

    assert [e["activityDisplayName"] for e in events] == [ADD_ROLE, ADD_ROLE, ADD_GRANT, CONSENT]
    assert len({e["correlationId"] for e in events}) == 1
    assert {prop(e, "AppRole.Value")[1] for e in events[:2]} == {
        "Application.Read.All",
        "Directory.Read.All",
    }
    consent = events[-1]
    assert consent["targetResources"][0]["id"] == emu.sp_id(NORTHWIND, PORTAL_APP_ID)
    assert consent["initiatedBy"]["user"]["userPrincipalName"] == "nina@northwind.onmicrosoft.com"
    assert prop(consent, "ConsentContext.IsAppOnly") == (None, "False")
    assert "Scope:  openid profile email User.Read" in prop(consent, "ConsentAction.Permissions")[1]


# -- owners, credentials, applications ------------------------------------------------


def owners(emu, http, headers, tenant, app_id, select="id,displayName,userPrincipalName"):
    sp = emu.sp_id(tenant, app_id)
    body = get(emu, http, headers, f"/v1.0/servicePrincipals/{sp}/owners", **{"$select": select})
    assert body["@odata.context"] == f"{emu.url}/v1.0/$metadata#directoryObjects"
    return body["value"]


def test_owners_are_directory_objects_with_their_type(emu, http, contoso):
    users = {u["userPrincipalName"]: u["id"] for u in emu.state(CONTOSO)["users"]}

    assert owners(emu, http, contoso, CONTOSO, ASKCODY_APP_ID) == [
        {
            "@odata.type": "#microsoft.graph.user",
            "id": users["erin@contoso.onmicrosoft.com"],
            "displayName": "Erin Eklund",
            "userPrincipalName": "erin@contoso.onmicrosoft.com",
        },
        {
            "@odata.type": "#microsoft.graph.user",
            "id": users["frank@contoso.onmicrosoft.com"],
            "displayName": "Frank Falk",
            "userPrincipalName": "frank@contoso.onmicrosoft.com",
        },
    ]
    assert owners(emu, http, contoso, CONTOSO, LEGACY_APP_ID) == []


def test_an_app_can_own_a_service_principal_and_pages_follow_top(emu, http):
    headers = tenant_headers(emu, http, WOODGROVE)
    found = owners(emu, http, headers, WOODGROVE, PAYROLL_APP_ID)

    assert [o["@odata.type"] for o in found] == [
        "#microsoft.graph.user",
        "#microsoft.graph.user",
        "#microsoft.graph.servicePrincipal",
    ]
    # A service principal has no userPrincipalName: it is left out, not null.
    assert found[2] == {
        "@odata.type": "#microsoft.graph.servicePrincipal",
        "id": emu.sp_id(WOODGROVE, HR_PORTAL_APP_ID),
        "displayName": "Woodgrove HR Portal",
    }
    sp = emu.sp_id(WOODGROVE, PAYROLL_APP_ID)
    paged, pages = page_all(http, f"{emu.url}/v1.0/servicePrincipals/{sp}/owners", headers, {
        "$top": 2,
        "$select": "id,displayName,userPrincipalName",
    })  # fmt: skip
    assert (paged, pages) == (found, 2)


def test_owners_a_caller_may_not_read_come_with_limited_information(emu, http, contoso):
    portal = emu.sp_id(CONTOSO, PORTAL_APP_ID)
    held = get(emu, http, contoso, f"/v1.0/servicePrincipals/{portal}/appRoleAssignments")
    directory = next(a for a in held["value"] if a["appRoleId"] == DIRECTORY_READ_ALL)
    graph = emu.sp_id(CONTOSO, GRAPH_APP_ID)
    url = f"{emu.url}/v1.0/servicePrincipals/{graph}/appRoleAssignedTo/{directory['id']}"
    assert http.delete(url, headers=contoso).status_code == 204
    without = bearer(get_token(emu, http))  # Application.Read.All, no user-reading role

    erin, frank = owners(emu, http, without, CONTOSO, ASKCODY_APP_ID)

    assert erin == {
        "@odata.type": "#microsoft.graph.user",
        "id": erin["id"],
        "displayName": None,
        "userPrincipalName": None,
    }
    assert frank["displayName"] is None


def test_credentials_on_a_service_principal_come_with_select(emu, http, contoso):
    listed = get(
        emu,
        http,
        contoso,
        "/v1.0/servicePrincipals",
        **{
            "$filter": f"appId eq '{LEGACY_APP_ID}'",
            "$select": "id,passwordCredentials,keyCredentials",
        },
    )["value"][0]

    (secret,) = listed["passwordCredentials"]
    assert secret["displayName"] == "legacy-export" and secret["secretText"] is None
    assert len(secret["hint"]) == 3
    assert abs(ago(emu, secret["endDateTime"]) + 20 * DAY) < 120  # expires in 20 days
    (certificate,) = listed["keyCredentials"]
    assert certificate["key"] is None  # only a read of one object carries it
    assert (certificate["type"], certificate["usage"]) == ("AsymmetricX509Cert", "Verify")
    assert abs(ago(emu, certificate["endDateTime"]) - 30 * DAY) < 120  # expired 30 days ago
    assert re.fullmatch(r"[0-9A-F]{40}", certificate["customKeyIdentifier"])

    one = get(
        emu,
        http,
        contoso,
        f"/v1.0/servicePrincipals/{listed['id']}",
        **{"$select": "keyCredentials"},
    )
    key = one["keyCredentials"][0]["key"]
    cert = x509.load_der_x509_certificate(base64.b64decode(key))
    assert cert.fingerprint(hashes.SHA1()).hex().upper() == certificate["customKeyIdentifier"]
    assert moment(certificate["endDateTime"]) == cert.not_valid_after_utc.timestamp()
    whole = get(emu, http, contoso, f"/v1.0/servicePrincipals/{listed['id']}")
    assert whole["keyCredentials"][0]["key"] is None


def test_saml_and_managed_identity_certificates_live_on_their_service_principals(emu, http):
    headers = tenant_headers(emu, http, WOODGROVE)
    select = {"$select": "passwordCredentials,keyCredentials"}
    saml = get(emu, http, headers, f"/v1.0/servicePrincipals(appId='{GLOBEX_APP_ID}')", **select)
    assert sorted(k["usage"] for k in saml["keyCredentials"]) == ["Sign", "Verify"]
    assert len({k["customKeyIdentifier"] for k in saml["keyCredentials"]}) == 1  # one key
    assert len({k["keyId"] for k in saml["keyCredentials"]}) == 2
    assert len(saml["passwordCredentials"]) == 1
    identity = get(
        emu, http, headers, f"/v1.0/servicePrincipals(appId='{SYNC_IDENTITY_APP_ID}')", **select
    )
    assert [k["displayName"] for k in identity["keyCredentials"]] == [f"CN={SYNC_IDENTITY_APP_ID}"]


def test_an_application_object_is_in_its_home_tenant_only(emu, http, contoso):
    select = {"$select": "id,appId,passwordCredentials,keyCredentials"}
    path = f"/v1.0/applications(appId='{PORTAL_APP_ID}')"
    app = get(emu, http, contoso, path, **select)

    assert [p["displayName"] for p in app["passwordCredentials"]] == ["portal", "portal (old)"]
    assert {p["hint"] for p in app["passwordCredentials"]} == {"emu"}
    assert app["passwordCredentials"][1]["endDateTime"] == "2024-01-31T00:00:00Z"
    cert = x509.load_pem_x509_certificate(
        emu.credentials(PORTAL_APP_ID).certificate_path.read_bytes()
    )
    (key,) = app["keyCredentials"]
    assert key["customKeyIdentifier"] == cert.fingerprint(hashes.SHA1()).hex().upper()
    assert base64.b64decode(key["key"]) == cert.public_bytes(serialization.Encoding.DER)
    assert get(emu, http, contoso, f"/v1.0/applications/{app['id']}")["appId"] == PORTAL_APP_ID

    fabrikam = tenant_headers(emu, http, FABRIKAM)
    missing = http.get(f"{emu.url}{path}", headers=fabrikam)
    assert_graph_error(missing, 404, "Request_ResourceNotFound")

    woodgrove = tenant_headers(emu, http, WOODGROVE)
    homed = get(emu, http, woodgrove, "/v1.0/applications", **select)["value"]
    assert {a["appId"] for a in homed} == {PAYROLL_APP_ID, HR_PORTAL_APP_ID}
    hr = next(a for a in homed if a["appId"] == HR_PORTAL_APP_ID)
    ends = sorted(-ago(emu, p["endDateTime"]) / DAY for p in hr["passwordCredentials"])
    assert [round(days) for days in ends] == [-40, 10]  # one expired, one due in 10 days


def test_service_principals_carry_their_created_date_time(emu, http, contoso):
    listed = get(
        emu, http, contoso, "/v1.0/servicePrincipals", **{"$select": "appId,createdDateTime"}
    )["value"]
    created = {sp["appId"]: sp["createdDateTime"] for sp in listed}

    assert abs(ago(emu, created[TEAMS_ROOMS_APP_ID]) - 700 * DAY) < 120
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created[GRAPH_APP_ID])
    graph = get(emu, http, contoso, f"/v1.0/servicePrincipals/{emu.sp_id(CONTOSO, GRAPH_APP_ID)}")
    assert graph["createdDateTime"] == created[GRAPH_APP_ID]


def test_owners_expand_on_the_listing_as_graph_expands_directory_objects(emu, http, contoso):
    listed = get(
        emu,
        http,
        contoso,
        "/v1.0/servicePrincipals",
        **{"$select": "appId", "$expand": "owners($select=id,displayName)"},
    )["value"]
    by_app = {sp["appId"]: sp["owners"] for sp in listed}

    assert [o["displayName"] for o in by_app[ASKCODY_APP_ID]] == ["Erin Eklund", "Frank Falk"]
    assert by_app[LEGACY_APP_ID] == []
    assert set(by_app[ASKCODY_APP_ID][0]) == {"@odata.type", "id", "displayName"}
    bad = http.get(
        f"{emu.url}/v1.0/servicePrincipals", headers=contoso, params={"$expand": "memberOf"}
    )
    assert_graph_error(bad, 400, "Request_UnsupportedQuery")


def test_an_expanded_listing_pages_by_100_whatever_top_asks(data_dir):
    data = generate(
        service_principals=150, app_role_assignments=10, delegated_grants=5, users=20,
        realistic=True, sso_assignments=0, groups=0,
    )  # fmt: skip
    tenant = data["tenants"][0]["id"]
    with run_emulator(data, data_dir=data_dir) as emu, session_for(emu) as session:
        headers = bearer(get_token(emu, session, tenant=tenant))
        url = f"{emu.url}/v1.0/servicePrincipals"
        params = {"$top": 999, "$select": "id", "$expand": "owners"}
        first = get(emu, session, headers, "/v1.0/servicePrincipals", **params)
        items, pages = page_all(session, url, headers, params)

    assert len(first["value"]) == 100 and "@odata.nextLink" in first
    assert (len(items), pages) == (150, 2)
    assert any(sp["owners"] for sp in items)


def test_with_audit_latency_an_event_is_returned_only_later(emu, http, contoso):
    start = emu.app.state.clock.now() - 1
    graph, lookout = emu.sp_id(CONTOSO, GRAPH_APP_ID), emu.sp_id(CONTOSO, LOOKOUT_APP_ID)
    emu.set_behaviour(audit_latency=300)
    created = http.post(
        f"{emu.url}/v1.0/servicePrincipals/{graph}/appRoleAssignedTo",
        headers=contoso,
        json={"principalId": lookout, "resourceId": graph, "appRoleId": MAIL_READ},
    )
    assert created.status_code == 201, created.text
    (logged,) = [e for e in emu.audit_events(CONTOSO) if moment(e["activityDateTime"]) >= start]

    assert events_since(emu, http, contoso, start) == []
    hidden = http.get(f"{emu.url}{AUDITS}/{logged['id']}", headers=contoso)
    assert_graph_error(hidden, 404, "Request_ResourceNotFound")
    emu.advance_clock(301)
    (shown,) = events_since(emu, http, contoso, start)
    assert shown["id"] == logged["id"]
    # Its time is when it happened, not when it showed up.
    assert shown["activityDateTime"] == logged["activityDateTime"]
