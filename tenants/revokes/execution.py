"""Carrying out a queued request in Graph, as the Celery task ``execute_revoke`` does.

Graph is eventually consistent (DESIGN.md): a read right after a write may show the
state before it, for seconds, sometimes minutes. So a request works from what the last
sync recorded (the assignment or delegated grant ids) and from its own record of what it
wrote, never from a listing read a moment ago.

A revoke (:func:`revoke_request_execute`):

1. claims the request (QUEUED -> RUNNING, or a RUNNING one whose worker must be dead). A
   revoke of the portal's own write permission waits until no other request of the
   tenant is queued or running (:mod:`tenants.revokes.guard`).
2. reads, by id, each object the last sync recorded. Graph not finding one *before any
   write of this request* fails the request with the reason ("Graph no longer has
   assignment X: it may have been removed outside the portal; the next sync will tell"),
   and nothing is written: a revoke never "succeeds" on something it did not see.
3. notes each object in ``removed`` before the call, then writes: DELETE the assignment;
   PATCH the delegated grant with its other scopes, or DELETE it when none is left. Every
   call and its answer land in ``graph_calls`` at once. A DELETE that answers 404 is
   success: the read just before showed the object, so it is gone (someone else removed
   it a moment ago, or an earlier attempt of this request did).
4. verifies by id, waiting out replication lag with backoff for ``REVOKE_VERIFY_SECONDS``
   at most: 404 (or the scope gone from the grant) means done. If Graph still shows it
   then, the request goes back to the queue with that error, and the retry only verifies.

A write is never repeated: a retried or resumed request skips every object whose write
``graph_calls`` records as answered. Only when a worker died between sending a write and
recording its answer, and Graph still shows the object, is that (idempotent) write sent
once more.

A restore puts back what its revoke noted in ``removed``: it POSTs the assignment again,
adds the scope back to its grant (PATCH), or creates the grant again (POST) where the
revoke deleted it. Graph's "already exists" answers (400 "Permission being assigned
already exists on the object" on ``appRoleAssignedTo``, 409
``Request_MultipleObjectsWithSameKeyValue`` on ``oauth2PermissionGrants``) mean it is
there: success. It is verified by id the same way.

A grant of a missing permission (action GRANT) is written the same way, its targets
planned from what the last sync recorded (:mod:`tenants.revokes.missing`): the POST of the
assignment, the scope added to the client's admin-consent grant, or that grant created
(a 409 for a grant no sync had seen: the client's grants are read to find it).

One delegated grant holds several scopes, and a read by id soon after the portal's own
write to it may show the scopes before that write. So before computing a grant's new
scope list, the scopes that the portal's other requests took out of it (or put back)
within ``REVOKE_LAG_SECONDS`` are applied to what the read shows: two revokes of one
grant's scopes in a row never put the first one back.
"""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from permissions.models import PermissionKind
from portal.celery import send_on_commit
from tenants.graph import PRIORITY_HIGH, GraphClient, GraphError
from tenants.models import RevokeRequest, SyncRun
from tenants.portal_app import READ_NEEDS, WRITE_NEEDS
from tenants.revokes._shared import (
    Action,
    Status,
    grant_rows,
    new_grant_body,
    removed_entries,
    request_finished,
    restore_targets,
    without,
)
from tenants.revokes.guard import portal_grant
from tenants.revokes.manual import to_manual
from tenants.revokes.missing import grant_plan_for
from tenants.services import sync_run_request
from tenants.slots import GrantSlot
from tenants.tasks import REVOKE_SOFT_TIME_LIMIT, REVOKE_TIME_LIMIT
from tenants.tasks import execute_revoke as execute_revoke_task

logger = logging.getLogger(__name__)

# A revoke of the portal's own write permission asks again this often whether the other
# requests of its tenant have ended.
SELF_REVOKE_RETRY_SECONDS = 30
# The longest single wait between two verification reads.
MAX_VERIFY_WAIT = 30.0
# Graph's answers to creating what exists already.
ALREADY_EXISTS_CODE = "Request_MultipleObjectsWithSameKeyValue"
ALREADY_ASSIGNED = "already exists"


