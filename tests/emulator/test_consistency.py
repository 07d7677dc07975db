"""Graph is eventually consistent and not always complete (DESIGN.md): the switches
that make the emulator so, driven over HTTPS. The emulator's clock moves, not time."""

import jwt
import pytest

from tests.emulator.helpers import (
    APPLICATION_READWRITE_ALL,
    ASKCODY_APP_ID,
    CONNECT_APP_ID,
    CONTOSO,
    GRAPH_APP_ID,
    LOOKOUT_APP_ID,
    MAIL_READ,
    NORTHWIND,
    PORTAL_APP_ID,
    assert_graph_error,
    bearer,
    get_token,
    page_all,
)

GRANTS = "/v1.0/oauth2PermissionGrants"
EVENTUAL = {"ConsistencyLevel": "eventual"}


def ids(http, url, headers, params=None):
    return {
        item["id"] for item in page_all(http, url, headers, {"$top": "999", **(params or {})})[0]
    }


@pytest.fixture
def assigned_to(emu):
    graph = emu.sp_id(CONTOSO, GRAPH_APP_ID)
    return graph, f"{emu.url}/v1.0/servicePrincipals/{graph}/appRoleAssignedTo"


def test_a_new_assignment_reaches_reads_by_id_then_listings_after_their_lags(
    emu, http, contoso, assigned_to
):
    emu.set_behaviour(replication_lag={"collections": 5, "by_id": 2})
    graph, url = assigned_to
    client = emu.sp_id(CONTOSO, CONNECT_APP_ID)
    held_by = f"{emu.url}/v1.0/servicePrincipals/{client}/appRoleAssignments"

    created = http.post(
        url,
        headers=contoso,
        json={"principalId": client, "resourceId": graph, "appRoleId": MAIL_READ},
    )
    assert created.status_code == 201
    new = created.json()["id"]

    assert new not in ids(http, url, contoso) and new not in ids(http, held_by, contoso)
    assert_graph_error(http.get(f"{url}/{new}", headers=contoso), 404, "Request_ResourceNotFound")
    emu.advance_clock(2.1)
    assert http.get(f"{url}/{new}", headers=contoso).status_code == 200
    assert new not in ids(http, url, contoso)
    emu.advance_clock(3)
    assert new in ids(http, url, contoso) and new in ids(http, held_by, contoso)


def test_a_deleted_assignment_is_still_read_until_the_lag_passes(emu, http, contoso, assigned_to):
    _, url = assigned_to
    existing = sorted(ids(http, url, contoso))[0]
    emu.set_behaviour(replication_lag={"collections": 5, "by_id": 2})

    assert http.delete(f"{url}/{existing}", headers=contoso).status_code == 204

    assert existing in ids(http, url, contoso)
    assert http.get(f"{url}/{existing}", headers=contoso).status_code == 200
    emu.advance_clock(2.1)
    assert http.get(f"{url}/{existing}", headers=contoso).status_code == 404
    assert existing in ids(http, url, contoso)
    emu.advance_clock(3)
    assert existing not in ids(http, url, contoso)
    # The primary took the write at once: deleting again is a 404, not a second delete.
    assert http.delete(f"{url}/{existing}", headers=contoso).status_code == 404


def askcody_admin_grant(emu):
    client = emu.sp_id(CONTOSO, ASKCODY_APP_ID)
    grants = emu.state(CONTOSO)["oauth2PermissionGrants"]
    return client, next(
        g for g in grants if g["clientId"] == client and g["consentType"] == "AllPrincipals"
    )


def test_grant_writes_show_the_old_scope_until_the_lag_passes(emu, http, contoso):
    client, grant = askcody_admin_grant(emu)
    emu.set_behaviour(replication_lag=3)  # one number: the same for both kinds of read
    by_id = f"{emu.url}{GRANTS}/{grant['id']}"

    assert http.patch(by_id, headers=contoso, json={"scope": "openid"}).status_code == 204
    assert http.patch(by_id, headers=contoso, json={"scope": "User.Read"}).status_code == 204

    def scopes():
        listed = page_all(http, f"{emu.url}{GRANTS}", contoso, {"$top": "999"})[0]
        per_client = page_all(
            http, f"{emu.url}/v1.0/servicePrincipals/{client}/oauth2PermissionGrants", contoso, None
        )[0]
        return (
            http.get(by_id, headers=contoso).json()["scope"],
            next(g["scope"] for g in listed if g["id"] == grant["id"]),
            next(g["scope"] for g in per_client if g["id"] == grant["id"]),
        )

    assert scopes() == (grant["scope"],) * 3  # the state before the first of the two writes
    emu.advance_clock(3.1)
    assert scopes() == ("User.Read",) * 3


