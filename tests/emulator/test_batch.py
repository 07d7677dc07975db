"""JSON batching: at most 20 requests, a status per request, dependsOn, inner faults."""

from tests.emulator.helpers import CONTOSO, FABRIKAM, GRAPH_APP_ID, bearer, get_token


def batch(emu, http, headers, requests_):
    return http.post(f"{emu.url}/v1.0/$batch", json={"requests": requests_}, headers=headers)


def test_each_request_gets_its_own_id_status_headers_and_body(emu, http, contoso):
    response = batch(
        emu,
        http,
        contoso,
        [
            {"id": "1", "method": "GET", "url": "/organization"},
            {
                "id": "2",
                "method": "GET",
                "url": f"/servicePrincipals(appId='{GRAPH_APP_ID}')?$select=id,appId",
            },
            {
                "id": "3",
                "method": "GET",
                "url": "/servicePrincipals/00000000-0000-4000-8000-000000000000",
            },
            {"id": "4", "method": "GET", "url": "servicePrincipals?$top=2&$select=displayName"},
        ],
    )

    assert response.status_code == 200
    responses = {r["id"]: r for r in response.json()["responses"]}
    assert {k: r["status"] for k, r in responses.items()} == {
        "1": 200,
        "2": 200,
        "3": 404,
        "4": 200,
    }
    assert responses["1"]["body"]["value"][0]["id"] == CONTOSO
    assert set(responses["2"]["body"]) == {"@odata.context", "id", "appId"}
    assert responses["3"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    assert responses["4"]["headers"]["Content-Type"].startswith("application/json")
    assert len(responses["4"]["body"]["value"]) == 2
    assert "@odata.nextLink" in responses["4"]["body"]


def test_more_than_20_requests_is_a_bad_request(emu, http, contoso):
    requests_ = [{"id": str(n), "method": "GET", "url": "/organization"} for n in range(21)]

    response = batch(emu, http, contoso, requests_)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"
    assert batch(emu, http, contoso, requests_[:20]).status_code == 200


def test_a_batch_with_a_repeated_id_is_a_bad_request(emu, http, contoso):
    twice = [{"id": "a", "method": "GET", "url": "/organization"}] * 2
    assert batch(emu, http, contoso, twice).status_code == 400


def test_depends_on_runs_in_order_and_a_failed_dependency_is_424(emu, http, contoso):
    graph = emu.state(CONTOSO)["servicePrincipals"][0]["id"]
    assignment = emu.state(CONTOSO)["appRoleAssignments"][0]["id"]
    delete = {
        "method": "DELETE",
        "url": f"/servicePrincipals/{graph}/appRoleAssignedTo/{assignment}",
    }
    response = batch(
        emu,
        http,
        contoso,
        [
            {"id": "1", **delete},
            {"id": "2", "dependsOn": ["1"], **delete},  # already gone: 404
            {"id": "3", "dependsOn": ["2"], "method": "GET", "url": "/organization"},
        ],
    )

    assert [r["status"] for r in response.json()["responses"]] == [204, 404, 424]
    assert "body" not in response.json()["responses"][0]


def test_depends_on_must_name_an_earlier_request(emu, http, contoso):
    response = batch(
        emu,
        http,
        contoso,
        [{"id": "1", "dependsOn": ["2"], "method": "GET", "url": "/organization"}],
    )
    assert response.status_code == 400


def test_each_inner_request_can_be_throttled_on_its_own(emu, http, contoso):
    emu.reset_counters()
    emu.set_faults([{"path": "/v1.0/organization", "status": 429, "every": 2, "retry_after": 3}])
    requests_ = [{"id": str(n), "method": "GET", "url": "/organization"} for n in range(4)]

    responses = batch(emu, http, contoso, requests_).json()["responses"]

    assert [r["status"] for r in responses] == [200, 429, 200, 429]
    assert responses[1]["headers"]["Retry-After"] == "3"
    assert responses[1]["body"]["error"]["code"] == "TooManyRequests"
    assert emu.counters()["requests"] == {"POST /v1.0/$batch": 1, "GET /v1.0/organization": 4}


def test_a_batch_without_a_token_is_401(emu, http):
    response = batch(emu, http, {}, [{"id": "1", "method": "GET", "url": "/organization"}])
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_inner_requests_are_authorized_with_the_batchs_token(emu, http):
    headers = bearer(get_token(emu, http, tenant=FABRIKAM))  # read-only in Fabrikam
    grant = emu.state(FABRIKAM)["oauth2PermissionGrants"][0]["id"]
    responses = batch(
        emu,
        http,
        headers,
        [
            {"id": "1", "method": "GET", "url": "/oauth2PermissionGrants"},
            {"id": "2", "method": "DELETE", "url": f"/oauth2PermissionGrants/{grant}"},
        ],
    ).json()["responses"]
    assert [r["status"] for r in responses] == [200, 403]
