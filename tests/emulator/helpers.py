"""Helpers shared by the emulator's tests."""

from typing import Any

import requests

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
