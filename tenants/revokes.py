"""Revoke requests: taking one permission away from one application, and giving it back.

A request names a grant as (tenant, client, resource, kind, value, consent). An admin's
click queues it; a reader's waits for an admin's approval. The Celery task
(``tenants.tasks.execute_revoke``) calls :func:`revoke_request_execute`, which

1. claims the request (QUEUED -> RUNNING, or a RUNNING one whose worker must be dead),
2. reads the grant's current Graph objects, so a resumed run redoes only what is left,
3. deletes the assignment, or takes the scope out of each delegated grant (PATCH with
   the other scopes, DELETE when none is left), noting each object in ``removed`` first,
4. reads again: it succeeds only once Graph no longer shows the grant.

Where the portal may not write (its app lacks AppRoleAssignment.ReadWrite.All and
DelegatedPermissionGrant.ReadWrite.All), a request goes to MANUAL with the steps for an
admin; the sync that no longer finds the grant completes it (:func:`revokes_after_sync`).
That hook also marks revoked permissions that come back (re-consent) as re-granted.
"""

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

import requests
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from permissions.models import PermissionKind
from portal.models import User
from tenants.access import PORTAL_ADMIN, Role, role_in
from tenants.audit import audit_record
from tenants.graph import GraphClient, GraphError
from tenants.models import AuditEvent, Grant, RevokeRequest, ServicePrincipal, SyncRun, Tenant
from tenants.portal_app import READ_NEEDS, WRITE_NEEDS, is_portal_app, portal_can_write
from tenants.report import tenant_report

logger = logging.getLogger(__name__)

# The task's limits. A request RUNNING for longer than the hard limit has lost its worker
# (the limit would have killed it), so another run may take it over.
REVOKE_SOFT_TIME_LIMIT = 10 * 60
REVOKE_TIME_LIMIT = 12 * 60
ENTRA_ADMIN_CENTER = "https://entra.microsoft.com"

Status = RevokeRequest.Status
Action = RevokeRequest.Action


@dataclass(frozen=True)
class GrantCandidate:
    """A grant that nothing needs, as a bulk revoke would take it away."""

    client: ServicePrincipal
    resource_app_id: str
    kind: str
    value: str
    consent: str
    verdict: str


# -- what the portal may do --------------------------------------------------------------


def manual_steps(revoke: RevokeRequest) -> list[str]:
    """What an admin does by hand: the Entra admin center path, then the Graph calls."""
    client = revoke.client
    consent_tab = "User consent" if revoke.consent == Grant.Consent.USER else "Admin consent"
    verb = "Revoke permission" if revoke.action == Action.REVOKE else "Grant admin consent"
    steps = [
        f"In the Microsoft Entra admin center ({ENTRA_ADMIN_CENTER}) go to Identity > "
        f"Applications > Enterprise applications > All applications > {client.display_name} "
        f"(application ID {client.app_id}) > Security > Permissions > {consent_tab}, "
        f"find {revoke.value} ({revoke.get_kind_display()}) and choose {verb}.",
        "Or make these Microsoft Graph calls as an admin:",
    ]
    steps += _manual_calls(revoke)
    steps.append("The portal confirms the change at the tenant's next sync.")
    return steps


def _manual_calls(revoke: RevokeRequest) -> list[str]:
    base = f"{settings.GRAPH_URL}/v1.0"
    if revoke.action == Action.RESTORE:
        return [_restore_call(base, entry, revoke.value) for entry in _restore_targets(revoke)]
    rows = list(_grant_rows(revoke).filter(removed_in_run__isnull=True).order_by("pk"))
    if revoke.kind == PermissionKind.APPLICATION:
        return [
            f"DELETE {base}/servicePrincipals/{row.resource_object_id}/appRoleAssignedTo/{row.graph_object_id}"
            for row in rows
        ]
    scopes = _scopes_by_grant(revoke.tenant_id, {row.graph_object_id for row in rows})
    calls = []
    for row in rows:
        remaining = _without(scopes.get(row.graph_object_id, []), revoke.value)
        url = f"{base}/oauth2PermissionGrants/{row.graph_object_id}"
        if remaining:
            body = json.dumps({"scope": " ".join(remaining)})
            calls.append(f"PATCH {url} with the body {body}")
        else:
            calls.append(f"DELETE {url}")
    return calls


def _restore_call(base: str, entry: dict[str, Any], value: str) -> str:
    if entry["type"] == "appRoleAssignment":
        body = {key: entry[key] for key in ("principalId", "resourceId", "appRoleId")}
        return f"POST {base}/servicePrincipals/{entry['resourceId']}/appRoleAssignedTo with the body {json.dumps(body)}"
    return (
        f"PATCH {base}/oauth2PermissionGrants/{entry['id']} adding {value} to its scope, or if "
        f"that grant is gone, POST {base}/oauth2PermissionGrants with the body "
        f"{json.dumps(_new_grant_body(entry, value))}"
    )