def _revoke_client(revoke: RevokeRequest) -> GraphClient:
    """Graph for a revoke: an admin is waiting, so Graph should serve it before syncs
    (x-ms-throttle-priority), and its waits must end within the task's soft limit, less a
    minute (or, with short limits, half of it) to record the outcome."""
    return GraphClient(
        tenant_id=str(revoke.tenant.tenant_id),
        priority=PRIORITY_HIGH,
        time_budget=max(REVOKE_SOFT_TIME_LIMIT - 60, REVOKE_SOFT_TIME_LIMIT / 2),
    )


class _NotYetGone(GraphError):
    """Graph still shows what was just removed (or not yet what was put back) after the
    verification's patience; replication can lag, so a retry may find it done."""


class _Unseen(GraphError):
    """The last sync recorded an object that Graph cannot find: nothing was written."""


def revoke_request_execute(*, revoke_id: int, client: GraphClient | None = None) -> RevokeRequest:
    """Carry out a queued request (or take over one whose worker died); see the module
    docstring. A 403 sends it to MANUAL; a retryable error puts it back in the queue and
    re-raises; any other error fails it and re-raises."""
    if _waits_for_others(revoke_id):
        return RevokeRequest.objects.select_related("tenant", "client").get(pk=revoke_id)
    if not _claim(revoke_id):
        return RevokeRequest.objects.select_related("tenant", "client").get(pk=revoke_id)
    revoke = RevokeRequest.objects.select_related("tenant", "client", "restores").get(pk=revoke_id)
    calls = _Calls(revoke, client or _revoke_client(revoke))
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
    """After a request succeeded, sync its tenant again once Graph's listings have caught
    up (``REVOKE_LAG_SECONDS``): a sync at once would read the state before the revoke.
    The one-open-sync rule makes a burst of revokes one sync."""
    if revoke.status != Status.SUCCEEDED:
        return None
    undo = revoke.action == RevokeRequest.Action.RESTORE
    return sync_run_request(
        tenant=revoke.tenant,
        trigger=SyncRun.Trigger.UNDO if undo else SyncRun.Trigger.REVOKE,
        # Who decided it: the admin who approved a reader's request, or who clicked.
        requested_by=revoke.decided_by or revoke.requested_by,
        countdown=settings.REVOKE_LAG_SECONDS or None,
    )


def revoke_requests_resume_abandoned() -> int:
    """Queue again the requests whose worker died mid-way (acks_late redelivers the
    message, but it may arrive while the request still looks alive); the execution
    takes over only those running for longer than the task's hard time limit. Requests
    queued as long (since their approval or their last attempt) are sent again too: their
    message was lost (a broker restarted without persistence, or down at the approval).
    A request that two messages reach is claimed once."""
    cutoff = timezone.now() - timedelta(seconds=REVOKE_TIME_LIMIT)
    abandoned = list(
        RevokeRequest.objects.annotate(since=Coalesce("started_at", "decided_at", "created_at"))
        .filter(
            Q(status=Status.RUNNING, started_at__lt=cutoff)
            | Q(status=Status.QUEUED, since__lt=cutoff)
        )
        .values_list("pk", flat=True)
    )
    for revoke_id in abandoned:
        send_on_commit(execute_revoke_task, revoke_id)
    return len(abandoned)


def _waits_for_others(revoke_id: int) -> bool:
    """A queued revoke of the portal's own write permission runs last: while another
    request of its tenant is queued or running it stays queued and asks again later."""
    revoke = RevokeRequest.objects.select_related("tenant", "client").get(pk=revoke_id)
    if revoke.status != Status.QUEUED or revoke.action != Action.REVOKE:
        return False
    if portal_grant(revoke.client, _slot(revoke)) != "write":
        return False
    others = [
        other
        for other in RevokeRequest.objects.filter(
            tenant=revoke.tenant_id, status__in=[Status.QUEUED, Status.RUNNING]
        )
        .exclude(pk=revoke.pk)
        .select_related("client")
    ]
    # Two revokes of the portal's write permissions wait for the rest, not for each other.
    blocking = [
        other
        for other in others
        if other.action != Action.REVOKE or portal_grant(other.client, _slot(other)) != "write"
    ]
    if not blocking:
        return False
    RevokeRequest.objects.filter(pk=revoke.pk, status=Status.QUEUED).update(
        error=f"Waits for {len(blocking)} other request(s) of {revoke.tenant.name} to end first."
    )
    send_on_commit(execute_revoke_task, revoke.pk, countdown=SELF_REVOKE_RETRY_SECONDS)
    return True


