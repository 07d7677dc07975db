"""Every fault kind, from the Python API, the control endpoint and a scenario."""

import time

import pytest
import requests

from emulator import run_emulator
from tests.emulator.helpers import CONTOSO, bearer, get_token, page_all, session_for

SPS = "/v1.0/servicePrincipals"


def statuses(http, url, headers, count):
    return [http.get(url, headers=headers).status_code for _ in range(count)]


def test_every_nth_request_gets_429_with_retry_after(emu, http, contoso):
    emu.set_faults(
        [{"path": "^/v1.0/servicePrincipals$", "status": 429, "every": 3, "retry_after": 7}]
    )

    responses = [http.get(f"{emu.url}{SPS}", headers=contoso) for _ in range(6)]

    assert [r.status_code for r in responses] == [200, 200, 429, 200, 200, 429]
    throttled = responses[2]
    assert throttled.headers["Retry-After"] == "7"
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    # Other paths are not affected.
    assert http.get(f"{emu.url}/v1.0/organization", headers=contoso).status_code == 200


def test_a_rate_of_faults_is_random_but_repeatable_with_its_seed(emu, http, contoso):
    rule = {"path": SPS, "status": 503, "probability": 0.5, "seed": 42}
    emu.set_faults([rule])
    first = statuses(http, f"{emu.url}{SPS}", contoso, 20)
    emu.set_faults([rule])
    second = statuses(http, f"{emu.url}{SPS}", contoso, 20)

    assert first == second
    assert set(first) == {200, 503}


def test_503_is_served_in_graphs_error_envelope(emu, http, contoso):
    emu.set_faults([{"path": SPS, "status": 503, "retry_after": 1, "times": 1}])

    response = http.get(f"{emu.url}{SPS}", headers=contoso)

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error"]["code"] == "serviceNotAvailable"
    assert http.get(f"{emu.url}{SPS}", headers=contoso).status_code == 200  # times: 1


def test_a_slow_response_takes_at_least_the_delay(emu, http, contoso):
    emu.set_faults([{"path": "/v1.0/organization", "delay_ms": 300}])

    started = time.perf_counter()
    response = http.get(f"{emu.url}/v1.0/organization", headers=contoso)

    assert response.status_code == 200
    assert time.perf_counter() - started >= 0.3


def test_a_dropped_connection_gives_the_client_no_response(emu, http, contoso):
    emu.set_faults([{"path": SPS, "drop": True, "times": 1}])

    with pytest.raises(requests.exceptions.ConnectionError):
        http.get(f"{emu.url}{SPS}", headers=contoso)
    assert http.get(f"{emu.url}{SPS}", headers=contoso).status_code == 200


def test_a_connection_can_drop_in_the_middle_of_paging(emu, http, contoso):
    # The third page request of the grants collection is dropped, once.
    emu.set_faults([{"path": "oauth2PermissionGrants", "drop": True, "after": 2, "times": 1}])
    url = f"{emu.url}/v1.0/oauth2PermissionGrants?$top=2"

    first = http.get(url, headers=contoso).json()
    second = http.get(first["@odata.nextLink"], headers=contoso).json()
    with pytest.raises(requests.exceptions.ConnectionError):
        http.get(second["@odata.nextLink"], headers=contoso)
    retried = http.get(second["@odata.nextLink"], headers=contoso)

    assert retried.status_code == 200
    assert emu.fault_rules()[0]["fired"] == 1


def test_expired_tokens_get_401_until_the_client_gets_a_new_one(emu, http, contoso):
    assert http.get(f"{emu.url}{SPS}", headers=contoso).status_code == 200

    emu.expire_tokens()
    response = http.get(f"{emu.url}{SPS}", headers=contoso)

    assert response.status_code == 401
    assert response.json()["error"] == {
        **response.json()["error"],
        "code": "InvalidAuthenticationToken",
        "message": "Access token has expired or is not yet valid.",
    }
    fresh = bearer(get_token(emu, http))
    assert http.get(f"{emu.url}{SPS}", headers=fresh).status_code == 200


def test_a_rule_can_expire_tokens_in_the_middle_of_a_sync(emu, http, contoso):
    emu.set_faults([{"path": "/v1.0/organization", "expire_tokens": True, "times": 1}])

    assert http.get(f"{emu.url}/v1.0/organization", headers=contoso).status_code == 401
    assert http.get(f"{emu.url}{SPS}", headers=contoso).status_code == 401


