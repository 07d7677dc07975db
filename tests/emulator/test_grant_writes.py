"""Granting one permission as Graph documents it, which the portal's grant of a missing
permission relies on: POST appRoleAssignedTo (201; 400 when it exists; 404 for a principal
the directory does not have), POST oauth2PermissionGrants (201), both refused (403)
without the write permissions, and each write appending Entra's directory audit event."""

from tests.emulator.helpers import (
    CONNECT_APP_ID,
    CONTOSO,
    FABRIKAM,
    GRAPH_APP_ID,
    MAIL_READ,
    assert_graph_error,
    bearer,
    get_token,
)

UNKNOWN = "11111111-2222-4333-8444-555555555555"


def assignment_url(emu, graph: str) -> str:
    return f"{emu.url}/v1.0/servicePrincipals/{graph}/appRoleAssignedTo"


def test_an_assignment_to_a_principal_the_directory_lacks_is_a_404(emu, http, contoso):
    graph = emu.sp_id(CONTOSO, GRAPH_APP_ID)
    body = {"principalId": UNKNOWN, "resourceId": graph, "appRoleId": MAIL_READ}

    answer = http.post(assignment_url(emu, graph), headers=contoso, json=body)

    error = assert_graph_error(answer, 404, "Request_ResourceNotFound")
    assert UNKNOWN in error["message"]


def test_an_assignment_answers_201_with_the_new_object_and_logs_it(emu, http, contoso):
    graph = emu.sp_id(CONTOSO, GRAPH_APP_ID)
    client = emu.sp_id(CONTOSO, CONNECT_APP_ID)
    body = {"principalId": client, "resourceId": graph, "appRoleId": MAIL_READ}

    answer = http.post(assignment_url(emu, graph), headers=contoso, json=body)

    assert answer.status_code == 201
    created = answer.json()
    assert {k: created[k] for k in body} == body and created["id"]
    audits = http.get(f"{emu.url}/v1.0/auditLogs/directoryAudits", headers=contoso).json()
    newest = audits["value"][0]
    assert newest["activityDisplayName"] == "Add app role assignment to service principal"
    again = http.post(assignment_url(emu, graph), headers=contoso, json=body)
    assert assert_graph_error(again, 400, "Request_BadRequest")["message"] == (
        "Permission being assigned already exists on the object"
    )


def test_a_delegated_grant_for_all_users_answers_201_and_logs_it(emu, http, contoso):
    graph = emu.sp_id(CONTOSO, GRAPH_APP_ID)
    client = emu.sp_id(CONTOSO, CONNECT_APP_ID)
    body = {
        "clientId": client,
        "consentType": "AllPrincipals",
        "resourceId": graph,
        "scope": "User.Read",
    }

    answer = http.post(f"{emu.url}/v1.0/oauth2PermissionGrants", headers=contoso, json=body)

    assert answer.status_code == 201
    assert {k: answer.json()[k] for k in body} == body
    audits = http.get(f"{emu.url}/v1.0/auditLogs/directoryAudits", headers=contoso).json()
    assert audits["value"][0]["activityDisplayName"] == "Add delegated permission grant"


def test_a_grant_for_a_client_the_directory_lacks_is_a_404(emu, http, contoso):
    body = {
        "clientId": UNKNOWN,
        "consentType": "AllPrincipals",
        "resourceId": emu.sp_id(CONTOSO, GRAPH_APP_ID),
        "scope": "User.Read",
    }
    answer = http.post(f"{emu.url}/v1.0/oauth2PermissionGrants", headers=contoso, json=body)

    assert_graph_error(answer, 404, "Request_ResourceNotFound")


def test_without_the_write_permissions_both_grants_are_refused(emu, http):
    # Fabrikam granted the portal its read permissions only.
    fabrikam = bearer(get_token(emu, http, tenant=FABRIKAM))
    graph = emu.sp_id(FABRIKAM, GRAPH_APP_ID)
    client = emu.sp_id(FABRIKAM, CONNECT_APP_ID)
    assignment = {"principalId": client, "resourceId": graph, "appRoleId": MAIL_READ}
    grant = {
        "clientId": client,
        "consentType": "AllPrincipals",
        "resourceId": graph,
        "scope": "User.Read",
    }

    refused = [
        http.post(assignment_url(emu, graph), headers=fabrikam, json=assignment),
        http.post(f"{emu.url}/v1.0/oauth2PermissionGrants", headers=fabrikam, json=grant),
    ]

    for answer in refused:
        assert_graph_error(answer, 403, "Authorization_RequestDenied")