def _slot(revoke: RevokeRequest) -> GrantSlot:
    return GrantSlot.from_request(revoke)


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


# -- Graph calls, each recorded ----------------------------------------------------------


@dataclass(frozen=True)
class _Answer:
    status: int
    body: dict[str, Any] = field(default_factory=dict)
    code: str = ""
    message: str = ""


class _Calls:
    """Graph calls for one request, each recorded on the row with Graph's request id."""

    def __init__(self, revoke: RevokeRequest, client: GraphClient) -> None:
        self.revoke = revoke
        self.client = client

    def __call__(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        accept: Iterable[int] = (404,),
    ) -> _Answer:
        """Graph's answer; an error whose status is in ``accept`` is answered, not raised."""
        needs = READ_NEEDS if method == "GET" else WRITE_NEEDS
        entry: dict[str, Any] = {"method": method, "path": _relative(path)}
        if body is not None:
            entry["body"] = body
        try:
            response = self.client.request(method, path, json=body, needs=needs)
        except GraphError as exc:
            self._record({**entry, "status": exc.status, "request_id": exc.request_id})
            if exc.status in set(accept):
                return _Answer(exc.status or 0, code=exc.code, message=str(exc))
            raise
        self._record(
            {
                **entry,
                "status": response.status_code,
                "request_id": response.headers.get("request-id", ""),
            }
        )
        return _Answer(response.status_code, response.json() if response.content else {})

    def _record(self, entry: dict[str, Any]) -> None:
        self.revoke.graph_calls = [*self.revoke.graph_calls, entry]
        RevokeRequest.objects.filter(pk=self.revoke.pk).update(graph_calls=self.revoke.graph_calls)

    def answered(self, method: str, path: str, statuses: Iterable[int]) -> bool:
        """Whether this request already sent ``method path`` and Graph answered with one
        of ``statuses``: the write is done, only its verification may be left."""
        wanted = set(statuses)
        return any(
            call["method"] == method and call["path"] == path and call.get("status") in wanted
            for call in self.revoke.graph_calls
        )

    def wait(self, attempt: int) -> float:
        """Back off before the next verification read; returns the seconds waited."""
        delay = min(2.0**attempt, MAX_VERIFY_WAIT)
        self.client.sleep(delay)
        return delay


def _relative(path: str) -> str:
    """A path as recorded: nextLinks come absolute, the record keeps them under /v1.0."""
    prefix = f"{settings.GRAPH_URL}/v1.0"
    return path[len(prefix) :] if path.startswith(prefix) else path


# -- revoke --------------------------------------------------------------------------------


def _revoke(revoke: RevokeRequest, calls: _Calls) -> None:
    noted = {entry["id"]: entry for entry in revoke.removed}
    # What the last sync recorded; a delegated grant's scope is read from Graph before the write.
    recorded = grant_rows(revoke).filter(removed_in_run__isnull=True)
    fresh = [
        entry
        for entry in removed_entries(revoke, recorded, with_scope=False)
        if entry["id"] not in noted
    ]
    if not noted and not fresh:
        raise ValueError(f"no grant of {revoke.value} to {revoke.client.display_name} is recorded")
    # Every object the last sync saw must still be there before anything is written:
    # one that is missing fails the request as it stands.
    seen = [_seen(revoke, calls, entry) for entry in fresh]
    for entry in seen:
        _remember(revoke, entry)
    for entry in seen:
        _remove(revoke, calls, entry)
    for entry in noted.values():
        # Noted by an earlier attempt: written already, or maybe (a worker died between
        # the call and its answer); only what Graph still shows is written again.
        if not _removal_answered(revoke, calls, entry) and not _gone(revoke, calls, entry):
            _remove(revoke, calls, entry)
    _verify(
        calls,
        revoke.removed,
        lambda entry: _gone(revoke, calls, entry),
        f"Graph still shows {revoke.value} for {revoke.client.display_name} after removing it",
    )