def _scopes_by_grant(tenant_id: int, grant_ids: set[str]) -> dict[str, list[str]]:
    """Each delegated grant's scopes as the last sync saw them, in Graph's order."""
    scopes: dict[str, list[str]] = {}
    rows = Grant.objects.filter(
        tenant_id=tenant_id, graph_object_id__in=grant_ids, removed_in_run__isnull=True
    ).order_by("pk")
    for grant_id, value in rows.values_list("graph_object_id", "value"):
        scopes.setdefault(grant_id, []).append(value)
    return scopes


# -- requests and decisions --------------------------------------------------------------


def revoke_grants(
    *, tenant: Tenant, client: ServicePrincipal, resource_app_id: str, kind: str, value: str
) -> QuerySet[Grant]:
    """The current grant rows of a permission, all consent types: what a revoke would take."""
    return Grant.objects.filter(
        _named(kind, value),
        tenant=tenant,
        client=client,
        resource_app_id=resource_app_id,
        kind=kind,
        removed_in_run__isnull=True,
    )


def revoke_request_create(
    *,
    tenant: Tenant,
    client: ServicePrincipal,
    resource_app_id: str,
    kind: str,
    value: str,
    consent: str,
    actor: User | None,
    role: Role,
    queue: bool = True,
) -> tuple[RevokeRequest, bool]:
    """Ask for a grant to be revoked: queued (or MANUAL) for an admin, waiting for
    approval for a reader, whose request is mailed to the tenant's admins.

    An open request for the same grant wins: it is returned with False. ``queue=False``
    leaves a queued request for the caller to execute (the ``revoke`` command).
    """
    # One transaction: a request whose e-mail could not be sent is not left waiting for
    # admins who were never told.
    with transaction.atomic():
        revoke, created = _create(
            tenant=tenant,
            client=client,
            resource_app_id=str(resource_app_id),
            kind=kind,
            value=value,
            consent=consent,
            actor=actor,
            role=role,
            queue=queue,
        )
        if created and revoke.status == Status.PENDING_APPROVAL:
            _notify_admins(tenant, [revoke])
    return revoke, created


def _create(
    *,
    tenant: Tenant,
    client: ServicePrincipal,
    resource_app_id: str,
    kind: str,
    value: str,
    consent: str,
    actor: User | None,
    role: Role,
    queue: bool,
) -> tuple[RevokeRequest, bool]:
    key = {
        "tenant": tenant,
        "client": client,
        "resource_app_id": resource_app_id,
        "kind": kind,
        "value": value,
        "consent": consent,
    }
    if not _grant_rows_for(**key).filter(removed_in_run__isnull=True).exists():
        raise ValueError(
            f"{client.display_name} does not hold {value} ({kind}, {consent} consent) in {tenant.name}"
        )
    if role == Role.ADMIN:
        status = Status.QUEUED if portal_can_write(tenant) else Status.MANUAL
        decided = {"decided_by": actor, "decided_at": timezone.now()}
    else:
        status, decided = Status.PENDING_APPROVAL, {}
    revoke, created = _insert_or_open(
        key, action=Action.REVOKE, status=status, requested_by=actor, **decided
    )
    if created:
        _audit(revoke, AuditEvent.Action.REVOKE_REQUESTED, actor=actor, status=revoke.status)
        _after_decision(revoke, actor=actor, queue=queue)
    return revoke, created


def _insert_or_open(key: dict[str, Any], **fields: Any) -> tuple[RevokeRequest, bool]:
    """Insert a request, or return the open one for the same grant: the one-open-per-grant
    constraint decides, so two clicks at the same moment cannot both insert."""
    for _attempt in range(3):
        try:
            with transaction.atomic():
                return RevokeRequest.objects.create(**key, **fields), True
        except IntegrityError:
            existing = (
                RevokeRequest.objects.filter(**key, status__in=RevokeRequest.OPEN_STATUSES)
                .select_related("tenant", "client")
                .first()
            )
            if existing is not None:
                return existing, False
            # The open request closed between our insert and this read: insert again.
    raise IntegrityError("revoke request: the open request for this grant kept changing")


