"""Delta queries for servicePrincipals and oauth2PermissionGrants (both v1.0): a first
round, what changed since, @removed, 400 syncStateNotFound for a token that is too old and
410 Gone (resyncRequired) for a sync state the emulator no longer has."""

from urllib.parse import parse_qs, urlsplit

from tests.emulator.helpers import (
    ASKCODY_APP_ID,
    CONNECT_APP_ID,
    CONTOSO,
    GRAPH_APP_ID,
    LOOKOUT_APP_ID,
    assert_graph_error,
)

SP_DELTA = "/v1.0/servicePrincipals/delta"
GRANT_DELTA = "/v1.0/oauth2PermissionGrants/delta"


def run_round(http, url, headers, params=None):
    """Every page of a round: the items, the page count, and the deltaLink it ends with."""
    items, pages = [], 0
    while True:
        response = http.get(url, headers=headers, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["value"]
        pages += 1
        params = None
        if "@odata.deltaLink" in body:
            assert "@odata.nextLink" not in body
            return items, pages, body["@odata.deltaLink"]
        url = body["@odata.nextLink"]


def test_a_first_round_pages_every_principal_and_ends_with_a_delta_link(emu, http, contoso):
    every = {sp["id"] for sp in emu.state(CONTOSO)["servicePrincipals"]}

    items, pages, delta_link = run_round(
        http, f"{emu.url}{SP_DELTA}", contoso, {"$select": "displayName,appId", "$top": "3"}
    )

    assert {sp["id"] for sp in items} == every and len(items) == len(every)
    assert pages == 3  # 8 principals, 3 a page
    assert all(set(sp) == {"id", "displayName", "appId"} for sp in items)  # id always
    assert delta_link.startswith(f"{emu.url}{SP_DELTA}?$deltatoken=")
    # The links carry the query: only the token is in them.
    assert set(parse_qs(urlsplit(delta_link).query)) == {"$deltatoken"}
    # Nothing changed since: an empty page and a new deltaLink.
    items, pages, _ = run_round(http, delta_link, contoso)
    assert items == [] and pages == 1


def test_a_delta_link_returns_what_changed_and_what_was_removed(emu, http, contoso):
    _, _, delta_link = run_round(http, f"{emu.url}{SP_DELTA}", contoso, {"$select": "displayName"})
    _, _, grant_link = run_round(http, f"{emu.url}{GRANT_DELTA}", contoso)
    connect, lookout = emu.sp_id(CONTOSO, CONNECT_APP_ID), emu.sp_id(CONTOSO, LOOKOUT_APP_ID)
    emu.update_service_principal(CONTOSO, connect, displayName="247connect (renamed)")
    emu.update_service_principal(CONTOSO, connect, accountEnabled=False)
    lookout_grants = [
        g for g in emu.state(CONTOSO)["oauth2PermissionGrants"] if g["clientId"] == lookout
    ]
    assert len(lookout_grants) == 1
    emu.delete_service_principal(CONTOSO, lookout)

    items, _, next_delta = run_round(http, delta_link, contoso)

    assert items == [
        {"displayName": "247connect (renamed)", "id": connect},  # once, though changed twice
        {"id": lookout, "@removed": {"reason": "changed"}},  # restorable from deleted items
    ]
    assert run_round(http, next_delta, contoso)[0] == []
    # Deleting the principal took its grant with it: the grant delta shows it removed.
    assert run_round(http, grant_link, contoso)[0] == [
        {"id": g["id"], "@removed": {"reason": "deleted"}} for g in lookout_grants
    ]


def test_grant_delta_shows_changed_scopes_and_deleted_grants(emu, http, contoso):
    client = emu.sp_id(CONTOSO, ASKCODY_APP_ID)
    grants = [g for g in emu.state(CONTOSO)["oauth2PermissionGrants"] if g["clientId"] == client]
    every = emu.state(CONTOSO)["oauth2PermissionGrants"]
    first, _, delta_link = run_round(http, f"{emu.url}{GRANT_DELTA}", contoso, {"$top": "2"})
    assert sorted(g["id"] for g in first) == sorted(g["id"] for g in every)
    changed, deleted = grants[0], grants[1]
    base = f"{emu.url}/v1.0/oauth2PermissionGrants"
    assert (
        http.patch(
            f"{base}/{changed['id']}", headers=contoso, json={"scope": "User.Read"}
        ).status_code
        == 204
    )
    assert http.delete(f"{base}/{deleted['id']}", headers=contoso).status_code == 204

    items, _, _ = run_round(http, delta_link, contoso)

    assert items == [
        {**changed, "scope": "User.Read"},
        {"id": deleted["id"], "@removed": {"reason": "deleted"}},
    ]


def test_a_change_reaches_the_delta_only_when_replicas_have_it(emu, http, contoso):
    _, _, delta_link = run_round(http, f"{emu.url}{GRANT_DELTA}", contoso)
    emu.set_behaviour(replication_lag={"collections": 5})
    client = emu.sp_id(CONTOSO, ASKCODY_APP_ID)
    grant = next(g for g in emu.state(CONTOSO)["oauth2PermissionGrants"] if g["clientId"] == client)
    base = f"{emu.url}/v1.0/oauth2PermissionGrants"
    assert http.delete(f"{base}/{grant['id']}", headers=contoso).status_code == 204

    items, _, same_point = run_round(http, delta_link, contoso)
    assert items == []
    emu.advance_clock(5.1)
    items, _, _ = run_round(http, same_point, contoso)  # the change was not skipped
    assert items == [{"id": grant["id"], "@removed": {"reason": "deleted"}}]


def test_an_old_delta_token_answers_400_and_a_new_round_starts_over(emu, http, contoso):
    _, _, delta_link = run_round(http, f"{emu.url}{SP_DELTA}", contoso)
    emu.set_behaviour(delta_token_max_age=3600)
    assert http.get(delta_link, headers=contoso).status_code == 200
    emu.advance_clock(3601)

    error = assert_graph_error(http.get(delta_link, headers=contoso), 400, "syncStateNotFound")
    assert "synchronized again" in error["message"]
    items, _, fresh = run_round(http, f"{emu.url}{SP_DELTA}", contoso)
    assert len(items) == 8
    assert http.get(fresh, headers=contoso).status_code == 200


def test_delta_tokens_expire_over_the_control_endpoint_and_by_default_after_7_days(
    emu, http, contoso
):
    _, _, sp_link = run_round(http, f"{emu.url}{SP_DELTA}", contoso)
    _, _, grant_link = run_round(http, f"{emu.url}{GRANT_DELTA}", contoso)

    assert http.post(f"{emu.url}/_emulator/delta/expire").status_code == 204

    assert_graph_error(http.get(sp_link, headers=contoso), 410, "resyncRequired")
    assert_graph_error(http.get(grant_link, headers=contoso), 410, "resyncRequired")
    _, _, sp_link = run_round(http, f"{emu.url}{SP_DELTA}", contoso)
    emu.advance_clock(6 * 86400)
    assert http.get(sp_link, headers=contoso).status_code == 200
    emu.advance_clock(2 * 86400)  # that deltaLink is 8 days old now
    assert_graph_error(http.get(sp_link, headers=contoso), 400, "syncStateNotFound")
    # A token from another collection, or made up, is no sync state either.
    token = parse_qs(urlsplit(grant_link).query)["$deltatoken"][0]
    other = http.get(f"{emu.url}{SP_DELTA}", headers=contoso, params={"$deltatoken": token})
    assert_graph_error(other, 410, "resyncRequired")
    made_up = http.get(f"{emu.url}{SP_DELTA}", headers=contoso, params={"$deltatoken": "abc"})
    assert_graph_error(made_up, 410, "resyncRequired")


def test_sync_from_now_and_tracking_chosen_ids(emu, http, contoso):
    latest = http.get(f"{emu.url}{SP_DELTA}", headers=contoso, params={"$deltatoken": "latest"})
    assert latest.json()["value"] == [] and "@odata.deltaLink" in latest.json()
    connect, graph = emu.sp_id(CONTOSO, CONNECT_APP_ID), emu.sp_id(CONTOSO, GRAPH_APP_ID)
    items, _, tracked = run_round(
        http,
        f"{emu.url}{SP_DELTA}",
        contoso,
        {"$filter": f"id eq '{connect}' or id eq '{graph}'", "$select": "id"},
    )
    assert sorted(sp["id"] for sp in items) == sorted([connect, graph])
    emu.update_service_principal(CONTOSO, connect, notes="changed")
    emu.update_service_principal(CONTOSO, emu.sp_id(CONTOSO, LOOKOUT_APP_ID), notes="changed")

    assert run_round(http, tracked, contoso)[0] == [{"id": connect}]
    assert [sp["id"] for sp in run_round(http, latest.json()["@odata.deltaLink"], contoso)[0]] == [
        connect,
        emu.sp_id(CONTOSO, LOOKOUT_APP_ID),
    ]
    bad = http.get(f"{emu.url}{SP_DELTA}", headers=contoso, params={"$filter": "appId eq 'x'"})
    assert_graph_error(bad, 400, "Request_UnsupportedQuery")


def test_a_delta_link_takes_a_new_select_and_a_next_link_does_not(emu, http, contoso):
    first = http.get(f"{emu.url}{SP_DELTA}", headers=contoso, params={"$top": "3"})
    next_link = first.json()["@odata.nextLink"]
    refused = http.get(next_link, headers=contoso, params={"$select": "displayName"})
    assert_graph_error(refused, 400, "Request_UnsupportedQuery")
    _, _, delta_link = run_round(http, next_link, contoso)
    connect = emu.sp_id(CONTOSO, CONNECT_APP_ID)
    emu.update_service_principal(CONTOSO, connect, displayName="247connect (renamed)")

    items, _, _ = run_round(http, delta_link, contoso, {"$select": "appId"})

    assert items == [{"id": connect, "appId": CONNECT_APP_ID}]
