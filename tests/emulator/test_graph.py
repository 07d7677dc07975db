"""Graph v1.0 responses against the shapes in Microsoft's Graph documentation."""

import re

import pytest

from tests.emulator.helpers import CONTOSO, GRAPH_APP_ID, PORTAL_APP_ID, bearer, get_token

# Field names as Microsoft documents them for each resource type.
APP_ROLE_ASSIGNMENT = {
    "id",
    "deletedDateTime",
    "appRoleId",
    "createdDateTime",
    "principalDisplayName",
    "principalId",
    "principalType",
    "resourceDisplayName",
    "resourceId",
}
OAUTH2_PERMISSION_GRANT = {"id", "clientId", "consentType", "principalId", "resourceId", "scope"}
SERVICE_PRINCIPAL_SAMPLE = {
    "id",
    "deletedDateTime",
    "accountEnabled",
    "appDisplayName",
    "appId",
    "appOwnerOrganizationId",
    "appRoleAssignmentRequired",
    "displayName",
    "homepage",
    "logoutUrl",
    "replyUrls",
    "servicePrincipalNames",
    "tags",
    "addIns",
    "appRoles",
    "info",
    "keyCredentials",
    "oauth2PermissionScopes",
    "passwordCredentials",
    "servicePrincipalType",
}
APP_ROLE = {
    "allowedMemberTypes",
    "description",
    "displayName",
    "id",
    "isEnabled",
    "origin",
    "value",
}
PERMISSION_SCOPE = {
    "adminConsentDescription",
    "adminConsentDisplayName",
    "id",
    "isEnabled",
    "type",
    "userConsentDescription",
    "userConsentDisplayName",
    "value",
}
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def graph_sp_id(emu):
    return emu.state(CONTOSO)["servicePrincipals"][0]["id"]


def sp_id(emu, app_id, tenant=CONTOSO):
    return next(sp["id"] for sp in emu.state(tenant)["servicePrincipals"] if sp["appId"] == app_id)


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}


def test_service_principal_list_has_the_documented_envelope_and_fields(emu, http, contoso):
    response = http.get(f"{emu.url}/v1.0/servicePrincipals", headers=contoso)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["@odata.context"] == f"{emu.url}/v1.0/$metadata#servicePrincipals"
    assert "@odata.nextLink" not in body
    assert len(body["value"]) == 8
    for sp in body["value"]:
        assert SERVICE_PRINCIPAL_SAMPLE <= sp.keys()
        assert GUID.fullmatch(sp["id"])


def test_a_service_principal_is_found_by_id_and_by_app_id_with_its_catalog(emu, http, contoso):
    by_app = http.get(
        f"{emu.url}/v1.0/servicePrincipals(appId='{GRAPH_APP_ID}')",
        params={"$select": "id,appId,displayName,appRoles,oauth2PermissionScopes"},
        headers=contoso,
    ).json()
    by_id = http.get(f"{emu.url}/v1.0/servicePrincipals/{by_app['id']}", headers=contoso).json()

    assert by_app["@odata.context"] == (
        f"{emu.url}/v1.0/$metadata#servicePrincipals"
        "(id,appId,displayName,appRoles,oauth2PermissionScopes)/$entity"
    )
    assert set(by_app) == {
        "@odata.context",
        "id",
        "appId",
        "displayName",
        "appRoles",
        "oauth2PermissionScopes",
    }
    assert by_id["@odata.context"] == f"{emu.url}/v1.0/$metadata#servicePrincipals/$entity"
    assert by_id["appRoles"] == by_app["appRoles"]
    roles = {role["value"]: role for role in by_app["appRoles"]}
    assert roles["Device.Read.All"]["id"] == "7438b122-aefc-4978-80ed-43db9fcc7715"
    assert all(set(role) == APP_ROLE for role in by_app["appRoles"])
    scopes = {scope["value"]: scope for scope in by_app["oauth2PermissionScopes"]}
    assert scopes["User.Read"]["type"] == "User"
    assert scopes["User.Read.All"]["type"] == "Admin"
    assert all(set(scope) == PERMISSION_SCOPE for scope in by_app["oauth2PermissionScopes"])