def test_a_new_grant_and_a_deleted_one_are_seen_late_in_every_listing(emu, http, contoso):
    client, grant = askcody_admin_grant(emu)
    emu.set_behaviour(replication_lag={"collections": 4})  # reads by id: at once
    connect, graph = emu.sp_id(CONTOSO, CONNECT_APP_ID), emu.sp_id(CONTOSO, GRAPH_APP_ID)
    listing = f"{emu.url}{GRANTS}"

    assert http.delete(f"{listing}/{grant['id']}", headers=contoso).status_code == 204
    body = {
        "clientId": connect,
        "consentType": "AllPrincipals",
        "resourceId": graph,
        "scope": "openid",
    }
    created = http.post(listing, headers=contoso, json=body)
    assert created.status_code == 201
    new = created.json()["id"]
    # Made again: Graph's 409 for a grant that exists, lag or not.
    again = http.post(listing, headers=contoso, json=body)
    assert_graph_error(again, 409, "Request_MultipleObjectsWithSameKeyValue")

    per_client = f"{emu.url}/v1.0/servicePrincipals/{client}/oauth2PermissionGrants"
    assert grant["id"] in ids(http, listing, contoso) and grant["id"] in ids(
        http, per_client, contoso
    )
    assert new not in ids(http, listing, contoso)
    assert http.get(f"{listing}/{grant['id']}", headers=contoso).status_code == 404
    assert http.get(f"{listing}/{new}", headers=contoso).status_code == 200
    emu.advance_clock(4.1)
    assert grant["id"] not in ids(http, listing, contoso)
    assert grant["id"] not in ids(http, per_client, contoso)
    assert new in ids(http, listing, contoso)


def test_without_lag_every_read_sees_a_write_at_once(emu, http, contoso, assigned_to):
    _, url = assigned_to
    existing = sorted(ids(http, url, contoso))[0]
    assert http.delete(f"{url}/{existing}", headers=contoso).status_code == 204
    assert existing not in ids(http, url, contoso)
    assert http.get(f"{url}/{existing}", headers=contoso).status_code == 404


def test_the_plain_grant_listing_leaves_out_what_count_and_per_client_reads_see(emu, http, contoso):
    client = emu.sp_id(CONTOSO, ASKCODY_APP_ID)
    every = {g["id"] for g in emu.state(CONTOSO)["oauth2PermissionGrants"]}
    askcody = {
        g["id"] for g in emu.state(CONTOSO)["oauth2PermissionGrants"] if g["clientId"] == client
    }
    assert len(askcody) == 4  # admin consent and three users
    emu.set_behaviour(incomplete_grants={"clients": [ASKCODY_APP_ID]})
    url = f"{emu.url}{GRANTS}"

    assert ids(http, url, contoso) == every - askcody
    assert ids(http, url, contoso, {"$filter": f"clientId eq '{client}'"}) == set()
    advanced = http.get(
        url, headers={**contoso, **EVENTUAL}, params={"$count": "true", "$top": "999"}
    )
    assert advanced.json()["@odata.count"] == len(every)
    assert {g["id"] for g in advanced.json()["value"]} == every
    per_client = f"{emu.url}/v1.0/servicePrincipals/{client}/oauth2PermissionGrants"
    assert ids(http, per_client, contoso) == askcody
    assert all(http.get(f"{url}/{g}", headers=contoso).status_code == 200 for g in askcody)
    counted = http.get(f"{url}/$count", headers={**contoso, **EVENTUAL})
    assert counted.status_code == 200 and counted.text == str(len(every))


def test_an_incomplete_listing_by_fraction_is_the_same_on_every_read(emu, http, contoso):
    every = {g["id"] for g in emu.state(CONTOSO)["oauth2PermissionGrants"]}
    emu.set_behaviour(incomplete_grants={"fraction": 0.5, "seed": 1})
    url = f"{emu.url}{GRANTS}"

    first, second = ids(http, url, contoso), ids(http, url, contoso)

    assert first == second and first < every and first
    one = sorted(every)[0]
    emu.set_behaviour(incomplete_grants={"grants": [one], "fraction": 0})
    assert ids(http, url, contoso) == every - {one}


def test_count_without_consistency_level_is_ignored_or_refused(emu, http, contoso):
    url = f"{emu.url}{GRANTS}"

    # As the advanced-queries doc says: silently ignored, no @odata.count.
    plain = http.get(url, headers=contoso, params={"$count": "true"})
    assert plain.status_code == 200 and "@odata.count" not in plain.json()
    emu.set_behaviour(count_without_header="error")
    error = assert_graph_error(
        http.get(url, headers=contoso, params={"$count": "true"}), 400, "Request_BadRequest"
    )
    assert "$count" in error["message"]
    raw = http.get(f"{url}/$count", headers=contoso)
    error = assert_graph_error(raw, 400, "Request_UnsupportedQuery")
    assert "ConsistencyLevel:eventual" in error["message"]
    graph = emu.sp_id(CONTOSO, GRAPH_APP_ID)
    counted = http.get(
        f"{emu.url}/v1.0/servicePrincipals/{graph}/appRoleAssignedTo/$count",
        headers={**contoso, **EVENTUAL},
    )
    assert counted.headers["Content-Type"].startswith("text/plain")
    assert int(counted.text) == sum(
        1 for a in emu.state(CONTOSO)["appRoleAssignments"] if a["resourceId"] == graph
    )


