"""Helpers of the tenants app's tests: what the emulator's Graph holds, Graph's answers
changed on their way in, and audit events recorded in the past."""

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from unittest import mock

import requests

from emulator import Emulator
from tenants.audit import audit_record
from tenants.models import AuditEvent
from tests.ids import ASKCODY, CONNECT_247, GRAPH


def graph_grants(emu: Emulator, tenant_id: str, client_object_id: str) -> list[dict]:
    """The oauth2PermissionGrants (delegated) of a client in the emulator's Graph."""
    state = emu.state(tenant_id)
    return [g for g in state["oauth2PermissionGrants"] if g["clientId"] == client_object_id]


def consent_and_unconsent_outside(emu: Emulator, graph: Any, tenant_id: str) -> dict:
    """What an admin does in Entra, not through the portal: 247connect gets an admin
    consent to User.Read and openid on Microsoft Graph, and AskCody's admin consent goes
    (returned, as Graph held it). ``graph`` is a portal GraphClient of the tenant."""
    connect, graph_sp = emu.sp_id(tenant_id, CONNECT_247), emu.sp_id(tenant_id, GRAPH)
    graph.request(
        "POST",
        "/oauth2PermissionGrants",
        json={
            "clientId": connect,
            "consentType": "AllPrincipals",
            "resourceId": graph_sp,
            "scope": "User.Read openid",
        },
    )
    askcody = emu.sp_id(tenant_id, ASKCODY)
    admin_grant = next(
        g for g in graph_grants(emu, tenant_id, askcody) if g["consentType"] == "AllPrincipals"
    )
    graph.request("DELETE", f"/oauth2PermissionGrants/{admin_grant['id']}")
    return admin_grant


def graph_assignments(emu: Emulator, tenant_id: str, client_object_id: str) -> list[dict]:
    """The appRoleAssignments (application permissions) of a client in the emulator's Graph."""
    return [
        a
        for a in emu.state(tenant_id)["appRoleAssignments"]
        if a["principalId"] == client_object_id
    ]


def recorded_at(at: datetime, **event: Any) -> AuditEvent:
    """An audit event recorded at ``at``: the trail is append-only, so a test cannot
    backdate an event afterwards; it records it with the clock set back instead."""
    with mock.patch("django.utils.timezone.now", return_value=at):
        return audit_record(**event)


@contextmanager
def tampered(
    session: requests.Session, pattern: str, change: Callable[[dict[str, Any]], None]
) -> Iterator[None]:
    """Graph answers as received over HTTPS, then changed by ``change`` (for bodies of
    URLs matching ``pattern``): Graph sending what the portal does not expect."""

    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        if re.search(pattern, response.url) and response.headers.get("Content-Type", "").startswith(
            "application/json"
        ):
            body = response.json()
            change(body)
            response._content = json.dumps(body).encode()
        return response

    session.hooks["response"].append(hook)
    try:
        yield
    finally:
        session.hooks["response"].remove(hook)
