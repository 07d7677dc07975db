"""Entra ID endpoints: discovery, tokens (real MSAL too), sign-in and admin consent."""

import hashlib
import re
from urllib.parse import parse_qs, urlsplit

import jwt
import msal
import pytest
import requests

from tests.emulator.helpers import (
    CONTOSO,
    FABRIKAM,
    NORTHWIND,
    PORTAL_APP_ID,
    PORTAL_SECRET,
    REDIRECT,
    authorize_url,
    bearer,
    get_token,
    session_for,
    sign_in,
)

GRAPH_DEFAULT = ["https://graph.microsoft.com/.default"]


def token_error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert {"error", "timestamp", "trace_id", "correlation_id"} <= body.keys()
    return body


def client_credentials(emu, http, tenant=CONTOSO, **form):
    data = {
        "grant_type": "client_credentials",
        "client_id": PORTAL_APP_ID,
        "client_secret": PORTAL_SECRET,
        "scope": GRAPH_DEFAULT[0],
        **form,
    }
    return http.post(f"{emu.url}/{tenant}/oauth2/v2.0/token", data=data)


def msal_app(emu, http, credential, tenant=CONTOSO):
    return msal.ConfidentialClientApplication(
        PORTAL_APP_ID,
        client_credential=credential,
        authority=f"{emu.url}/{tenant}",
        http_client=http,
        instance_discovery=False,
    )


def test_openid_configuration_names_the_tenants_endpoints(emu, http):
    for segment in (CONTOSO, "contoso.onmicrosoft.com"):
        config = http.get(f"{emu.url}/{segment}/v2.0/.well-known/openid-configuration").json()
        assert config["issuer"] == f"{emu.url}/{CONTOSO}/v2.0"
        assert config["token_endpoint"] == f"{emu.url}/{CONTOSO}/oauth2/v2.0/token"
        assert config["authorization_endpoint"] == f"{emu.url}/{CONTOSO}/oauth2/v2.0/authorize"
        assert config["jwks_uri"] == f"{emu.url}/{CONTOSO}/discovery/v2.0/keys"

    organizations = http.get(f"{emu.url}/organizations/v2.0/.well-known/openid-configuration")
    assert organizations.json()["issuer"] == f"{emu.url}/{{tenantid}}/v2.0"


def test_discovery_of_an_unknown_tenant_is_aadsts90002(emu, http):
    response = http.get(f"{emu.url}/nowhere.example/v2.0/.well-known/openid-configuration")
    token_error(response, 400, 90002)


def test_an_app_token_carries_the_claims_entra_puts_there(emu, http):
    response = client_credentials(emu, http)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 3000

    keys = http.get(f"{emu.url}/{CONTOSO}/discovery/v2.0/keys").json()["keys"]
    header = jwt.get_unverified_header(body["access_token"])
    key = next(k for k in keys if k["kid"] == header["kid"])
    claims = jwt.decode(
        body["access_token"],
        jwt.PyJWK(key).key,
        algorithms=["RS256"],
        audience="https://graph.microsoft.com",
        issuer=f"{emu.url}/{CONTOSO}/v2.0",
    )
    portal_sp = next(
        sp["id"] for sp in emu.state(CONTOSO)["servicePrincipals"] if sp["appId"] == PORTAL_APP_ID
    )
    assert claims["tid"] == CONTOSO
    assert claims["oid"] == portal_sp
    assert claims["appid"] == claims["azp"] == PORTAL_APP_ID
    assert sorted(claims["roles"]) == [
        "AppRoleAssignment.ReadWrite.All",
        "Application.Read.All",
        "AuditLog.Read.All",
        "DelegatedPermissionGrant.ReadWrite.All",
        "Directory.Read.All",
    ]
    assert claims["exp"] > claims["iat"]


