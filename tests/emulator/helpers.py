"""Helpers shared by the emulator's tests."""

import re
from typing import Any

import requests
import yaml

from emulator import Emulator
from tests.ids import CONTOSO as CONTOSO  # re-exported: the demo's ids, from tests/ids.py
from tests.ids import FABRIKAM as FABRIKAM
from tests.ids import GRAPH, PORTAL_APP
from tests.ids import NORTHWIND as NORTHWIND

# The emulator's tests name these two so.
GRAPH_APP_ID = GRAPH
PORTAL_APP_ID = PORTAL_APP
PORTAL_SECRET = "emulator-portal-secret"


def session_for(emulator: Emulator) -> requests.Session:
    """A client that trusts the emulator's CA.

    `trust_env` is off because requests lets REQUESTS_CA_BUNDLE override `verify`.
    """
    session = requests.Session()
    session.verify = str(emulator.ca_path)
    session.trust_env = False
    return session


def get_token(
    emulator: Emulator,
    session: requests.Session,
    tenant: str = CONTOSO,
    client_id: str = PORTAL_APP_ID,
    secret: str = PORTAL_SECRET,
) -> str:
    response = session.post(
        f"{emulator.url}/{tenant}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "scope": "https://graph.microsoft.com/.default",
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def page_all(
    session: requests.Session, url: str, headers: dict[str, str], params: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], int]:
    """Every item of a collection, following @odata.nextLink verbatim; and the page count."""
    items: list[dict[str, Any]] = []
    pages = 0
    next_url: str | None = url
    while next_url:
        response = session.get(next_url, headers=headers, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["value"]
        pages += 1
        next_url, params = body.get("@odata.nextLink"), None
    return items, pages


WOODGROVE = "5a7d3e2b-9c41-4f8e-b6a0-1d2c3b4a5e6f"
CONNECT_APP_ID = "8708fc71-9f71-4ad5-8445-a0746692feeb"  # 247connect
ASKCODY_APP_ID = "6f4e2a1b-8c3d-4e5f-a6b7-c8d9e0f1a2b3"
LOOKOUT_APP_ID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
MAIL_READ = "810c84a8-4a9e-49e6-bf7d-12d183f40d01"  # Graph's application Mail.Read
APPLICATION_READWRITE_ALL = "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9"


def assert_graph_error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    """Graph's error envelope, with the status and code expected; returns the error."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    return error


# -- signing in at the emulator's Entra (test_entra, test_groups) --

REDIRECT = "http://127.0.0.1:8000/accounts/microsoft/login/callback/"


def authorize_url(emu, tenant="organizations", **extra):
    params = {
        "client_id": PORTAL_APP_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": "openid profile email User.Read",
        "state": "xyz",
        "nonce": "n-0S6",
        **extra,
    }
    return (
        requests.Request("GET", f"{emu.url}/{tenant}/oauth2/v2.0/authorize", params=params)
        .prepare()
        .url
    )


def sign_in(emu, http, user, **extra):
    url = authorize_url(emu, **extra)
    page = http.get(url).text
    users = dict(
        (upn, oid)
        for oid, upn in re.findall(r"name='user' value='([^']+)'>[^<]*&lt;([^&]+)&gt;", page)
    )
    response = http.post(url, data={"user": users[user]}, allow_redirects=False)
    assert response.status_code == 302, response.text
    return response.headers["Location"]


# -- a tenant whose apps hold one role each (test_authorization, test_groups) --

TINY = "7d9c1a3e-2b4f-4e6a-8c1d-9e2f3a4b5c6d"
READER, GRANT_READER, NO_ROLES = (
    "a1a1a1a1-0000-4000-8000-000000000001",
    "a1a1a1a1-0000-4000-8000-000000000002",
    "a1a1a1a1-0000-4000-8000-000000000003",
)
ROLES_SCENARIO = yaml.safe_load(
    f"""
scenario: 1
name: roles
resources:
  - app_id: {GRAPH_APP_ID}
    name: Microsoft Graph
    identifier_uris: [https://graph.microsoft.com]
    app_roles:
      - {{value: Application.Read.All, id: 9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30, description: apps}}
      - {{value: DelegatedPermissionGrant.Read.All, id: 81b4724a-58aa-41c1-8a55-84ef97466587,
          description: grants}}
    scopes:
      - {{value: User.Read, id: e1fe6dd8-ba31-4d61-89e7-88639da4683d, description: me}}
applications:
  - {{app_id: {READER}, name: App reader, secrets: [{{value: s}}]}}
  - {{app_id: {GRANT_READER}, name: Grant reader, secrets: [{{value: s}}]}}
  - {{app_id: {NO_ROLES}, name: No roles, secrets: [{{value: s}}]}}
tenants:
  - id: {TINY}
    name: Tiny
    domain: tiny.onmicrosoft.com
    apps:
      - app_id: {READER}
        grants: [{{type: application, permissions: [Application.Read.All]}}]
      - app_id: {GRANT_READER}
        grants:
          - {{type: application, permissions: [DelegatedPermissionGrant.Read.All]}}
          - {{type: delegated, permissions: [User.Read]}}
      - app_id: {NO_ROLES}
"""
)
