"""Carrying out a queued request in Graph, as the Celery task ``execute_revoke`` does.

:func:`revoke_request_execute`

1. claims the request (QUEUED -> RUNNING, or a RUNNING one whose worker must be dead),
2. reads the grant's current Graph objects, so a resumed run redoes only what is left,
3. deletes the assignment, or takes the scope out of each delegated grant (PATCH with
   the other scopes, DELETE when none is left), noting each object in ``removed`` first,
4. reads again: it succeeds only once Graph no longer shows the grant.

A restore puts back, the same way, what its revoke noted in ``removed``.
"""

import logging
from datetime import timedelta
from typing import Any

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from permissions.models import PermissionKind
from tenants.graph import GraphClient, GraphError
from tenants.models import RevokeRequest, SyncRun
from tenants.portal_app import READ_NEEDS, WRITE_NEEDS
from tenants.revokes._shared import (
    OUTCOMES,
    Action,
    Status,
    audit,
    consent_type,
    grant_rows,
    new_grant_body,
    restore_targets,
    without,
)
from tenants.revokes.manual import to_manual
from tenants.services import sync_run_request
from tenants.tasks import REVOKE_TIME_LIMIT
from tenants.tasks import execute_revoke as execute_revoke_task

logger = logging.getLogger(__name__)


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
            return to_manual(revoke, str(exc))
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


def revoke_request_resync(*, revoke: RevokeRequest) -> SyncRun | None:
    """After a request succeeded, sync its tenant again: the tenant's pages show grants as
    the last sync saw them (the one-open-sync rule makes a burst of revokes one sync)."""
    if revoke.status != Status.SUCCEEDED:
        return None
    return sync_run_request(tenant=revoke.tenant, trigger=SyncRun.Trigger.SCHEDULE)


def revoke_requests_resume_abandoned() -> int:
    """Queue again the requests whose worker died mid-way (acks_late redelivers the
    message, but it may arrive while the request still looks alive); the execution
    takes over only those running for longer than the task's hard time limit."""
    cutoff = timezone.now() - timedelta(seconds=REVOKE_TIME_LIMIT)
    abandoned = list(
        RevokeRequest.objects.filter(status=Status.RUNNING, started_at__lt=cutoff).values_list(
            "pk", flat=True
        )
    )
    for revoke_id in abandoned:
        execute_revoke_task.delay_on_commit(revoke_id)
    return len(abandoned)


def _claim(revoke_id: int) -> bool:
    now = timezone.now()
    # A request RUNNING for longer than the task's hard limit has lost its worker (the
    # limit would have killed it), so this run may take it over.
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
    reference = grant_rows(revoke).order_by("-pk").first()
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
        graph_consent = consent_type(revoke.consent)
        for grant in _delegated(calls, client_id, resource_id, graph_consent, revoke.value):
            _remember(revoke, _grant_entry(grant))
            remaining = without((grant.get("scope") or "").split(), revoke.value)
            path = f"/oauth2PermissionGrants/{grant['id']}"
            if remaining:
                calls("PATCH", path, body={"scope": " ".join(remaining)})
            else:
                calls("DELETE", path)
        left = _delegated(calls, client_id, resource_id, graph_consent, revoke.value)
    if left:
        raise _NotYetGone(
            f"Graph still shows {revoke.value} for {revoke.client.display_name} after removing it",
            retryable=True,
        )


def _restore(revoke: RevokeRequest, calls: _Calls) -> None:
    targets = restore_targets(revoke)
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
        response = calls("POST", "/oauth2PermissionGrants", body=new_grant_body(entry, value))
        return _grant_entry(response.json()) if response is not None else None
    scope = " ".join([*(grant.get("scope") or "").split(), value])
    if calls("PATCH", f"/oauth2PermissionGrants/{grant['id']}", body={"scope": scope}) is None:
        return None
    return _grant_entry({**grant, "scope": scope})


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
    calls: _Calls, client_id: str, resource_id: str, graph_consent: str, value: str
) -> list[dict[str, Any]]:
    return [
        grant
        for grant in _client_grants(calls, client_id)
        if grant["resourceId"].lower() == resource_id.lower()
        and grant.get("consentType") == graph_consent
        and _has_scope(grant, value)
    ]


def _client_grants(calls: _Calls, client_id: str) -> list[dict[str, Any]]:
    return calls.collection(f"/oauth2PermissionGrants?$filter=clientId eq '{client_id}'")


def _has_scope(grant: dict[str, Any], value: str) -> bool:
    return any(scope.lower() == value.lower() for scope in (grant.get("scope") or "").split())


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
        details: dict[str, Any] = {"graph_calls": len(revoke.graph_calls)}
        if error:
            details["error"] = error
        audit(revoke, OUTCOMES[(revoke.action, status)], **details)
    if error:
        logger.warning("Revoke request %s failed: %s", revoke.pk, error)
    return revoke