def revoke_request_approve(*, revoke: RevokeRequest, actor: User | None) -> RevokeRequest:
    """An admin approves a reader's request: it is queued (or MANUAL), once."""
    _require_admin(actor, revoke.tenant)
    status = Status.QUEUED if portal_can_write(revoke.tenant) else Status.MANUAL
    with transaction.atomic():
        changed = RevokeRequest.objects.filter(pk=revoke.pk, status=Status.PENDING_APPROVAL).update(
            status=status, decided_by=actor, decided_at=timezone.now()
        )
        revoke.refresh_from_db()
        if changed:
            _audit(revoke, AuditEvent.Action.REVOKE_APPROVED, actor=actor, status=revoke.status)
            _after_decision(revoke, actor=actor, queue=True)
    return revoke


def revoke_request_deny(*, revoke: RevokeRequest, actor: User | None) -> RevokeRequest:
    _require_admin(actor, revoke.tenant)
    now = timezone.now()
    return _close_by_decision(
        revoke,
        actor=actor,
        from_statuses=[Status.PENDING_APPROVAL],
        status=Status.DENIED,
        audit_action=AuditEvent.Action.REVOKE_DENIED,
        fields={"decided_by": actor, "decided_at": now, "finished_at": now},
    )


def revoke_request_cancel(*, revoke: RevokeRequest, actor: User | None) -> RevokeRequest:
    """The requester or an admin withdraws a request that has not started."""
    if actor is not None and revoke.requested_by_id != actor.pk:
        _require_admin(actor, revoke.tenant)
    return _close_by_decision(
        revoke,
        actor=actor,
        from_statuses=[Status.PENDING_APPROVAL, Status.QUEUED, Status.MANUAL],
        status=Status.CANCELLED,
        audit_action=AuditEvent.Action.REVOKE_CANCELLED,
        fields={"finished_at": timezone.now()},
    )


def _close_by_decision(
    revoke: RevokeRequest,
    *,
    actor: User | None,
    from_statuses: list[str],
    status: str,
    audit_action: str,
    fields: dict[str, Any],
) -> RevokeRequest:
    with transaction.atomic():
        changed = RevokeRequest.objects.filter(pk=revoke.pk, status__in=from_statuses).update(
            status=status, **fields
        )
        revoke.refresh_from_db()
        if changed:
            _audit(revoke, audit_action, actor=actor)
    return revoke


def revoke_restore(*, revoke: RevokeRequest, actor: User | None) -> RevokeRequest:
    """Undo a revoke that succeeded: a new RESTORE request that puts back what it removed."""
    _require_admin(actor, revoke.tenant)
    if revoke.action != Action.REVOKE or revoke.status != Status.SUCCEEDED:
        raise ValueError(
            f"only a revoke that succeeded can be undone (this one is {revoke.status})"
        )
    if RevokeRequest.objects.filter(restores=revoke, status=Status.SUCCEEDED).exists():
        raise ValueError(f"{revoke.value} of {revoke.client.display_name} is already restored")
    if not revoke.removed:
        raise ValueError("the revoke recorded nothing it removed, so there is nothing to restore")
    key = {
        "tenant": revoke.tenant,
        "client": revoke.client,
        "resource_app_id": str(revoke.resource_app_id),
        "kind": revoke.kind,
        "value": revoke.value,
        "consent": revoke.consent,
    }
    status = Status.QUEUED if portal_can_write(revoke.tenant) else Status.MANUAL
    with transaction.atomic():
        restore, created = _insert_or_open(
            key,
            action=Action.RESTORE,
            restores=revoke,
            status=status,
            requested_by=actor,
            decided_by=actor,
            decided_at=timezone.now(),
        )
        if created:
            _audit(restore, AuditEvent.Action.RESTORE_REQUESTED, actor=actor, restores=revoke.pk)
            _after_decision(restore, actor=actor, queue=True)
    return restore


def _after_decision(revoke: RevokeRequest, *, actor: User | None, queue: bool) -> None:
    if revoke.status == Status.QUEUED and queue:
        # Imported here: the task module imports this one.
        from tenants.tasks import execute_revoke

        execute_revoke.delay_on_commit(revoke.pk)
    elif revoke.status == Status.MANUAL:
        _audit_manual(revoke, actor=actor, reason="the portal may not write in this tenant")


def _require_admin(actor: User | None, tenant: Tenant) -> None:
    # None is the command line, run by whoever operates the portal.
    if actor is not None and role_in(actor, tenant) != Role.ADMIN:
        raise PermissionDenied("Only the tenant's admins can decide on revokes")