def _seen(revoke: RevokeRequest, calls: _Calls, entry: dict[str, Any]) -> dict[str, Any]:
    """The object as Graph has it now, read by id; raises :class:`_Unseen` when Graph
    cannot find it (or the grant no longer holds the scope)."""
    answer = calls("GET", _object_path(entry))
    where = "outside the portal; the next sync will tell"
    if entry["type"] == "appRoleAssignment":
        if answer.status == 404:
            raise _Unseen(
                f"Graph no longer has assignment {entry['id']} ({revoke.value} of "
                f"{revoke.client.display_name}): it may have been removed {where}",
                retryable=False,
            )
        return entry
    if answer.status == 404:
        raise _Unseen(
            f"Graph no longer has delegated grant {entry['id']} ({revoke.value} of "
            f"{revoke.client.display_name}): it may have been removed {where}",
            retryable=False,
        )
    scopes = _scopes_now(revoke, entry["id"], answer.body.get("scope"))
    if not _holds(scopes, revoke.value):
        raise _Unseen(
            f"Graph's delegated grant {entry['id']} no longer holds {revoke.value} of "
            f"{revoke.client.display_name}: it may have been removed {where}",
            retryable=False,
        )
    return {**entry, "scope": " ".join(scopes)}


def _remove(revoke: RevokeRequest, calls: _Calls, entry: dict[str, Any]) -> None:
    method, body = _removal(revoke, entry)
    # 404: the object went between the read and this write, so it is gone: success.
    calls(method, _object_path(entry), body=body)


