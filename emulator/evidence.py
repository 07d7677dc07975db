"""Graph's shapes for what the portal keeps as evidence: sign-in activity, directory audit
events, owners' and credentials' JSON.

Sources (Microsoft's docs unless said otherwise):
- servicePrincipalSignInActivity (beta): id is the appId base64-encoded; one signInActivity
  ({lastSignInDateTime, lastSignInRequestId}) per kind of sign-in, null where the app has
  none of that kind (Maester reads them as possibly null); apps with no sign-in at all are
  not in the report.
- directoryAudit (v1.0): the key order of directoryaudit-list.md's second example;
  modifiedProperties values are JSON-encoded strings (`"\\"Mail.Read\\""`); the consent
  event's `ConsentAction.Permissions` text, the leading space in a grant's scope, the
  initiator of a consent being "Azure ESTS Service" over the user's own UPN, an app
  initiator's null `appId`: as captured from real tenants in public write-ups.
- passwordCredential / keyCredential (v1.0): `key` only on `$select` of one object,
  `secretText` never after creation, `hint` the first three characters.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import uuid
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from emulator.scenario import ADD_GRANT, ADD_ROLE, CONSENT, REMOVE_GRANT, REMOVE_ROLE

CATEGORY = "ApplicationManagement"
# What consents are logged as being done by (see the module docstring).
ESTS = "Azure ESTS Service"
OPERATION = {
    CONSENT: "Assign",
    ADD_ROLE: "Assign",
    ADD_GRANT: "Assign",
    REMOVE_ROLE: "Unassign",
    REMOVE_GRANT: "Unassign",
}
# The report's kinds of sign-in, as Graph names them.
SIGN_IN_FIELDS = {
    "delegated_client": "delegatedClientSignInActivity",
    "delegated_resource": "delegatedResourceSignInActivity",
    "app_client": "applicationAuthenticationClientSignInActivity",
    "app_resource": "applicationAuthenticationResourceSignInActivity",
}
SIGN_IN_ACTIVITY_FIELDS = ("id", "appId", "lastSignInActivity", *SIGN_IN_FIELDS.values())


def iso7(epoch: float) -> str:
    """Audit events' times: seven decimals, as Entra writes them."""
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def iso_seconds(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def derived_guid(*parts: str) -> str:
    return str(uuid.UUID(bytes=hashlib.sha256("/".join(parts).encode()).digest()[:16], version=4))


# -- sign-in activity ---------------------------------------------------------------


def sign_in_item(app_id: str, kinds: dict[str, tuple[float, str]]) -> dict[str, Any]:
    """One servicePrincipalSignInActivity; `kinds` maps SIGN_IN_FIELDS keys to (when,
    request id)."""
    activities = {
        graph_name: _activity(kinds.get(kind)) for kind, graph_name in SIGN_IN_FIELDS.items()
    }
    latest = max(kinds.values(), default=None)
    return {
        "id": base64.b64encode(app_id.encode()).decode(),
        "appId": app_id,
        "lastSignInActivity": _activity(latest),
        **activities,
    }


def _activity(found: tuple[float, str] | None) -> dict[str, Any] | None:
    if found is None:
        return None
    return {"lastSignInDateTime": iso_seconds(found[0]), "lastSignInRequestId": found[1]}


# -- credentials --------------------------------------------------------------------


def password_credential(
    key_id: str, name: str | None, start: float, end: float, hint: str | None
) -> dict[str, Any]:
    return {
        "customKeyIdentifier": None,
        "displayName": name,
        "endDateTime": iso_seconds(end),
        "hint": hint,
        "keyId": key_id,
        "secretText": None,  # returned only when the secret is created
        "startDateTime": iso_seconds(start),
    }


def key_credential(
    key_id: str, name: str | None, cert: x509.Certificate, usage: str
) -> dict[str, Any]:
    """`key` is null here; a read of one object with `$select=keyCredentials` fills it."""
    return {
        "customKeyIdentifier": cert.fingerprint(hashes.SHA1()).hex().upper(),
        "displayName": name if name is not None else cert.subject.rfc4514_string(),
        "endDateTime": iso_seconds(cert.not_valid_after_utc.timestamp()),
        "key": None,
        "keyId": key_id,
        "startDateTime": iso_seconds(cert.not_valid_before_utc.timestamp()),
        "type": "AsymmetricX509Cert",
        "usage": usage,
    }


def certificate_key(cert: x509.Certificate) -> str:
    """The `key` of a keyCredential: the certificate's DER, base64."""
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def display_certificate(seed: str, common_name: str, start: float, end: float) -> x509.Certificate:
    """A certificate that only has to look real: Ed25519 (fast, and its signatures are
    deterministic, so the thumbprint is the same on every start)."""
    key = ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed.encode()).digest())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    serial = int.from_bytes(hashlib.sha256(f"serial/{seed}".encode()).digest()[:16], "big") >> 1
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial or 1)
        .not_valid_before(dt.datetime.fromtimestamp(int(start), dt.UTC))
        .not_valid_after(dt.datetime.fromtimestamp(int(max(end, start + 1)), dt.UTC))
    )
    return builder.sign(key, None)


# -- directory audit events ---------------------------------------------------------


def user_initiator(user: dict[str, Any], *, via_ests: bool = False) -> dict[str, Any]:
    return {
        "app": None,
        "user": {
            "id": user["id"],
            "displayName": ESTS if via_ests else user.get("displayName"),
            "userPrincipalName": user.get("userPrincipalName"),
            "ipAddress": "203.0.113.7" if not via_ests else "4.151.103.193",
            "userType": None,
            "homeTenantId": None,
            "homeTenantName": None,
        },
    }