def _notify_admins(tenant: Tenant, revokes: list[RevokeRequest]) -> None:
    """Mail the tenant's portal admins that readers ask for revokes, with the pages."""
    recipients = [
        user.email
        for user in User.objects.filter(
            entra_tenant_id__iexact=str(tenant.tenant_id), is_active=True
        ).exclude(email="")
        # Roles are a JSON list; filtered here because SQLite cannot query inside one.
        if PORTAL_ADMIN in (user.entra_roles or [])
    ]
    if not recipients:
        # Nobody to mail: the request still waits on the tenant's page for an admin.
        logger.info("No portal admin of %s has an e-mail address to notify", tenant.tenant_id)
        return
    requester = revokes[0].requested_by
    who = (requester.get_full_name() or requester.get_username()) if requester else "A reader"
    if len(revokes) == 1:
        subject = f"Revoke request in {tenant.name}: {revokes[0].value} of {revokes[0].client.display_name}"
    else:
        subject = f"{len(revokes)} revoke requests in {tenant.name}"
    lines = [f"{who} asks to revoke these permissions in {tenant.name}:", ""]
    for revoke in revokes:
        lines += [f"- {_target(revoke)}", f"  {_application_url(revoke)}"]
    lines += ["", "Approve or deny each request on the application's page."]
    send_mail(subject, "\n".join(lines), None, recipients)


def _application_url(revoke: RevokeRequest) -> str:
    path = reverse(
        "tenants:application",
        kwargs={"tenant_id": revoke.tenant.tenant_id, "app_id": revoke.client.app_id},
    )
    return f"{settings.PORTAL_URL}{path}"


# -- bulk --------------------------------------------------------------------------------


def revoke_bulk_candidates(
    *, tenant: Tenant, client: ServicePrincipal | None = None
) -> list[GrantCandidate]:
    """Every unused or unexplained grant of the tenant (or of one client), exactly what a
    bulk revoke would take away. The portal's own app is left out: its write rights are
    "unused" until a tenant switches revoking on, and taking its read rights would stop
    every sync."""
    report = tenant_report(tenant=tenant, app_id=client.app_id if client else None)
    clients = {
        sp.object_id: sp
        for sp in ServicePrincipal.objects.filter(
            tenant=tenant,
            object_id__in=[app.service_principal_id for app in report.applications],
        )
    }
    return [
        GrantCandidate(
            client=clients[app.service_principal_id],
            resource_app_id=grant.resource_app_id,
            kind=grant.kind,
            value=grant.permission,
            consent=grant.consent,
            verdict=grant.verdict.value,
        )
        for app in report.applications
        if not is_portal_app(app.app_id)
        and (client is None or app.service_principal_id == client.object_id)
        for grant in app.grants
        if grant.is_revoke_candidate
    ]


def revoke_bulk_create(
    *, tenant: Tenant, actor: User | None, role: Role, client: ServicePrincipal | None = None
) -> list[RevokeRequest]:
    """One request per candidate (an open one is reused); readers' requests go to the
    admins in one e-mail rather than one each."""
    with transaction.atomic():
        results = [
            _create(
                tenant=tenant,
                client=candidate.client,
                resource_app_id=candidate.resource_app_id,
                kind=candidate.kind,
                value=candidate.value,
                consent=candidate.consent,
                actor=actor,
                role=role,
                queue=True,
            )
            for candidate in revoke_bulk_candidates(tenant=tenant, client=client)
        ]
        pending = [r for r, created in results if created and r.status == Status.PENDING_APPROVAL]
        if pending:
            _notify_admins(tenant, pending)
    return [revoke for revoke, _created in results]


# -- execution ---------------------------------------------------------------------------


class _NotYetGone(GraphError):
    """Graph still shows what was just removed; directory replication can lag, so a later
    attempt may find it gone."""


def revoke_request_execute(*, revoke_id: int, client: GraphClient | None = None) -> RevokeRequest:
    """Carry out a queued request (or take over one whose worker died); see the module
    docstring. A 403 sends it to MANUAL; a retryable error puts it back in the queue and
    re-raises; any other error fails it and re-raises."""
    if not _claim(revoke_id):
        return RevokeRequest.objects.select_related("tenant", "client").get(pk=revoke_id)
    revoke = RevokeRequest.objects.select_related("tenant", "client", "restores").get(pk=revoke_id)
    calls = _Calls(revoke, client or GraphClient(tenant_id=str(revoke.tenant.tenant_id)))
    try:
        if revoke.action == Action.REVOKE:
            _revoke(revoke, calls)
        else:
            _restore(revoke, calls)
    except GraphError as exc:
        if exc.status == 403:
            return _to_manual(revoke, str(exc))
        if exc.retryable:
            RevokeRequest.objects.filter(pk=revoke.pk).update(status=Status.QUEUED, error=str(exc))
        else:
            _finish(revoke, Status.FAILED, error=str(exc))
        raise
    except Exception as exc:
        _finish(revoke, Status.FAILED, error=f"{exc.__class__.__name__}: {exc}")
        raise
    return _finish(revoke, Status.SUCCEEDED)