def test_a_vanished_principal_is_listed_then_answers_404_on_every_read(emu, http, contoso):
    lookout = emu.sp_id(CONTOSO, LOOKOUT_APP_ID)
    emu.set_behaviour(vanished_principals=[LOOKOUT_APP_ID])
    base = f"{emu.url}/v1.0/servicePrincipals"

    assert lookout in ids(http, base, contoso, {"$select": "id"})
    for path in (
        f"/{lookout}",
        f"(appId='{LOOKOUT_APP_ID}')",
        f"/{lookout}/appRoleAssignments",
        f"/{lookout}/appRoleAssignedTo",
        f"/{lookout}/oauth2PermissionGrants",
        f"(appId='{LOOKOUT_APP_ID}')/appRoleAssignments",
    ):
        error = assert_graph_error(
            http.get(f"{base}{path}", headers=contoso), 404, "Request_ResourceNotFound"
        )
        assert "does not exist" in error["message"]
    # What others hold on it or it holds elsewhere still lists it, as lagging indexes do.
    graph = emu.sp_id(CONTOSO, GRAPH_APP_ID)
    holders = page_all(http, f"{base}/{graph}/appRoleAssignedTo", contoso, {"$top": "999"})[0]
    assert any(a["principalId"] == lookout for a in holders)
    emu.set_behaviour(vanished_principals=[lookout])  # by object id works as well
    assert http.get(f"{base}/{lookout}", headers=contoso).status_code == 404
    emu.set_behaviour(vanished_principals=[])
    assert http.get(f"{base}/{lookout}", headers=contoso).status_code == 200


def roles(token):
    return set(jwt.decode(token, options={"verify_signature": False}).get("roles", []))


def test_a_token_lacks_a_new_role_and_keeps_a_removed_one_until_the_lag_passes(emu, http, contoso):
    emu.set_behaviour(token_role_lag=60)
    graph, portal = emu.sp_id(CONTOSO, GRAPH_APP_ID), emu.sp_id(CONTOSO, PORTAL_APP_ID)
    assigned = http.post(
        f"{emu.url}/v1.0/servicePrincipals/{graph}/appRoleAssignedTo",
        headers=contoso,
        json={"principalId": portal, "resourceId": graph, "appRoleId": APPLICATION_READWRITE_ALL},
    )
    assert assigned.status_code == 201
    lookout = emu.sp_id(CONTOSO, LOOKOUT_APP_ID)
    patch = f"{emu.url}/v1.0/servicePrincipals/{lookout}"

    fresh = get_token(emu, http)  # a new token, not a cached one
    assert "Application.ReadWrite.All" not in roles(fresh)
    denied = http.patch(patch, headers=bearer(fresh), json={"notes": "x"})
    assert_graph_error(denied, 403, "Authorization_RequestDenied")
    emu.advance_clock(61)
    later = get_token(emu, http)
    assert "Application.ReadWrite.All" in roles(later)
    assert http.patch(patch, headers=bearer(later), json={"notes": "x"}).status_code == 204

    removed = f"{emu.url}/v1.0/servicePrincipals/{graph}/appRoleAssignedTo/{assigned.json()['id']}"
    assert http.delete(removed, headers=bearer(later)).status_code == 204
    assert "Application.ReadWrite.All" in roles(get_token(emu, http))  # still, for a while
    emu.advance_clock(61)
    assert "Application.ReadWrite.All" not in roles(get_token(emu, http))


def test_a_token_right_after_admin_consent_has_no_roles_yet(emu, http):
    emu.set_behaviour(token_role_lag=30)
    consent = http.post(
        f"{emu.url}/{NORTHWIND}/adminconsent",
        data={
            "client_id": PORTAL_APP_ID,
            "redirect_uri": "http://127.0.0.1:8000/tenants/connect/callback/",
            "decision": "accept",
            "user": "nina@northwind.onmicrosoft.com",
        },
        allow_redirects=False,
    )
    assert consent.status_code == 302 and "admin_consent=True" in consent.headers["Location"]

    token = get_token(emu, http, tenant=NORTHWIND)
    assert roles(token) == set()
    listing = http.get(f"{emu.url}/v1.0/servicePrincipals", headers=bearer(token))
    assert_graph_error(listing, 403, "Authorization_RequestDenied")
    emu.advance_clock(31)
    token = get_token(emu, http, tenant=NORTHWIND)
    assert roles(token) == {"Application.Read.All", "Directory.Read.All"}
    assert http.get(f"{emu.url}/v1.0/servicePrincipals", headers=bearer(token)).status_code == 200