def test_an_unknown_service_principal_is_404_in_the_error_envelope(emu, http, contoso):
    response = http.get(
        f"{emu.url}/v1.0/servicePrincipals(appId='11111111-2222-4333-8444-555555555555')",
        headers=contoso,
    )
    assert_error(response, 404, "Request_ResourceNotFound")


def test_app_role_assigned_to_lists_every_client_of_a_resource(emu, http, contoso):
    graph_id = graph_sp_id(emu)
    body = http.get(
        f"{emu.url}/v1.0/servicePrincipals/{graph_id}/appRoleAssignedTo", headers=contoso
    ).json()

    assert body["@odata.context"] == (
        f"{emu.url}/v1.0/$metadata#servicePrincipals('{graph_id}')/appRoleAssignedTo"
    )
    assert len(body["value"]) == 26  # Contoso's application grants on Graph
    for assignment in body["value"]:
        assert set(assignment) == APP_ROLE_ASSIGNMENT
        assert assignment["resourceId"] == graph_id
        assert assignment["resourceDisplayName"] == "Microsoft Graph"
        assert assignment["principalType"] == "ServicePrincipal"
        assert assignment["createdDateTime"].endswith("Z")
        assert not GUID.fullmatch(assignment["id"])  # opaque, not a GUID
    legacy = [a for a in body["value"] if a["principalDisplayName"] == "Legacy Reporting Tool"]
    assert [a["appRoleId"] for a in legacy] == ["19dbc75e-c2e2-444c-a770-ec69d8559fc7"]


def test_app_role_assignments_lists_what_one_client_holds(emu, http, contoso):
    lookout = sp_id(emu, "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")
    body = http.get(
        f"{emu.url}/v1.0/servicePrincipals/{lookout}/appRoleAssignments", headers=contoso
    ).json()

    assert body["@odata.context"].endswith(f"servicePrincipals('{lookout}')/appRoleAssignments")
    assert {a["principalId"] for a in body["value"]} == {lookout}
    assert {a["resourceDisplayName"] for a in body["value"]} == {
        "Microsoft Graph",
        "Microsoft Intune API",
    }
    assert len(body["value"]) == 6


def test_oauth2_permission_grants_keep_scope_strings_verbatim(emu, http, contoso):
    body = http.get(f"{emu.url}/v1.0/oauth2PermissionGrants", headers=contoso).json()

    assert body["@odata.context"] == f"{emu.url}/v1.0/$metadata#oauth2PermissionGrants"
    assert all(set(grant) == OAUTH2_PERMISSION_GRANT for grant in body["value"])
    consents = {g["consentType"] for g in body["value"]}
    assert consents == {"AllPrincipals", "Principal"}
    admin = [g for g in body["value"] if g["consentType"] == "AllPrincipals"]
    assert all(g["principalId"] is None for g in admin)
    per_user = [g for g in body["value"] if g["consentType"] == "Principal"]
    assert len(per_user) == 3 and all(GUID.fullmatch(g["principalId"]) for g in per_user)
    padded = [g["scope"] for g in admin if g["scope"] != g["scope"].strip()]
    assert padded == [
        " openid profile offline_access User.Read User.ReadBasic.All User.Read.All Group.Read.All "
    ]


def test_select_returns_only_the_named_properties_and_says_so_in_the_context(emu, http, contoso):
    body = http.get(
        f"{emu.url}/v1.0/servicePrincipals",
        params={"$select": "appId,displayName"},
        headers=contoso,
    ).json()

    assert body["@odata.context"].endswith("#servicePrincipals(appId,displayName)")
    assert all(set(sp) == {"appId", "displayName"} for sp in body["value"])