def revoke_request_give_up(*, revoke_id: int) -> RevokeRequest:
    """Fail a request that stayed queued after its last retry, keeping the last error."""
    revoke = RevokeRequest.objects.select_related("tenant", "client").get(pk=revoke_id)
    return _finish(
        revoke,
        Status.FAILED,
        error=f"Gave up after repeated errors: {revoke.error}",
        from_status=Status.QUEUED,
    )


def _claim(revoke_id: int) -> bool:
    now = timezone.now()
    dead_before = now - timedelta(seconds=REVOKE_TIME_LIMIT)
    return bool(
        RevokeRequest.objects.filter(pk=revoke_id)
        .filter(Q(status=Status.QUEUED) | Q(status=Status.RUNNING, started_at__lt=dead_before))
        .update(status=Status.RUNNING, started_at=now, error="")
    )


class _Calls:
    """Graph calls for one request, each recorded on the row with Graph's request id."""

    def __init__(self, revoke: RevokeRequest, client: GraphClient) -> None:
        self.revoke = revoke
        self.client = client

    def __call__(
        self, method: str, path: str, *, body: dict[str, Any] | None = None
    ) -> requests.Response | None:
        """The response, or None for a 404 (the object is gone)."""
        needs = READ_NEEDS if method == "GET" else WRITE_NEEDS
        entry: dict[str, Any] = {"method": method, "path": _relative(path)}
        if body is not None:
            entry["body"] = body
        try:
            response = self.client.request(method, path, json=body, needs=needs)
        except GraphError as exc:
            self._record({**entry, "status": exc.status, "request_id": exc.request_id})
            if exc.status == 404:
                return None
            raise
        self._record(
            {
                **entry,
                "status": response.status_code,
                "request_id": response.headers.get("request-id", ""),
            }
        )
        return response

    def _record(self, entry: dict[str, Any]) -> None:
        self.revoke.graph_calls = [*self.revoke.graph_calls, entry]
        RevokeRequest.objects.filter(pk=self.revoke.pk).update(graph_calls=self.revoke.graph_calls)

    def collection(self, path: str) -> list[dict[str, Any]]:
        """All items of a collection, following nextLink; empty when its owner is gone."""
        items: list[dict[str, Any]] = []
        next_path: str | None = path
        while next_path:
            response = self(method="GET", path=next_path)
            if response is None:
                return items
            body = response.json()
            items.extend(body.get("value", []))
            next_path = body.get("@odata.nextLink")
        return items


def _relative(path: str) -> str:
    prefix = f"{settings.GRAPH_URL}/v1.0"
    return path[len(prefix) :] if path.startswith(prefix) else path


def _revoke(revoke: RevokeRequest, calls: _Calls) -> None:
    reference = _grant_rows(revoke).order_by("-pk").first()
    if reference is None:
        raise ValueError(f"no grant of {revoke.value} to {revoke.client.display_name} is recorded")
    client_id = str(revoke.client.object_id)
    resource_id = str(reference.resource_object_id)
    if revoke.kind == PermissionKind.APPLICATION:
        role_id = str(reference.permission_id)
        for assignment in _assignments(calls, client_id, resource_id, role_id):
            # Noted before the call: a worker lost right after the DELETE must still leave
            # a record of what was removed, for the undo.
            _remember(revoke, _assignment_entry(assignment))
            calls(
                "DELETE",
                f"/servicePrincipals/{resource_id}/appRoleAssignedTo/{assignment['id']}",
            )
        left = _assignments(calls, client_id, resource_id, role_id)
    else:
        consent_type = _consent_type(revoke.consent)
        for grant in _delegated(calls, client_id, resource_id, consent_type, revoke.value):
            _remember(revoke, _grant_entry(grant))
            remaining = _without((grant.get("scope") or "").split(), revoke.value)
            path = f"/oauth2PermissionGrants/{grant['id']}"
            if remaining:
                calls("PATCH", path, body={"scope": " ".join(remaining)})
            else:
                calls("DELETE", path)
        left = _delegated(calls, client_id, resource_id, consent_type, revoke.value)
    if left:
        raise _NotYetGone(
            f"Graph still shows {revoke.value} for {revoke.client.display_name} after removing it",
            retryable=True,
        )