def app_initiator(sp: dict[str, Any]) -> dict[str, Any]:
    # Seen on real events: the app's appId is null, its object id is there.
    return {
        "app": {
            "appId": None,
            "displayName": sp.get("displayName"),
            "servicePrincipalId": sp["id"],
            "servicePrincipalName": None,
        },
        "user": None,
    }


def modified(name: str, old: Any, new: Any) -> dict[str, Any]:
    return {"displayName": name, "oldValue": _encode(old), "newValue": _encode(new)}


def _encode(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def sp_target(sp: dict[str, Any], properties: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": sp["id"],
        "displayName": sp.get("displayName"),
        "type": "ServicePrincipal",
        "userPrincipalName": None,
        "groupType": None,
        "modifiedProperties": properties,
    }


def event(
    *,
    seq: int,
    correlation_id: str,
    activity: str,
    at: float,
    initiated_by: dict[str, Any],
    target: dict[str, Any],
    app_id: str | None,
    result: str = "success",
    extra_details: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    digest = hashlib.sha256(f"{correlation_id}/{seq}".encode()).hexdigest().upper()
    return {
        "id": f"Directory_{correlation_id}_{digest[:5]}_{int(digest[5:13], 16) % 10**8:08d}",
        "category": CATEGORY,
        "correlationId": correlation_id,
        "result": result,
        "resultReason": "" if result == "success" else _failure_reason(activity),
        "activityDisplayName": activity,
        "activityDateTime": iso7(at),
        "loggedByService": "Core Directory",
        "operationType": OPERATION[activity],
        "initiatedBy": initiated_by,
        "targetResources": [target],
        "additionalDetails": [
            *(extra_details or []),
            *([{"key": "AppId", "value": app_id}] if app_id else []),
        ],
    }


def _failure_reason(activity: str) -> str:
    if activity == CONSENT:
        return "Microsoft.Online.Security.UserConsentBlockedForRiskyAppsException"
    return "Microsoft.Online.DirectoryServices.AuthorizationException"


def role_properties(
    client: dict[str, Any],
    resource: dict[str, Any],
    role: dict[str, Any],
    created: str,
    *,
    removed: bool,
) -> list[dict[str, Any]]:
    """`Add/Remove app role assignment to/from service principal`: the target is the
    resource, these name the role and the client that holds it."""
    values = [
        ("AppRole.Id", role["id"]),
        ("AppRole.Value", role.get("value") or ""),
        ("AppRole.DisplayName", role.get("displayName") or ""),
        ("AppRoleAssignment.CreatedDateTime", created),
        ("AppRoleAssignment.LastModifiedDateTime", created),
        ("ServicePrincipal.ObjectID", client["id"]),
        ("ServicePrincipal.DisplayName", client.get("displayName") or ""),
        ("ServicePrincipal.AppId", client["appId"]),
        ("TargetId.ServicePrincipalNames", ";".join(resource.get("servicePrincipalNames") or [])),
    ]
    if removed:
        return [modified(name, value, None) for name, value in values]
    return [modified(name, None, value) for name, value in values]


def grant_properties(
    client: dict[str, Any],
    consent_type: str,
    principal_id: str | None,
    old_scope: str | None,
    new_scope: str | None,
) -> list[dict[str, Any]]:
    """`Add/Remove delegated permission grant`: the target is the resource."""
    found = [
        modified("DelegatedPermissionGrant.Scope", _spaced(old_scope), _spaced(new_scope)),
        modified(
            "DelegatedPermissionGrant.ConsentType",
            consent_type if old_scope is not None else None,
            consent_type if new_scope is not None else None,
        ),
    ]
    if principal_id:
        found.append(
            modified(
                "DelegatedPermissionGrant.PrincipalId",
                principal_id if old_scope is not None else None,
                principal_id if new_scope is not None else None,
            )
        )
    found.append(modified("ServicePrincipal.ObjectID", None, client["id"]))
    return found


def _spaced(scope: str | None) -> str | None:
    # Entra logs a grant's scope with a space in front: " User.Read".
    return None if scope is None else " " + scope.strip()


def consent_properties(
    client: dict[str, Any],
    *,
    admin: bool,
    app_only: bool,
    on_behalf_of_all: bool,
    grants: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    entries = ", ".join(
        f"[Id: {g['id']}, ClientId: {g['clientId']}, PrincipalId: {g.get('principalId') or ''}, "
        f"ResourceId: {g['resourceId']}, ConsentType: {g['consentType']}, "
        f"Scope:  {g['scope'].strip()}, CreatedDateTime: , LastModifiedDateTime ]"
        for g in grants
    )
    return [
        modified("ConsentContext.IsAdminConsent", None, str(admin)),
        modified("ConsentContext.IsAppOnly", None, str(app_only)),
        modified("ConsentContext.OnBehalfOfAll", None, str(on_behalf_of_all)),
        modified("ConsentContext.Tags", None, "WindowsAzureActiveDirectoryIntegratedApp"),
        modified("ConsentAction.Permissions", None, f"[] => [{entries}]; "),
        modified("TargetId.ServicePrincipalNames", None, client["appId"]),
    ]


CONSENT_DETAILS = [{"key": "User-Agent", "value": "EvoSTS"}]
