"""Graph's own query rules and throttling signals, on switches: strict $filter on app
role assignments, $top up to 999, fractional Retry-After, x-ms-throttle-limit-percentage;
and request counts per path."""

from tests.emulator.helpers import (
    CONNECT_APP_ID,
    CONTOSO,
    FABRIKAM,
    GRAPH_APP_ID,
    assert_graph_error,
    bearer,
    get_token,
)

SPS = "/v1.0/servicePrincipals"


def test_strict_filters_refuse_principal_filters_on_app_role_assigned_to(emu, http, contoso):
    graph, connect = emu.sp_id(CONTOSO, GRAPH_APP_ID), emu.sp_id(CONTOSO, CONNECT_APP_ID)
    url = f"{emu.url}{SPS}/{graph}/appRoleAssignedTo"
    by_type = {"$filter": "principalType eq 'ServicePrincipal'"}
    by_principal = {"$filter": f"principalId eq {connect}"}
    # Off (the default), the emulator is lenient and both work.
    assert http.get(url, headers=contoso, params=by_type).status_code == 200
    assert len(http.get(url, headers=contoso, params=by_principal).json()["value"]) == 3

    emu.set_behaviour(strict_filters=True)

    error = assert_graph_error(
        http.get(url, headers=contoso, params=by_type), 400, "Request_BadRequest"
    )
    assert error["message"] == "Invalid filter clause principalType: System.String"
    error = assert_graph_error(
        http.get(url, headers=contoso, params=by_principal), 400, "Request_BadRequest"
    )
    assert error["message"] == "Invalid filter clause principalId: System.Guid"
    by_name = http.get(
        url, headers=contoso, params={"$filter": "startswith(principalDisplayName, '247')"}
    )
    assert {a["principalId"] for a in by_name.json()["value"]} == {connect}


def test_strict_filters_take_an_unquoted_resource_id_on_app_role_assignments(emu, http, contoso):
    emu.set_behaviour(strict_filters=True)
    graph, lookout = (
        emu.sp_id(CONTOSO, GRAPH_APP_ID),
        emu.sp_id(CONTOSO, "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"),
    )
    url = f"{emu.url}{SPS}/{lookout}/appRoleAssignments"

    held = http.get(
        url, headers=contoso, params={"$filter": f"resourceId eq {graph}", "$top": "999"}
    )

    assert held.status_code == 200
    assert len(held.json()["value"]) == 5  # its Graph roles, not its Intune one
    assert {a["resourceId"] for a in held.json()["value"]} == {graph}
    quoted = http.get(url, headers=contoso, params={"$filter": f"resourceId eq '{graph}'"})
    assert_graph_error(quoted, 400, "BadRequest")  # Edm.Guid: no quotes
    ranged = http.get(url, headers=contoso, params={"$filter": f"resourceId in ({graph})"})
    assert_graph_error(ranged, 400, "Request_UnsupportedQuery")  # eq only


def test_a_fault_can_send_a_fractional_retry_after(emu, http, contoso):
    emu.set_faults([{"path": "appRoleAssignedTo", "status": 429, "retry_after": 1.5, "times": 1}])
    graph = emu.sp_id(CONTOSO, GRAPH_APP_ID)

    response = http.get(f"{emu.url}{SPS}/{graph}/appRoleAssignedTo", headers=contoso)

    assert_graph_error(response, 429, "TooManyRequests")
    assert response.headers["Retry-After"] == "1.5"


def test_the_budget_reports_its_use_above_80_percent_and_throttles_when_spent(emu, http, contoso):
    emu.set_behaviour(
        throttling={
            "limit": 10,
            "window_seconds": 10,
            "enforce": True,
            "fractional_retry_after": True,
        }
    )
    url = f"{emu.url}/v1.0/organization"

    responses = [http.get(url, headers=contoso) for _ in range(11)]

    shares = [r.headers.get("x-ms-throttle-limit-percentage") for r in responses]
    assert shares == [None] * 8 + ["0.9", "1.0", "1.1"]
    assert [r.status_code for r in responses] == [200] * 10 + [429]
    retry_after = float(responses[-1].headers["Retry-After"])
    assert 0 < retry_after <= 10 and responses[-1].headers["Retry-After"] == f"{retry_after:.1f}"
    # Another app (or tenant) has its own budget.
    other = bearer(get_token(emu, http, tenant=FABRIKAM))
    assert http.get(url, headers=other).headers.get("x-ms-throttle-limit-percentage") is None
    emu.advance_clock(10)
    again = http.get(url, headers=contoso)
    assert again.status_code == 200 and "x-ms-throttle-limit-percentage" not in again.headers


def test_whole_seconds_in_retry_after_unless_fractional_is_asked_for(emu, http, contoso):
    emu.set_behaviour(throttling={"limit": 1, "window_seconds": 2.5, "enforce": True})
    url = f"{emu.url}/v1.0/organization"
    assert http.get(url, headers=contoso).status_code == 200
    throttled = http.get(url, headers=contoso)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "3"


def test_requests_are_counted_per_path_batched_ones_too(emu, http, contoso):
    graph, connect = emu.sp_id(CONTOSO, GRAPH_APP_ID), emu.sp_id(CONTOSO, CONNECT_APP_ID)
    emu.reset_counters()
    http.get(f"{emu.url}{SPS}/{graph}/appRoleAssignedTo", headers=contoso)
    http.get(f"{emu.url}{SPS}/{connect}/appRoleAssignments", headers=contoso)
    batch = {
        "requests": [
            {"id": "1", "method": "GET", "url": f"/servicePrincipals/{graph}/appRoleAssignedTo"},
            {"id": "2", "method": "GET", "url": f"/servicePrincipals(appId='{GRAPH_APP_ID}')"},
        ]
    }
    assert http.post(f"{emu.url}/v1.0/$batch", headers=contoso, json=batch).status_code == 200

    assert emu.requests_to(f"{graph}/appRoleAssignedTo") == 2
    assert emu.requests_to(f"({graph}|{GRAPH_APP_ID})") == 3
    assert emu.requests_to(connect, method="DELETE") == 0
    snapshot = emu.counters()
    assert snapshot["paths"][f"GET {SPS}/{connect}/appRoleAssignments"] == 1
    control = http.get(f"{emu.url}/_emulator/counters", params={"path": "appRoleAssign"}).json()
    assert control["matching"] == 3