def _restore(revoke: RevokeRequest, calls: _Calls) -> None:
    targets = _restore_targets(revoke)
    client_id = str(revoke.client.object_id)
    objects = _client_objects(calls, revoke.kind, client_id)
    for entry in targets:
        present = _holding(objects, entry, revoke.value)
        if present is None:
            present = _put_back(calls, entry, revoke.value, _matching(objects, entry))
        if present is not None:
            _remember(revoke, present)
    # Verification: everything the revoke removed must be back.
    objects = _client_objects(calls, revoke.kind, client_id)
    if any(_holding(objects, entry, revoke.value) is None for entry in targets):
        raise _NotYetGone(
            f"Graph does not show {revoke.value} for {revoke.client.display_name} yet",
            retryable=True,
        )


def _restore_targets(revoke: RevokeRequest) -> list[dict[str, Any]]:
    return list(revoke.restores.removed) if revoke.restores else []


def _client_objects(calls: _Calls, kind: str, client_id: str) -> list[dict[str, Any]]:
    """The client's app-role assignments, or its delegated grants."""
    if kind == PermissionKind.APPLICATION:
        return calls.collection(f"/servicePrincipals/{client_id}/appRoleAssignments")
    return _client_grants(calls, client_id)


def _matching(objects: list[dict[str, Any]], entry: dict[str, Any]) -> dict[str, Any] | None:
    """The object that holds (or would hold) what ``entry`` held: the assignment of the same
    role, or the delegated grant for the same resource, consent type and user."""

    def same(item: dict[str, Any], name: str) -> bool:
        return str(item.get(name) or "").lower() == str(entry.get(name) or "").lower()

    names = (
        ("resourceId", "appRoleId")
        if entry["type"] == "appRoleAssignment"
        else ("resourceId", "consentType", "principalId")
    )
    return next((item for item in objects if all(same(item, name) for name in names)), None)


def _holding(
    objects: list[dict[str, Any]], entry: dict[str, Any], value: str
) -> dict[str, Any] | None:
    found = _matching(objects, entry)
    if found is None:
        return None
    if entry["type"] == "appRoleAssignment":
        return _assignment_entry(found)
    return _grant_entry(found) if _has_scope(found, value) else None


def _put_back(
    calls: _Calls, entry: dict[str, Any], value: str, grant: dict[str, Any] | None
) -> dict[str, Any] | None:
    """Re-create the assignment, or add the scope back to the user's or everyone's grant
    (a new grant when the revoke deleted it); None when Graph no longer knows the client."""
    if entry["type"] == "appRoleAssignment":
        body = {key: entry[key] for key in ("principalId", "resourceId", "appRoleId")}
        response = calls(
            "POST", f"/servicePrincipals/{entry['resourceId']}/appRoleAssignedTo", body=body
        )
        return _assignment_entry(response.json()) if response is not None else None
    if grant is None:
        response = calls("POST", "/oauth2PermissionGrants", body=_new_grant_body(entry, value))
        return _grant_entry(response.json()) if response is not None else None
    scope = " ".join([*(grant.get("scope") or "").split(), value])
    if calls("PATCH", f"/oauth2PermissionGrants/{grant['id']}", body={"scope": scope}) is None:
        return None
    return _grant_entry({**grant, "scope": scope})


def _new_grant_body(entry: dict[str, Any], value: str) -> dict[str, Any]:
    body = {
        "clientId": entry["clientId"],
        "consentType": entry["consentType"],
        "resourceId": entry["resourceId"],
        "scope": value,
    }
    if entry["consentType"] == "Principal":
        body["principalId"] = entry["principalId"]
    return body


def _assignments(
    calls: _Calls, client_id: str, resource_id: str, role_id: str
) -> list[dict[str, Any]]:
    return [
        assignment
        for assignment in calls.collection(f"/servicePrincipals/{client_id}/appRoleAssignments")
        if assignment["resourceId"].lower() == resource_id.lower()
        and assignment["appRoleId"].lower() == role_id.lower()
    ]


def _delegated(
    calls: _Calls, client_id: str, resource_id: str, consent_type: str, value: str
) -> list[dict[str, Any]]:
    return [
        grant
        for grant in _client_grants(calls, client_id)
        if grant["resourceId"].lower() == resource_id.lower()
        and grant.get("consentType") == consent_type
        and _has_scope(grant, value)
    ]


def _client_grants(calls: _Calls, client_id: str) -> list[dict[str, Any]]:
    return calls.collection(f"/oauth2PermissionGrants?$filter=clientId eq '{client_id}'")


def _has_scope(grant: dict[str, Any], value: str) -> bool:
    return any(scope.lower() == value.lower() for scope in (grant.get("scope") or "").split())


def _without(scopes: Iterable[str], value: str) -> list[str]:
    # Scopes are case-insensitive in Entra; every other scope stays exactly as it was.
    return [scope for scope in scopes if scope.lower() != value.lower()]