def test_select_of_an_unknown_property_is_a_bad_request(emu, http, contoso):
    response = http.get(
        f"{emu.url}/v1.0/servicePrincipals", params={"$select": "id,colour"}, headers=contoso
    )
    assert_error(response, 400, "BadRequest")
    assert "colour" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"$filter": f"appId eq '{PORTAL_APP_ID}'"}, ["Permission Portal"]),
        ({"$filter": f"appId eq '{PORTAL_APP_ID.upper()}'"}, ["Permission Portal"]),
        (
            {"$filter": "startswith(displayName, 'microsoft')"},
            ["Microsoft Graph", "Microsoft Intune API"],
        ),
        (
            {
                "$filter": "appId in ('c161e42e-d4df-4a3d-9b42-e7a3c31f59d4', "
                "'8708fc71-9f71-4ad5-8445-a0746692feeb')"
            },
            ["Microsoft Intune API", "247connect"],
        ),
        ({"$filter": "displayName eq 'AskCody' and accountEnabled eq true"}, ["AskCody"]),
        ({"$filter": "displayName eq 'Nobody'"}, []),
    ],
)
def test_filter_on_service_principals_selects_the_matching_ones(
    emu, http, contoso, params, expected
):
    body = http.get(f"{emu.url}/v1.0/servicePrincipals", params=params, headers=contoso).json()
    assert [sp["displayName"] for sp in body["value"]] == expected


def test_filter_on_grants_by_client_and_resource(emu, http, contoso):
    askcody = sp_id(emu, "6f4e2a1b-8c3d-4e5f-a6b7-c8d9e0f1a2b3")
    graph = graph_sp_id(emu)
    body = http.get(
        f"{emu.url}/v1.0/oauth2PermissionGrants",
        params={"$filter": f"clientId eq '{askcody}' and resourceId eq '{graph}'"},
        headers=contoso,
    ).json()
    assert len(body["value"]) == 4
    assert {g["clientId"] for g in body["value"]} == {askcody}

    admin_only = http.get(
        f"{emu.url}/v1.0/oauth2PermissionGrants",
        params={"$filter": f"clientId eq '{askcody}' and consentType eq 'AllPrincipals'"},
        headers=contoso,
    ).json()
    assert len(admin_only["value"]) == 1


def test_filter_on_an_unsupported_property_is_refused(emu, http, contoso):
    response = http.get(
        f"{emu.url}/v1.0/oauth2PermissionGrants",
        params={"$filter": "scope eq 'User.Read'"},
        headers=contoso,
    )
    assert_error(response, 400, "Request_UnsupportedQuery")


def test_a_malformed_filter_is_a_bad_request(emu, http, contoso):
    response = http.get(
        f"{emu.url}/v1.0/servicePrincipals", params={"$filter": "appId eq"}, headers=contoso
    )
    assert_error(response, 400, "BadRequest")


@pytest.mark.parametrize("top", ["0", "1000", "-5"])
def test_top_outside_1_to_999_is_refused(emu, http, contoso, top):
    response = http.get(f"{emu.url}/v1.0/servicePrincipals", params={"$top": top}, headers=contoso)
    assert_error(response, 400, "Request_UnsupportedQuery")
    assert "Must be between 1 and 999 inclusive" in response.json()["error"]["message"]


def test_top_999_is_accepted(emu, http, contoso):
    response = http.get(
        f"{emu.url}/v1.0/servicePrincipals", params={"$top": "999"}, headers=contoso
    )
    assert response.status_code == 200


def test_next_link_keeps_select_and_filter_and_an_opaque_skip_token(emu, http, contoso):
    first = http.get(
        f"{emu.url}/v1.0/oauth2PermissionGrants",
        params={"$select": "id,scope", "$top": "2"},
        headers=contoso,
    ).json()
    link = first["@odata.nextLink"]

    assert link.startswith(f"{emu.url}/v1.0/oauth2PermissionGrants?")
    assert "$select=id,scope" in link and "$top=2" in link
    token = re.search(r"\$skiptoken=([^&]+)", link).group(1)
    assert not token.isdigit()
    second = http.get(link, headers=contoso).json()
    assert set(second["value"][0]) == {"id", "scope"}
    assert not {g["id"] for g in first["value"]} & {g["id"] for g in second["value"]}