def test_counters_count_every_call_per_path_template_faulted_or_not(emu, http, contoso):
    emu.reset_counters()
    emu.set_faults([{"path": SPS, "status": 429, "every": 2}])
    graph = emu.state(CONTOSO)["servicePrincipals"][0]["id"]

    for _ in range(4):
        http.get(f"{emu.url}{SPS}", headers=contoso)
    http.get(f"{emu.url}{SPS}/{graph}/appRoleAssignedTo", headers=contoso)
    http.get(f"{emu.url}{SPS}/{graph}", headers=contoso)

    counters = emu.counters()
    assert counters["requests"] == {
        "GET /v1.0/servicePrincipals": 4,
        "GET /v1.0/servicePrincipals/{id}/appRoleAssignedTo": 1,
        "GET /v1.0/servicePrincipals/{id}": 1,
    }
    assert counters["total"] == 6


def test_faults_and_counters_are_steered_over_the_control_endpoint(emu, http, contoso):
    control = f"{emu.url}/_emulator"
    rules = {"rules": [{"path": SPS, "status": 429, "retry_after": 2}]}

    assert http.put(f"{control}/faults", json=rules).status_code == 200
    assert http.get(f"{emu.url}{SPS}", headers=contoso).status_code == 429
    listed = http.get(f"{control}/faults").json()["rules"]
    assert listed[0]["fired"] == 1 and listed[0]["status"] == 429
    counters = http.get(f"{control}/counters").json()
    assert counters["requests"]["GET /v1.0/servicePrincipals"] == 1

    assert http.delete(f"{control}/faults").status_code == 204
    assert http.get(f"{emu.url}{SPS}", headers=contoso).status_code == 200
    assert http.delete(f"{control}/counters").status_code == 204
    assert http.get(f"{control}/counters").json() == {"total": 0, "requests": {}, "paths": {}}

    assert http.post(f"{control}/expire-tokens").status_code == 204
    assert http.get(f"{emu.url}{SPS}", headers=contoso).status_code == 401


def test_a_bad_fault_rule_is_refused_with_the_key_named(emu, http):
    response = http.put(
        f"{emu.url}/_emulator/faults", json={"rules": [{"path": SPS, "status": 429, "evry": 2}]}
    )
    assert response.status_code == 400
    assert "evry" in response.json()["error"]
    missing_effect = http.post(f"{emu.url}/_emulator/faults", json={"rules": [{"path": SPS}]})
    assert missing_effect.status_code == 400


def test_faults_can_come_from_the_scenario(data_dir):
    scenario = {
        "scenario": 1,
        "generate": {
            "service_principals": 10,
            "app_role_assignments": 4,
            "delegated_grants": 1,
            "users": 1,
        },
        "faults": [
            {"path": "/v1.0/servicePrincipals", "status": 429, "every": 2, "retry_after": 1}
        ],
    }
    with run_emulator(scenario, data_dir=data_dir) as emulator, session_for(emulator) as http:
        tenant = next(iter(emulator.app.state.tenants))
        headers = bearer(get_token(emulator, http, tenant=tenant))
        assert statuses(http, f"{emulator.url}{SPS}", headers, 4) == [200, 429, 200, 429]

        emulator.clear_faults()
        emulator.reset()  # back to the scenario, faults included
        assert statuses(http, f"{emulator.url}{SPS}", headers, 2) == [200, 429]


def test_paging_survives_throttling_when_the_client_honours_retry_after(emu, http, contoso):
    emu.set_faults(
        [{"path": "oauth2PermissionGrants", "status": 429, "every": 2, "retry_after": 0}]
    )
    url = f"{emu.url}/v1.0/oauth2PermissionGrants?$top=1"
    seen = []
    while url:
        response = http.get(url, headers=contoso)
        if response.status_code == 429:
            time.sleep(int(response.headers["Retry-After"]))
            continue
        body = response.json()
        seen += [g["id"] for g in body["value"]]
        url = body.get("@odata.nextLink")

    emu.clear_faults()
    unthrottled, _ = page_all(http, f"{emu.url}/v1.0/oauth2PermissionGrants", contoso, None)
    assert sorted(seen) == sorted(g["id"] for g in unthrottled)