def _consent_type(consent: str) -> str:
    return "Principal" if consent == Grant.Consent.USER else "AllPrincipals"


def _assignment_entry(assignment: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "appRoleAssignment",
        "id": assignment["id"],
        "principalId": assignment["principalId"],
        "resourceId": assignment["resourceId"],
        "appRoleId": assignment["appRoleId"],
    }


def _grant_entry(grant: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "oauth2PermissionGrant",
        "id": grant["id"],
        "clientId": grant["clientId"],
        "consentType": grant.get("consentType"),
        "principalId": grant.get("principalId"),
        "resourceId": grant["resourceId"],
        "scope": grant.get("scope") or "",
    }


def _remember(revoke: RevokeRequest, entry: dict[str, Any]) -> None:
    """Add a Graph object to ``removed`` (once: a resumed run meets the same objects)."""
    if any(known["id"] == entry["id"] for known in revoke.removed):
        return
    revoke.removed = [*revoke.removed, entry]
    RevokeRequest.objects.filter(pk=revoke.pk).update(removed=revoke.removed)


def _finish(
    revoke: RevokeRequest, status: str, *, error: str = "", from_status: str = Status.RUNNING
) -> RevokeRequest:
    with transaction.atomic():
        changed = RevokeRequest.objects.filter(pk=revoke.pk, status=from_status).update(
            status=status, error=error, finished_at=timezone.now()
        )
        revoke.refresh_from_db()
        if not changed:
            return revoke  # someone else closed it (a cancel, or a run that took it over)
        _audit(
            revoke,
            _OUTCOMES[(revoke.action, status)],
            graph_calls=len(revoke.graph_calls),
            **({"error": error} if error else {}),
        )
    if error:
        logger.warning("Revoke request %s failed: %s", revoke.pk, error)
    return revoke


_OUTCOMES = {
    (Action.REVOKE, Status.SUCCEEDED): AuditEvent.Action.REVOKE_SUCCEEDED,
    (Action.REVOKE, Status.FAILED): AuditEvent.Action.REVOKE_FAILED,
    (Action.RESTORE, Status.SUCCEEDED): AuditEvent.Action.RESTORE_SUCCEEDED,
    (Action.RESTORE, Status.FAILED): AuditEvent.Action.RESTORE_FAILED,
}


def _to_manual(revoke: RevokeRequest, error: str) -> RevokeRequest:
    with transaction.atomic():
        RevokeRequest.objects.filter(pk=revoke.pk, status=Status.RUNNING).update(
            status=Status.MANUAL, error=error
        )
        revoke.refresh_from_db()
        _audit_manual(revoke, actor=None, reason=error)
    return revoke


def _audit_manual(revoke: RevokeRequest, *, actor: User | None, reason: str) -> None:
    action = (
        AuditEvent.Action.REVOKE_MANUAL
        if revoke.action == Action.REVOKE
        else AuditEvent.Action.RESTORE_MANUAL
    )
    _audit(revoke, action, actor=actor, reason=reason, steps=manual_steps(revoke))


# -- after a sync ------------------------------------------------------------------------


def revokes_after_sync(*, tenant: Tenant, run: SyncRun) -> None:
    """In the sync's transaction: complete manual requests the new snapshot confirms, and
    mark revoked permissions that are granted again."""
    manual = list(
        RevokeRequest.objects.filter(tenant=tenant, status=Status.MANUAL).select_related(
            "client", "restores"
        )
    )
    succeeded = list(_unrestored_revokes(tenant, run).select_related("client"))
    if not manual and not succeeded:
        return
    current = _current_keys(tenant, [*manual, *succeeded])
    for revoke in manual:
        done = (_key(revoke) in current) == (revoke.action == Action.RESTORE)
        if done:
            _complete_manual(revoke, run)
    for revoke in succeeded:
        if _key(revoke) in current:
            _mark_regranted(revoke, run)


def _unrestored_revokes(tenant: Tenant, run: SyncRun) -> QuerySet[RevokeRequest]:
    """Revokes that succeeded before this run began reading, were not undone, and are not
    yet known to be re-granted: if this run sees their permission, it came back."""
    undoing = RevokeRequest.objects.filter(
        tenant=tenant,
        action=Action.RESTORE,
        status__in=[Status.SUCCEEDED, *RevokeRequest.OPEN_STATUSES],
    ).values("restores_id")
    return RevokeRequest.objects.filter(
        tenant=tenant,
        action=Action.REVOKE,
        status=Status.SUCCEEDED,
        regranted_in_run__isnull=True,
        finished_at__lt=run.started_at,
    ).exclude(pk__in=undoing)