def test_a_skip_token_from_another_query_is_refused(emu, http, contoso):
    first = http.get(
        f"{emu.url}/v1.0/oauth2PermissionGrants", params={"$top": "1"}, headers=contoso
    ).json()
    token = re.search(r"\$skiptoken=([^&]+)", first["@odata.nextLink"]).group(1)

    response = http.get(
        f"{emu.url}/v1.0/servicePrincipals", params={"$skiptoken": token}, headers=contoso
    )
    assert_error(response, 400, "Directory_ExpiredPageToken")
    garbage = http.get(
        f"{emu.url}/v1.0/servicePrincipals", params={"$skiptoken": "nonsense"}, headers=contoso
    )
    assert_error(garbage, 400, "Directory_ExpiredPageToken")


def test_unsupported_query_options_are_refused_rather_than_ignored(emu, http, contoso):
    response = http.get(
        f"{emu.url}/v1.0/servicePrincipals", params={"$orderby": "displayName"}, headers=contoso
    )
    assert_error(response, 400, "Request_UnsupportedQuery")


def test_an_app_role_assignment_is_created_read_and_deleted(emu, http, contoso):
    graph = graph_sp_id(emu)
    connect = sp_id(emu, "8708fc71-9f71-4ad5-8445-a0746692feeb")
    user_read_all = "df021288-bdef-4463-88db-98f22de89214"
    url = f"{emu.url}/v1.0/servicePrincipals/{graph}/appRoleAssignedTo"

    created = http.post(
        url,
        json={"principalId": connect, "resourceId": graph, "appRoleId": user_read_all},
        headers=contoso,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["@odata.context"].endswith(
        f"servicePrincipals('{graph}')/appRoleAssignedTo/$entity"
    )
    assert APP_ROLE_ASSIGNMENT <= body.keys()
    assert body["principalDisplayName"] == "247connect"
    assert http.get(f"{url}/{body['id']}", headers=contoso).json()["appRoleId"] == user_read_all

    again = http.post(
        url,
        json={"principalId": connect, "resourceId": graph, "appRoleId": user_read_all},
        headers=contoso,
    )
    assert again.status_code == 400

    deleted = http.delete(f"{url}/{body['id']}", headers=contoso)
    assert deleted.status_code == 204 and deleted.content == b""
    assert_error(
        http.delete(f"{url}/{body['id']}", headers=contoso), 404, "Request_ResourceNotFound"
    )


def test_an_assignment_of_an_unknown_role_is_refused(emu, http, contoso):
    graph = graph_sp_id(emu)
    connect = sp_id(emu, "8708fc71-9f71-4ad5-8445-a0746692feeb")
    response = http.post(
        f"{emu.url}/v1.0/servicePrincipals/{graph}/appRoleAssignedTo",
        json={
            "principalId": connect,
            "resourceId": graph,
            "appRoleId": "11111111-2222-4333-8444-555555555555",
        },
        headers=contoso,
    )
    assert_error(response, 400, "Request_BadRequest")


def test_a_grant_is_created_narrowed_by_patch_and_deleted(emu, http, contoso):
    graph = graph_sp_id(emu)
    legacy = sp_id(emu, "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e")
    created = http.post(
        f"{emu.url}/v1.0/oauth2PermissionGrants",
        json={
            "clientId": legacy,
            "consentType": "AllPrincipals",
            "resourceId": graph,
            "scope": "User.Read Group.Read.All",
        },
        headers=contoso,
    )
    assert created.status_code == 201, created.text
    grant = created.json()
    assert grant["@odata.context"].endswith("#oauth2PermissionGrants/$entity")
    assert OAUTH2_PERMISSION_GRANT <= grant.keys()
    url = f"{emu.url}/v1.0/oauth2PermissionGrants/{grant['id']}"

    patched = http.patch(url, json={"scope": " User.Read "}, headers=contoso)
    assert patched.status_code == 204
    assert http.get(url, headers=contoso).json()["scope"] == " User.Read "

    assert http.delete(url, headers=contoso).status_code == 204
    assert_error(http.get(url, headers=contoso), 404, "Request_ResourceNotFound")


def test_a_grant_patch_may_change_only_the_scope(emu, http, contoso):
    grant = http.get(f"{emu.url}/v1.0/oauth2PermissionGrants", headers=contoso).json()["value"][0]
    response = http.patch(
        f"{emu.url}/v1.0/oauth2PermissionGrants/{grant['id']}",
        json={"consentType": "Principal"},
        headers=contoso,
    )
    assert_error(response, 400, "Request_BadRequest")


def test_organization_describes_the_callers_tenant(emu, http, contoso):
    body = http.get(f"{emu.url}/v1.0/organization", headers=contoso).json()

    assert body["@odata.context"] == f"{emu.url}/v1.0/$metadata#organization"
    (organization,) = body["value"]
    assert organization["id"] == CONTOSO
    assert organization["displayName"] == "Contoso"
    assert organization["verifiedDomains"][0]["name"] == "contoso.onmicrosoft.com"


def test_me_with_an_app_only_token_is_refused_like_graph_does(emu, http, contoso):
    response = http.get(f"{emu.url}/v1.0/me", headers=contoso)
    assert_error(response, 400, "BadRequest")


def test_an_unknown_segment_and_a_wrong_method_are_reported(emu, http, contoso):
    assert_error(http.get(f"{emu.url}/v1.0/gadgets", headers=contoso), 400, "BadRequest")
    assert_error(
        http.put(f"{emu.url}/v1.0/servicePrincipals", headers=contoso), 405, "Request_BadRequest"
    )


def test_paths_are_case_insensitive_like_graphs(emu, http, contoso):
    response = http.get(f"{emu.url}/v1.0/serviceprincipals", headers=contoso)
    assert response.status_code == 200
    assert len(response.json()["value"]) == 8


def test_users_are_listed_with_graphs_default_properties(emu, http):
    headers = bearer(get_token(emu, http))
    body = http.get(f"{emu.url}/v1.0/users", headers=headers).json()
    assert body["@odata.context"].endswith("#users")
    alice = next(u for u in body["value"] if u["userPrincipalName"].startswith("alice@"))
    assert set(alice) == {
        "businessPhones",
        "displayName",
        "givenName",
        "jobTitle",
        "mail",
        "mobilePhone",
        "officeLocation",
        "preferredLanguage",
        "surname",
        "userPrincipalName",
        "id",
    }


def test_get_by_ids_finds_users_by_id_and_leaves_out_unknown_ones(emu, http, contoso):
    alice = next(
        u for u in emu.state(CONTOSO)["users"] if u["userPrincipalName"].startswith("alice@")
    )
    unknown = "00000000-0000-4000-8000-000000000000"

    response = http.post(
        f"{emu.url}/v1.0/directoryObjects/getByIds",
        json={"ids": [alice["id"].upper(), unknown], "types": ["user"]},
        headers=contoso,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["@odata.context"] == f"{emu.url}/v1.0/$metadata#directoryObjects"
    [found] = body["value"]
    assert found["@odata.type"] == "#microsoft.graph.user"
    assert (found["id"], found["userPrincipalName"]) == (alice["id"], alice["userPrincipalName"])
    too_many = http.post(
        f"{emu.url}/v1.0/directoryObjects/getByIds",
        json={"ids": [unknown] * 1001},
        headers=contoso,
    )
    assert_error(too_many, 400, "Request_BadRequest")