def test_the_second_tenant_grants_the_portal_read_roles_only(emu, http):
    token = client_credentials(emu, http, tenant=FABRIKAM).json()["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["tid"] == FABRIKAM
    # AuditLog.Read.All reads too: here it meets a tenant without Entra ID P1.
    assert sorted(claims["roles"]) == [
        "Application.Read.All",
        "AuditLog.Read.All",
        "Directory.Read.All",
    ]


def test_a_wrong_secret_is_aadsts7000215(emu, http):
    body = token_error(client_credentials(emu, http, client_secret="guess"), 401, 7000215)
    assert body["error"] == "invalid_client"


def test_an_expired_secret_is_aadsts7000222(emu, http):
    response = client_credentials(emu, http, client_secret="emulator-portal-old-secret")
    token_error(response, 401, 7000222)


def test_an_app_without_a_service_principal_in_the_tenant_is_aadsts700016(emu, http):
    token_error(client_credentials(emu, http, tenant=NORTHWIND), 400, 700016)


def test_a_scope_without_default_is_refused(emu, http):
    response = client_credentials(emu, http, scope="https://graph.microsoft.com/User.Read.All")
    token_error(response, 400, 1002012)


def test_a_secret_in_basic_auth_works_too(emu, http):
    response = http.post(
        f"{emu.url}/{CONTOSO}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "scope": GRAPH_DEFAULT[0]},
        auth=(PORTAL_APP_ID, PORTAL_SECRET),
    )
    assert response.status_code == 200, response.text


def test_msal_gets_a_token_with_the_client_secret(emu, http):
    result = msal_app(emu, http, PORTAL_SECRET).acquire_token_for_client(GRAPH_DEFAULT)

    assert "access_token" in result, result
    response = http.get(f"{emu.url}/v1.0/servicePrincipals", headers=bearer(result["access_token"]))
    assert response.status_code == 200


def test_msal_gets_a_token_with_the_certificate(emu, http):
    credentials = emu.credentials(PORTAL_APP_ID)
    certificate = credentials.certificate_path.read_text()
    key = credentials.private_key_path.read_text()

    # With the certificate MSAL signs PS256 with x5t#S256; with a bare SHA-1
    # thumbprint it signs RS256 with x5t. Entra accepts both.
    with_certificate = {"private_key": key, "public_certificate": certificate}
    result = msal_app(emu, http, with_certificate).acquire_token_for_client(GRAPH_DEFAULT)
    assert "access_token" in result, result
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["appidacr"] == "2"

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    sha1 = x509.load_pem_x509_certificate(certificate.encode()).fingerprint(hashes.SHA1()).hex()
    with_thumbprint = {"private_key": key, "thumbprint": sha1}
    result = msal_app(emu, http, with_thumbprint).acquire_token_for_client(GRAPH_DEFAULT)
    assert "access_token" in result, result


def test_a_certificate_that_is_not_registered_is_refused(emu, http, tmp_path):
    from emulator import pki

    cert_path, key_path = pki.client_certificate(tmp_path, "stranger")
    stranger = {"private_key": key_path.read_text(), "public_certificate": cert_path.read_text()}
    result = msal_app(emu, http, stranger).acquire_token_for_client(GRAPH_DEFAULT)
    assert result["error_codes"] == [700027]


def test_a_client_that_does_not_trust_the_ca_cannot_connect(emu):
    with requests.Session() as untrusting:
        untrusting.trust_env = False
        with pytest.raises(requests.exceptions.SSLError):
            untrusting.get(f"{emu.url}/{CONTOSO}/v2.0/.well-known/openid-configuration")


def test_the_authorize_page_lists_the_scenarios_users_to_sign_in_as(emu, http):
    page = http.get(authorize_url(emu))
    assert page.status_code == 200
    assert "text/html" in page.headers["Content-Type"]
    for upn in ("alice@contoso.onmicrosoft.com", "charlie@fabrikam.onmicrosoft.com"):
        assert upn in page.text
    assert "Portal.Admin" in page.text

    only_fabrikam = http.get(authorize_url(emu, tenant=FABRIKAM)).text
    assert "charlie@fabrikam.onmicrosoft.com" in only_fabrikam
    assert "alice@contoso.onmicrosoft.com" not in only_fabrikam


def test_signing_in_redirects_back_with_a_code_that_redeems_to_an_id_token(emu, http):
    location = sign_in(emu, http, "alice@contoso.onmicrosoft.com")
    assert location.startswith(REDIRECT)
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["xyz"]

    form = {
        "grant_type": "authorization_code",
        "client_id": PORTAL_APP_ID,
        "client_secret": PORTAL_SECRET,
        "code": query["code"][0],
        "redirect_uri": REDIRECT,
        "scope": "openid profile email User.Read",
    }
    tokens = http.post(f"{emu.url}/organizations/oauth2/v2.0/token", data=form)
    assert tokens.status_code == 200, tokens.text
    identity = jwt.decode(tokens.json()["id_token"], options={"verify_signature": False})
    assert identity["aud"] == PORTAL_APP_ID
    assert identity["tid"] == CONTOSO
    assert identity["preferred_username"] == "alice@contoso.onmicrosoft.com"
    assert identity["name"] == "Alice Anders"
    assert identity["roles"] == ["Portal.Admin"]
    assert identity["nonce"] == "n-0S6"
    assert identity["iss"] == f"{emu.url}/{CONTOSO}/v2.0"

    me = http.get(f"{emu.url}/v1.0/me", headers=bearer(tokens.json()["access_token"]))
    assert me.status_code == 200
    assert me.json()["userPrincipalName"] == "alice@contoso.onmicrosoft.com"
    assert me.json()["@odata.context"].endswith("#users/$entity")

    reused = http.post(f"{emu.url}/organizations/oauth2/v2.0/token", data=form)
    token_error(reused, 400, 54005)


@pytest.mark.parametrize(
    "redirect",
    [
        "http://127.0.0.1:51234/accounts/microsoft/login/callback/",
        "http://localhost:8001/accounts/microsoft/login/callback/",
    ],
)
def test_a_loopback_redirect_uri_may_come_back_on_any_port(emu, http, redirect):
    location = sign_in(emu, http, "alice@contoso.onmicrosoft.com", redirect_uri=redirect)
    assert location.startswith(f"{redirect}?code=")


@pytest.mark.parametrize(
    "redirect",
    [
        "https://127.0.0.1:8000/accounts/microsoft/login/callback/",
        "http://127.0.0.1:8000/elsewhere/",
        "http://127.0.0.2:8000/accounts/microsoft/login/callback/",
        "https://portal.example/accounts/microsoft/login/callback/",
    ],
)
def test_an_unregistered_redirect_uri_gets_an_error_page_instead_of_a_code(emu, http, redirect):
    response = http.get(authorize_url(emu, redirect_uri=redirect), allow_redirects=False)
    assert response.status_code == 400
    assert "AADSTS50011" in response.text


def test_msal_signs_a_user_in_with_pkce_and_reads_their_roles(emu, http):
    app = msal_app(emu, http, PORTAL_SECRET, tenant="organizations")
    flow = app.initiate_auth_code_flow(
        ["User.Read"], redirect_uri=REDIRECT, response_mode="form_post"
    )
    page = http.get(flow["auth_uri"]).text
    bob = re.search(r"name='user' value='([^']+)'>Bob Berg", page).group(1)
    answer = http.post(flow["auth_uri"], data={"user": bob}, allow_redirects=False)
    assert f"action='{REDIRECT}'" in answer.text
    reply = dict(re.findall(r"name='(\w+)' value='([^']*)'", answer.text))

    result = app.acquire_token_by_auth_code_flow(flow, reply)

    assert "access_token" in result, result
    assert result["id_token_claims"]["roles"] == ["Portal.Reader"]
    # MSAL sends the SHA-256 of its nonce; Entra echoes what it was sent.
    expected = hashlib.sha256(flow["nonce"].encode()).hexdigest()
    assert result["id_token_claims"]["nonce"] == expected


def test_a_wrong_pkce_verifier_is_refused(emu, http):
    location = sign_in(
        emu,
        http,
        "bob@contoso.onmicrosoft.com",
        code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        code_challenge_method="S256",
    )
    code = parse_qs(urlsplit(location).query)["code"][0]
    response = http.post(
        f"{emu.url}/organizations/oauth2/v2.0/token",
        data={
            "grant_type": "authorization_code",
            "client_id": PORTAL_APP_ID,
            "client_secret": PORTAL_SECRET,
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": "not-the-verifier",
        },
    )
    token_error(response, 400, 501481)


def consent_url(emu, tenant=NORTHWIND, v2=False):
    path = "v2.0/adminconsent" if v2 else "adminconsent"
    params = {"client_id": PORTAL_APP_ID, "redirect_uri": REDIRECT, "state": "s1"}
    if v2:
        params["scope"] = "https://graph.microsoft.com/.default"
    return requests.Request("GET", f"{emu.url}/{tenant}/{path}", params=params).prepare().url


def nina(page):
    return re.search(r"name='user' value='([^']+)'>Accept as Nina Novak", page).group(1)


def test_admin_consent_onboards_the_portal_in_a_new_tenant(emu, http):
    token_error(client_credentials(emu, http, tenant=NORTHWIND), 400, 700016)
    url = consent_url(emu)
    page = http.get(url)
    assert "Application.Read.All" in page.text and "Directory.Read.All" in page.text

    response = http.post(
        url, data={"decision": "accept", "user": nina(page.text)}, allow_redirects=False
    )

    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT)
    assert parse_qs(urlsplit(location).query) == {
        "tenant": [NORTHWIND],
        "admin_consent": ["True"],
        "state": ["s1"],
    }
    token = client_credentials(emu, http, tenant=NORTHWIND).json()["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert sorted(claims["roles"]) == ["Application.Read.All", "Directory.Read.All"]


def test_v2_admin_consent_echoes_the_scope(emu, http):
    url = consent_url(emu, v2=True)
    page = http.get(url).text
    location = http.post(
        url, data={"decision": "accept", "user": nina(page)}, allow_redirects=False
    ).headers["Location"]
    query = parse_qs(urlsplit(location).query)
    assert query["admin_consent"] == ["True"]
    assert query["scope"] == ["https://graph.microsoft.com/.default"]


def test_declined_admin_consent_redirects_back_with_access_denied(emu, http):
    response = http.post(consent_url(emu), data={"decision": "decline"}, allow_redirects=False)

    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["error"] == ["access_denied"]
    assert query["error_description"][0].startswith("AADSTS65004")
    assert query["state"] == ["s1"]
    token_error(client_credentials(emu, http, tenant=NORTHWIND), 400, 700016)


def test_a_user_who_is_not_an_admin_cannot_consent_for_the_tenant(emu, http):
    url = consent_url(emu)
    page = http.get(url).text
    ivan = re.search(r"name='user' value='([^']+)'>Accept as Ivan Ivanov", page).group(1)
    response = http.post(url, data={"decision": "accept", "user": ivan}, allow_redirects=False)

    assert parse_qs(urlsplit(response.headers["Location"]).query)["error"] == ["access_denied"]


def test_consent_for_an_unknown_app_shows_an_error_page_instead_of_redirecting(emu, http):
    response = http.get(
        f"{emu.url}/{NORTHWIND}/adminconsent",
        params={"client_id": "11111111-2222-4333-8444-555555555555", "redirect_uri": REDIRECT},
        allow_redirects=False,
    )
    assert response.status_code == 400
    assert "AADSTS700016" in response.text


def test_the_emulator_serves_the_same_ca_across_restarts(data_dir):
    from emulator import run_emulator

    with run_emulator("demo", data_dir=data_dir) as first:
        ca = first.ca_path.read_bytes()
    with run_emulator("demo", data_dir=data_dir) as second, session_for(second) as http:
        assert second.ca_path.read_bytes() == ca
        assert get_token(second, http)
