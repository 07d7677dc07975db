"""401 without a valid token, 403 when the caller's granted roles do not allow the call."""

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from emulator import run_emulator
from tests.emulator.helpers import (
    CONTOSO,
    FABRIKAM,
    GRANT_READER,
    NO_ROLES,
    PORTAL_APP_ID,
    READER,
    ROLES_SCENARIO,
    TINY,
    bearer,
    get_token,
    session_for,
)


def assert_denied(response):
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == "Authorization_RequestDenied"
    assert error["message"] == "Insufficient privileges to complete the operation."


def assert_unauthenticated(response, message):
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert response.json()["error"]["message"] == message
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


@pytest.fixture
def tiny(data_dir):
    with run_emulator(ROLES_SCENARIO, data_dir=data_dir) as emulator:
        yield emulator


def test_a_call_without_a_token_is_401(emu, http):
    response = http.get(f"{emu.url}/v1.0/servicePrincipals")
    assert_unauthenticated(response, "Access token is empty.")


def test_a_malformed_token_is_401(emu, http):
    response = http.get(f"{emu.url}/v1.0/servicePrincipals", headers=bearer("not-a-jwt"))
    assert_unauthenticated(response, "Access token validation failure.")


def test_a_token_signed_by_someone_else_is_401(emu, http):
    genuine = jwt.decode(get_token(emu, http), options={"verify_signature": False})
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(genuine, other_key, algorithm="RS256")

    response = http.get(f"{emu.url}/v1.0/servicePrincipals", headers=bearer(forged))
    assert_unauthenticated(response, "Access token validation failure.")


def test_an_expired_token_is_401(emu, http):
    claims = jwt.decode(get_token(emu, http), options={"verify_signature": False})
    claims.update(
        iat=int(time.time()) - 7200, nbf=int(time.time()) - 7200, exp=int(time.time()) - 3600
    )
    expired = jwt.encode(claims, emu.pki.signing_key, algorithm="RS256")

    response = http.get(f"{emu.url}/v1.0/servicePrincipals", headers=bearer(expired))
    assert_unauthenticated(response, "Access token has expired or is not yet valid.")


def test_a_token_for_another_resource_is_401(emu, http):
    response = http.post(
        f"{emu.url}/{CONTOSO}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": PORTAL_APP_ID,
            "client_secret": "emulator-portal-secret",
            "scope": "https://api.manage.microsoft.com/.default",
        },
    )
    intune_token = response.json()["access_token"]
    assert jwt.decode(intune_token, options={"verify_signature": False})["aud"] == (
        "https://api.manage.microsoft.com"
    )

    response = http.get(f"{emu.url}/v1.0/servicePrincipals", headers=bearer(intune_token))
    assert_unauthenticated(response, "Access token validation failure. Invalid audience.")


def test_the_read_only_tenant_refuses_the_portals_revokes(emu, http):
    headers = bearer(get_token(emu, http, tenant=FABRIKAM))
    state = emu.state(FABRIKAM)
    graph = state["servicePrincipals"][0]["id"]
    assignment = state["appRoleAssignments"][0]["id"]
    grant = state["oauth2PermissionGrants"][0]["id"]

    assert http.get(f"{emu.url}/v1.0/servicePrincipals", headers=headers).status_code == 200
    assert http.get(f"{emu.url}/v1.0/oauth2PermissionGrants", headers=headers).status_code == 200
    assert_denied(
        http.delete(
            f"{emu.url}/v1.0/servicePrincipals/{graph}/appRoleAssignedTo/{assignment}",
            headers=headers,
        )
    )
    assert_denied(
        http.patch(
            f"{emu.url}/v1.0/oauth2PermissionGrants/{grant}",
            json={"scope": "openid"},
            headers=headers,
        )
    )
    assert_denied(http.delete(f"{emu.url}/v1.0/oauth2PermissionGrants/{grant}", headers=headers))
    assert len(emu.state(FABRIKAM)["appRoleAssignments"]) == len(state["appRoleAssignments"])


def test_application_read_all_reads_apps_but_not_grants(tiny):
    with session_for(tiny) as http:
        headers = bearer(get_token(tiny, http, tenant=TINY, client_id=READER, secret="s"))
        assert http.get(f"{tiny.url}/v1.0/servicePrincipals", headers=headers).status_code == 200
        assert_denied(http.get(f"{tiny.url}/v1.0/oauth2PermissionGrants", headers=headers))


def test_delegated_permission_grant_read_all_reads_grants_but_not_apps(tiny):
    with session_for(tiny) as http:
        headers = bearer(get_token(tiny, http, tenant=TINY, client_id=GRANT_READER, secret="s"))
        grants = http.get(f"{tiny.url}/v1.0/oauth2PermissionGrants", headers=headers)
        assert grants.status_code == 200 and len(grants.json()["value"]) == 1
        assert_denied(http.get(f"{tiny.url}/v1.0/servicePrincipals", headers=headers))


def test_an_app_with_no_roles_gets_a_token_without_roles_and_is_denied_everything(tiny):
    with session_for(tiny) as http:
        token = get_token(tiny, http, tenant=TINY, client_id=NO_ROLES, secret="s")
        assert "roles" not in jwt.decode(token, options={"verify_signature": False})
        for path in ("servicePrincipals", "oauth2PermissionGrants", "organization"):
            assert_denied(http.get(f"{tiny.url}/v1.0/{path}", headers=bearer(token)))
