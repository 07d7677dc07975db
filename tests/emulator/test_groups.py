"""Groups, their members through nested groups, and app roles that groups hold: what the
portal reads to know who holds its roles in a tenant (appRoleAssignedTo on its own
service principal, then each group's transitiveMembers)."""

from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from emulator import run_emulator
from emulator.scenario import ScenarioError, load
from tests.emulator.helpers import (
    CONTOSO,
    PORTAL_APP_ID,
    PORTAL_SECRET,
    READER,
    REDIRECT,
    ROLES_SCENARIO,
    TINY,
    assert_graph_error,
    bearer,
    get_token,
    page_all,
    session_for,
    sign_in,
)

# READER holds Application.Read.All only.

FRANK = "frank@contoso.onmicrosoft.com"
USER = "#microsoft.graph.user"
GROUP = "#microsoft.graph.group"


def group_id(emu, name: str) -> str:
    return next(g["id"] for g in emu.state(CONTOSO)["groups"] if g["displayName"] == name)


def user_id(emu, upn: str) -> str:
    return next(u["id"] for u in emu.state(CONTOSO)["users"] if u["userPrincipalName"] == upn)


def members_url(emu, group: str) -> str:
    return f"{emu.url}/v1.0/groups/{group}/transitiveMembers"


def test_a_groups_transitive_members_include_those_of_nested_groups(emu, http, contoso):
    readers = group_id(emu, "Portal readers")

    response = http.get(members_url(emu, readers), headers=contoso)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["@odata.context"].endswith("/v1.0/$metadata#directoryObjects")
    # In the order the directory made them, as the emulator pages every collection.
    shown = [(m["@odata.type"], m["displayName"]) for m in body["value"]]
    assert shown == [(USER, "Frank Falk"), (GROUP, "Security team")]


def test_each_member_keeps_its_type_when_only_its_id_is_selected(emu, http, contoso):
    readers = group_id(emu, "Portal readers")

    members, pages = page_all(
        http, members_url(emu, readers), contoso, {"$select": "id", "$top": "1"}
    )

    assert pages == 2
    assert members == [
        {"@odata.type": USER, "id": user_id(emu, FRANK)},
        {"@odata.type": GROUP, "id": group_id(emu, "Security team")},
    ]


def test_an_unknown_group_is_404(emu, http, contoso):
    response = http.get(members_url(emu, "00000000-0000-4000-8000-000000000000"), headers=contoso)

    assert_graph_error(response, 404, "Request_ResourceNotFound")


def test_members_need_a_group_or_directory_read_permission(data_dir):
    with run_emulator(ROLES_SCENARIO, data_dir=data_dir) as tiny, session_for(tiny) as http:
        token = get_token(tiny, http, tenant=TINY, client_id=READER, secret="s")
        response = http.get(
            members_url(tiny, "00000000-0000-4000-8000-000000000000"), headers=bearer(token)
        )
    assert_graph_error(response, 403, "Authorization_RequestDenied")


def test_the_portals_own_principal_lists_its_role_holders_users_and_groups(emu, http, contoso):
    portal = emu.sp_id(CONTOSO, PORTAL_APP_ID)

    holders, _ = page_all(
        http, f"{emu.url}/v1.0/servicePrincipals/{portal}/appRoleAssignedTo", contoso, None
    )

    by_type = {(h["principalType"], h["principalDisplayName"]) for h in holders}
    assert {("User", "Alice Anders"), ("User", "Bob Berg"), ("Group", "Portal readers")} <= by_type
    assert ("User", "Frank Falk") not in by_type  # his role comes through the groups


def test_a_role_held_through_nested_groups_is_in_the_id_token(emu, http):
    query = parse_qs(urlsplit(sign_in(emu, http, FRANK)).query)
    tokens = http.post(
        f"{emu.url}/organizations/oauth2/v2.0/token",
        data={
            "grant_type": "authorization_code",
            "client_id": PORTAL_APP_ID,
            "client_secret": PORTAL_SECRET,
            "code": query["code"][0],
            "redirect_uri": REDIRECT,
            "scope": "openid profile email User.Read",
        },
    )

    identity = jwt.decode(tokens.json()["id_token"], options={"verify_signature": False})
    assert identity["roles"] == ["Portal.Reader"]


@pytest.mark.parametrize(
    ("key", "name", "message"),
    [
        ("members", "nobody@contoso.onmicrosoft.com", "no such user 'nobody@contoso"),
        ("groups", "No such group", "no such group 'No such group' here"),
    ],
)
def test_a_member_the_tenant_does_not_have_fails_with_one_line(data_dir, key, name, message):
    scenario = {
        "scenario": 1,
        "tenants": [
            {
                "id": TINY,
                "name": "Tiny",
                "domain": "tiny.onmicrosoft.com",
                "users": [{"upn": "a@tiny.onmicrosoft.com", "name": "A"}],
                "groups": [{"name": "Team", key: [name]}],
            }
        ],
    }

    with pytest.raises(
        ScenarioError, match=f"tenants\\[0\\].groups\\[0\\].{key}\\[0\\]: {message}"
    ):
        load(scenario, data_dir)