def _removal(revoke: RevokeRequest, entry: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """The write that takes the request's permission out of ``entry``: a function of the
    entry alone, so a resumed request sends exactly what the first attempt did."""
    if entry["type"] == "appRoleAssignment":
        return "DELETE", None
    remaining = without(entry["scope"].split(), revoke.value)
    if remaining:
        return "PATCH", {"scope": " ".join(remaining)}
    return "DELETE", None


def _removal_answered(revoke: RevokeRequest, calls: _Calls, entry: dict[str, Any]) -> bool:
    method, _body = _removal(revoke, entry)
    return calls.answered(method, _object_path(entry), (200, 204, 404))


def _gone(revoke: RevokeRequest, calls: _Calls, entry: dict[str, Any]) -> bool:
    """Graph (read by id) no longer shows the request's permission in ``entry``."""
    answer = calls("GET", _object_path(entry))
    if answer.status == 404:
        return True
    if entry["type"] == "appRoleAssignment":
        return False
    return not _holds((answer.body.get("scope") or "").split(), revoke.value)


def _object_path(entry: dict[str, Any]) -> str:
    if entry["type"] == "appRoleAssignment":
        return f"/servicePrincipals/{entry['resourceId']}/appRoleAssignedTo/{entry['id']}"
    return f"/oauth2PermissionGrants/{entry['id']}"


# -- restore -------------------------------------------------------------------------------


def _restore(restore: RevokeRequest, calls: _Calls) -> None:
    """Put in place what a restore puts back, or what a grant gives."""
    for target in _targets(restore):
        if _put_back_entry(restore, target) is None:
            entry = _put_back(restore, calls, target)
            _remember(restore, entry)
    _verify(
        calls,
        [entry for entry in restore.removed if entry.get("id")],
        lambda entry: _back(restore, calls, entry),
        f"Graph does not show {restore.value} for {restore.client.display_name} yet",
    )


def _targets(request: RevokeRequest) -> list[dict[str, Any]]:
    """A restore's: what its revoke removed. A grant's: what its plan names, from what the
    last sync recorded now (the client's delegated grant may have changed since the click)."""
    if request.action != Action.GRANT:
        return restore_targets(request)
    plan = grant_plan_for(request)
    if plan.problem:
        raise ValueError(plan.problem)
    return plan.targets


def _put_back_entry(restore: RevokeRequest, target: dict[str, Any]) -> dict[str, Any] | None:
    """What this restore already put back for ``target`` (an earlier attempt), if anything."""
    return next((entry for entry in restore.removed if _same_slot(entry, target)), None)


def _same_slot(entry: dict[str, Any], target: dict[str, Any]) -> bool:
    """The same assignment role, or the delegated grant of the same resource and user."""
    names = (
        ("type", "resourceId", "appRoleId")
        if target["type"] == "appRoleAssignment"
        else ("type", "resourceId", "consentType", "principalId")
    )
    return all(
        str(entry.get(name) or "").lower() == str(target.get(name) or "").lower() for name in names
    )


def _put_back(restore: RevokeRequest, calls: _Calls, target: dict[str, Any]) -> dict[str, Any]:
    """Write ``target`` back; returns it as Graph has it now (``id`` None where Graph
    said it exists and cannot be found by id)."""
    if target["type"] == "appRoleAssignment":
        return _assign_again(calls, target)
    if not without(target["scope"].split(), restore.value):
        # The revoke deleted the grant: create it again.
        return _grant_again(restore, calls, target)
    answer = calls("GET", _object_path(target))
    if answer.status == 404:
        return _grant_again(restore, calls, target)  # deleted since, by someone else
    return _add_scope(restore, calls, target, answer.body.get("scope"))


def _assign_again(calls: _Calls, target: dict[str, Any]) -> dict[str, Any]:
    body = {key: target[key] for key in ("principalId", "resourceId", "appRoleId")}
    answer = calls(
        "POST",
        f"/servicePrincipals/{target['resourceId']}/appRoleAssignedTo",
        body=body,
        accept=(400,),
    )
    if answer.status != 400:
        return _assignment_entry(answer.body)
    if ALREADY_ASSIGNED not in answer.message.lower():
        raise GraphError(answer.message, retryable=False, status=400, code=answer.code)
    # Graph has it already (an earlier attempt, or someone else): success. Its id, for
    # the record, from the client's assignments on that resource.
    found = next(
        (
            item
            for item in _assignments_on(calls, target["principalId"], target["resourceId"])
            if str(item.get("appRoleId", "")).lower() == target["appRoleId"].lower()
        ),
        None,
    )
    return _assignment_entry(found) if found else {**body, "type": "appRoleAssignment", "id": None}


def _assignments_on(calls: _Calls, client_id: str, resource_id: str) -> list[dict[str, Any]]:
    """A client's app-role assignments on one resource: the ``resourceId`` filter (the one
    Graph supports on this collection) and pages of 999."""
    items: list[dict[str, Any]] = []
    path: str | None = (
        f"/servicePrincipals/{client_id}/appRoleAssignments"
        f"?$filter=resourceId eq {resource_id}&$top=999"
    )
    while path:
        answer = calls("GET", path)
        if answer.status == 404:
            return items
        items.extend(answer.body.get("value", []))
        path = answer.body.get("@odata.nextLink")
    return items


def _grant_again(restore: RevokeRequest, calls: _Calls, target: dict[str, Any]) -> dict[str, Any]:
    answer = calls(
        "POST",
        "/oauth2PermissionGrants",
        body=new_grant_body(target, restore.value),
        accept=(409,),
    )
    if answer.status != 409:
        return _grant_entry(answer.body)
    if answer.code != ALREADY_EXISTS_CODE:
        raise GraphError(answer.message, retryable=False, status=409, code=answer.code)
    # A grant for this client, resource and user exists already (an earlier attempt, or a
    # consent since): it is there. Graph names a grant by its client, resource and user,
    # so it is the one the revoke deleted; make sure it holds the scope.
    if not target.get("id"):
        # A grant of a missing scope: no sync had seen that grant, so find it by client.
        found = _grant_of(calls, target)
        if found is None:
            raise GraphError(answer.message, retryable=True, status=409, code=answer.code)
        return _add_scope(restore, calls, _grant_entry(found), found.get("scope"))
    current = calls("GET", _object_path(target))
    if current.status == 404:
        return {**target, "scope": restore.value, "id": None}
    return _add_scope(restore, calls, target, current.body.get("scope"))


def _grant_of(calls: _Calls, target: dict[str, Any]) -> dict[str, Any] | None:
    """The client's delegated grant on the target's resource for the target's user (Graph
    keeps one per client, resource and user), from the client's grants, page by page."""
    path: str | None = f"/servicePrincipals/{target['clientId']}/oauth2PermissionGrants"
    while path:
        answer = calls("GET", path)
        if answer.status == 404:
            return None
        for item in answer.body.get("value", []):
            if _same_slot({**item, "type": target["type"]}, target):
                return item
        path = answer.body.get("@odata.nextLink")
    return None


def _add_scope(
    restore: RevokeRequest, calls: _Calls, target: dict[str, Any], read: str | None
) -> dict[str, Any]:
    scopes = _scopes_now(restore, target["id"], read)
    if not _holds(scopes, restore.value):
        scopes = [*scopes, restore.value]
        calls("PATCH", _object_path(target), body={"scope": " ".join(scopes)}, accept=())
    return {**target, "scope": " ".join(scopes)}


def _back(restore: RevokeRequest, calls: _Calls, entry: dict[str, Any]) -> bool:
    """Graph (read by id) shows what the restore put back."""
    answer = calls("GET", _object_path(entry))
    if answer.status == 404:
        return False
    if entry["type"] == "appRoleAssignment":
        return True
    return _holds((answer.body.get("scope") or "").split(), restore.value)


# -- what the portal's own recent writes did to a grant's scopes ------------------------


def _scopes_now(revoke: RevokeRequest, grant_id: str, read: str | None) -> list[str]:
    """A delegated grant's scopes as a read by id shows them, corrected by what the
    portal's other requests wrote to that grant within the lag window (the read may show
    the scopes before those writes)."""
    scopes = list(dict.fromkeys((read or "").split()))
    for action, value in _recent_writes(revoke, grant_id):
        if action == Action.REVOKE:
            scopes = without(scopes, value)
        elif not _holds(scopes, value):
            scopes.append(value)
    return scopes


def _recent_writes(revoke: RevokeRequest, grant_id: str) -> list[tuple[str, str]]:
    """(action, scope) of the portal's other requests that wrote to ``grant_id`` while
    running now or within REVOKE_LAG_SECONDS, oldest first."""
    since = timezone.now() - timedelta(seconds=settings.REVOKE_LAG_SECONDS)
    others = (
        RevokeRequest.objects.filter(
            tenant=revoke.tenant_id, client=revoke.client_id, kind=PermissionKind.DELEGATED
        )
        .filter(Q(status__in=RevokeRequest.OPEN_STATUSES) | Q(finished_at__gte=since))
        .exclude(pk=revoke.pk)
        .order_by("pk")
    )
    return [(other.action, other.value) for other in others if _wrote_to(other, grant_id)]


def _wrote_to(other: RevokeRequest, grant_id: str) -> bool:
    """Whether ``other`` changed the grant: a PATCH or DELETE of it that Graph carried
    out, or (a restore) a POST that made it again under the same id."""
    path = f"/oauth2PermissionGrants/{grant_id}"
    for call in other.graph_calls:
        status = call.get("status") or 0
        if call["method"] in ("PATCH", "DELETE") and call["path"] == path and 200 <= status < 300:
            return True
        if (
            call["method"] == "POST"
            and call["path"] == "/oauth2PermissionGrants"
            and status in (201, 409)
            and any(entry.get("id") == grant_id for entry in other.removed)
        ):
            return True
    return False


# -- verification --------------------------------------------------------------------------


def _verify(
    calls: _Calls, entries: list[dict[str, Any]], done: Callable[[dict[str, Any]], bool], what: str
) -> None:
    """Read each entry by id until ``done`` says so, backing off, for REVOKE_VERIFY_SECONDS
    at most; then raise a retryable :class:`_NotYetGone` (the retry only verifies)."""
    pending = list(entries)
    waited = 0.0
    attempt = 0
    while True:
        pending = [entry for entry in pending if not done(entry)]
        if not pending:
            return
        if waited + min(2.0**attempt, MAX_VERIFY_WAIT) > settings.REVOKE_VERIFY_SECONDS:
            raise _NotYetGone(f"{what} (waited {waited:.0f} s for replication)", retryable=True)
        waited += calls.wait(attempt)
        attempt += 1


# -- the record ----------------------------------------------------------------------------


def _holds(scopes: Iterable[str], value: str) -> bool:
    return any(scope.lower() == value.lower() for scope in scopes)


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
    if entry.get("id") and any(known.get("id") == entry["id"] for known in revoke.removed):
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
        request_finished(revoke, status, **details)
    if error:
        logger.warning("Revoke request %s failed: %s", revoke.pk, error)
    return revoke
