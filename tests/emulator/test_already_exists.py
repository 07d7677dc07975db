"""Graph's answers to creating what exists already, which a restore takes as success:
400 "Permission being assigned already exists on the object" on appRoleAssignedTo and
409 Request_MultipleObjectsWithSameKeyValue on oauth2PermissionGrants. They come from
the directory itself, so a replica that lags behind changes neither."""

from tests.emulator.helpers import (
    ASKCODY_APP_ID,
    CONNECT_APP_ID,
    CONTOSO,
    GRAPH_APP_ID,
    MAIL_READ,
    assert_graph_error,
)


def test_assigning_a_role_twice_is_a_400_that_says_it_already_exists(emu, http, contoso):
    emu.set_behaviour(replication_lag={"collections": 5, "by_id": 5})
    graph = emu.sp_id(CONTOSO, GRAPH_APP_ID)
    client = emu.sp_id(CONTOSO, CONNECT_APP_ID)
    url = f"{emu.url}/v1.0/servicePrincipals/{graph}/appRoleAssignedTo"
    body = {"principalId": client, "resourceId": graph, "appRoleId": MAIL_READ}

    assert http.post(url, headers=contoso, json=body).status_code == 201
    # Reads do not show the new assignment yet; the directory knows it all the same.
    again = http.post(url, headers=contoso, json=body)

    error = assert_graph_error(again, 400, "Request_BadRequest")
    assert error["message"] == "Permission being assigned already exists on the object"


def test_a_deleted_assignment_can_be_made_again_while_reads_still_show_it(emu, http, contoso):
    graph = emu.sp_id(CONTOSO, GRAPH_APP_ID)
    client = emu.sp_id(CONTOSO, CONNECT_APP_ID)
    url = f"{emu.url}/v1.0/servicePrincipals/{graph}/appRoleAssignedTo"
    body = {"principalId": client, "resourceId": graph, "appRoleId": MAIL_READ}
    first = http.post(url, headers=contoso, json=body).json()["id"]
    emu.set_behaviour(replication_lag={"by_id": 5})

    assert http.delete(f"{url}/{first}", headers=contoso).status_code == 204
    assert http.get(f"{url}/{first}", headers=contoso).status_code == 200  # a lagging read
    made = http.post(url, headers=contoso, json=body)

    assert made.status_code == 201 and made.json()["id"] != first


def test_granting_a_consent_that_exists_is_a_409_for_each_consent_type(emu, http, contoso):
    askcody = emu.sp_id(CONTOSO, ASKCODY_APP_ID)
    grants = [g for g in emu.state(CONTOSO)["oauth2PermissionGrants"] if g["clientId"] == askcody]
    admin = next(g for g in grants if g["consentType"] == "AllPrincipals")
    user = next(g for g in grants if g["consentType"] == "Principal")
    url = f"{emu.url}/v1.0/oauth2PermissionGrants"

    for grant in (admin, user):
        body = {
            "clientId": askcody,
            "consentType": grant["consentType"],
            "resourceId": grant["resourceId"],
            "scope": "User.Read",
        }
        if grant["principalId"]:
            body["principalId"] = grant["principalId"]
        answer = http.post(url, headers=contoso, json=body)
        assert_graph_error(answer, 409, "Request_MultipleObjectsWithSameKeyValue")