def _current_keys(tenant: Tenant, revokes: list[RevokeRequest]) -> set[tuple[Any, ...]]:
    rows = Grant.objects.filter(
        tenant=tenant,
        removed_in_run__isnull=True,
        client_id__in={r.client_id for r in revokes},
    ).values_list("client_id", "resource_app_id", "kind", "value", "permission_id", "consent")
    keys = set()
    for client_id, resource_app_id, kind, value, permission_id, consent in rows:
        # An app role the resource does not publish is named by its id, as in the report.
        name = value or str(permission_id)
        keys.add((client_id, str(resource_app_id), kind, name.lower(), consent))
    return keys


def _key(revoke: RevokeRequest) -> tuple[Any, ...]:
    return (
        revoke.client_id,
        str(revoke.resource_app_id),
        revoke.kind,
        revoke.value.lower(),
        revoke.consent,
    )


def _complete_manual(revoke: RevokeRequest, run: SyncRun) -> None:
    fields: dict[str, Any] = {"status": Status.SUCCEEDED, "finished_at": timezone.now()}
    if revoke.action == Action.REVOKE and not revoke.removed:
        # What the admin removed by hand, as the grant rows knew it, so it can be undone.
        fields["removed"] = _entries_from_rows(
            revoke, _grant_rows(revoke).filter(removed_in_run=run)
        )
    RevokeRequest.objects.filter(pk=revoke.pk, status=Status.MANUAL).update(**fields)
    _audit(revoke, _OUTCOMES[(revoke.action, Status.SUCCEEDED)], confirmed_by_sync=run.pk)


def _mark_regranted(revoke: RevokeRequest, run: SyncRun) -> None:
    RevokeRequest.objects.filter(pk=revoke.pk).update(regranted_in_run=run)
    _audit(revoke, AuditEvent.Action.REGRANTED, sync_run=run.pk)


def _entries_from_rows(revoke: RevokeRequest, rows: QuerySet[Grant]) -> list[dict[str, Any]]:
    rows = rows.order_by("pk")
    client_id = str(revoke.client.object_id)
    if revoke.kind == PermissionKind.APPLICATION:
        return [
            {
                "type": "appRoleAssignment",
                "id": row.graph_object_id,
                "principalId": client_id,
                "resourceId": str(row.resource_object_id),
                "appRoleId": str(row.permission_id),
            }
            for row in rows
        ]
    return [
        {
            "type": "oauth2PermissionGrant",
            "id": row.graph_object_id,
            "clientId": client_id,
            "consentType": _consent_type(row.consent),
            "principalId": str(row.principal_id) if row.principal_id else None,
            "resourceId": str(row.resource_object_id),
            "scope": row.value,
        }
        for row in rows
    ]


# -- shared ------------------------------------------------------------------------------


def _grant_rows(revoke: RevokeRequest) -> QuerySet[Grant]:
    return _grant_rows_for(
        tenant=revoke.tenant_id,
        client=revoke.client_id,
        resource_app_id=str(revoke.resource_app_id),
        kind=revoke.kind,
        value=revoke.value,
        consent=revoke.consent,
    )


def _grant_rows_for(
    *,
    tenant: Tenant | int,
    client: ServicePrincipal | int,
    resource_app_id: str,
    kind: str,
    value: str,
    consent: str,
) -> QuerySet[Grant]:
    """Every grant row, current or past, of the permission a request names."""
    return Grant.objects.filter(
        _named(kind, value),
        tenant=tenant,
        client=client,
        resource_app_id=resource_app_id,
        kind=kind,
        consent=consent,
    )


def _named(kind: str, value: str) -> Q:
    named = Q(value=value)
    if kind == PermissionKind.APPLICATION:
        try:
            # An app role the resource does not publish is named by its id, as in the report.
            named |= Q(value="", permission_id=UUID(value))
        except ValueError:
            pass  # a name, not an id
    return named


def _audit(
    revoke: RevokeRequest, action: str, *, actor: User | None = None, **details: Any
) -> None:
    """One audit event about a request, named and numbered the same way every time."""
    audit_record(
        action=action,
        tenant=revoke.tenant,
        actor=actor,
        target=_target(revoke),
        details={"revoke_request": revoke.pk, **details},
    )


def _target(revoke: RevokeRequest) -> str:
    consent = ", user consents" if revoke.consent == Grant.Consent.USER else ""
    verb = "Restore " if revoke.action == Action.RESTORE else ""
    return f"{verb}{revoke.value} ({revoke.kind}{consent}) of {revoke.client.display_name}"
