"""Bulk revokes: every grant that nothing needs, one request each.

The list an admin is shown is the list that goes: the page carries each grant it showed
(a :attr:`GrantCandidate.token`) and the POST names exactly those; nothing is recomputed
in their place. A grant that stopped being a candidate in between (now needed, no longer
held, already revoked) is skipped with a word, never replaced by another.

Bulk revokes leave out the portal itself, Microsoft's first-party apps and managed
identities (:func:`tenants.revokes.guard.bulk_exclusion`); each of their grants can still
be revoked on its own.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from django.db import transaction

from portal.models import User
from tenants.access import Role
from tenants.models import RevokeRequest, ServicePrincipal, Tenant
from tenants.report import tenant_report
from tenants.revokes._shared import Status
from tenants.revokes.decisions import notify_admins, request_create, revoked_since_sync_slots
from tenants.revokes.guard import bulk_exclusion
from tenants.slots import GrantSlot


@dataclass(frozen=True)
class GrantCandidate:
    """A grant that nothing needs, as a bulk revoke would take it away."""

    client: ServicePrincipal
    slot: GrantSlot
    verdict: str

    @property
    def token(self) -> str:
        """The grant as the bulk form carries it back: client object id and slot."""
        return bulk_token(str(self.client.object_id), self.slot)


@dataclass(frozen=True)
class LeftOut:
    """An application whose unneeded grants a bulk revoke leaves alone, and why."""

    client: ServicePrincipal
    reason: str
    grants: int


@dataclass(frozen=True)
class BulkPlan:
    candidates: list[GrantCandidate]
    left_out: list[LeftOut]


@dataclass(frozen=True)
class BulkResult:
    # One per grant revoked (an open request for it is reused, not doubled).
    requests: list[RevokeRequest]
    # Why each grant that was shown but is no longer a candidate was left alone.
    skipped: list[str]


def bulk_token(client_object_id: str, slot: GrantSlot) -> str:
    return json.dumps(
        [client_object_id.lower(), slot.resource_app_id, slot.kind, slot.value, slot.consent]
    )


def bulk_token_parse(token: str) -> tuple[str, GrantSlot]:
    """(client object id, slot) from a form's token; ValueError for anything else."""
    try:
        parts = json.loads(token)
    except ValueError:
        raise ValueError("a bulk revoke named a grant the portal did not show") from None
    if not (isinstance(parts, list) and len(parts) == 5 and all(isinstance(p, str) for p in parts)):
        raise ValueError("a bulk revoke named a grant the portal did not show")
    client_id, resource, kind, value, consent = parts
    return client_id.lower(), GrantSlot(resource, kind, value, consent)


def revoke_bulk_plan(*, tenant: Tenant, client: ServicePrincipal | None = None) -> BulkPlan:
    """Every unused or unexplained grant of the tenant (or of one client) that a bulk
    revoke takes away, and the applications it leaves out. A grant already revoked since
    the last sync is no candidate: the sync still shows what is gone."""
    report = tenant_report(tenant=tenant, app_id=client.app_id if client else None)
    clients = {
        sp.object_id: sp
        for sp in ServicePrincipal.objects.filter(
            tenant=tenant,
            object_id__in=[app.service_principal_id for app in report.applications],
        )
    }
    revoked = revoked_since_sync_slots(tenant)
    candidates: list[GrantCandidate] = []
    left_out: list[LeftOut] = []
    for app in report.applications:
        sp = clients[app.service_principal_id]
        if client is not None and sp.pk != client.pk:
            continue
        unneeded = [grant for grant in app.grants if grant.is_revoke_candidate]
        reason = bulk_exclusion(sp)
        if reason is not None:
            if unneeded:
                left_out.append(LeftOut(client=sp, reason=reason, grants=len(unneeded)))
            continue
        for grant in unneeded:
            slot = GrantSlot(
                resource_app_id=grant.resource_app_id,
                kind=grant.kind,
                value=grant.permission,
                consent=grant.consent,
            )
            if (sp.pk, slot) not in revoked:
                candidates.append(GrantCandidate(client=sp, slot=slot, verdict=grant.verdict.value))
    return BulkPlan(candidates=candidates, left_out=left_out)


def revoke_bulk_candidates(
    *, tenant: Tenant, client: ServicePrincipal | None = None
) -> list[GrantCandidate]:
    """What a bulk revoke of the tenant (or of one client) would take away now."""
    return revoke_bulk_plan(tenant=tenant, client=client).candidates


def revoke_bulk_create(
    *,
    tenant: Tenant,
    actor: User | None,
    role: Role,
    shown: Sequence[tuple[str, GrantSlot]],
    client: ServicePrincipal | None = None,
    queue: bool = True,
) -> BulkResult:
    """One request per grant in ``shown`` (client object id, slot: exactly the list the
    admin was shown) that is still a candidate; the others are skipped with the reason.
    Readers' requests go to the admins in one e-mail rather than one each."""
    current = {
        (str(candidate.client.object_id).lower(), candidate.slot): candidate
        for candidate in revoke_bulk_candidates(tenant=tenant, client=client)
    }
    with transaction.atomic():
        results: list[tuple[RevokeRequest, bool]] = []
        skipped: list[str] = []
        for object_id, slot in dict.fromkeys(shown):
            candidate = current.get((object_id, slot))
            if candidate is None:
                skipped.append(_skip_reason(tenant, object_id, slot))
                continue
            results.append(
                request_create(
                    tenant=tenant,
                    client=candidate.client,
                    slot=candidate.slot,
                    actor=actor,
                    role=role,
                    queue=queue,
                )
            )
        pending = [r for r, created in results if created and r.status == Status.PENDING_APPROVAL]
        if pending:
            notify_admins(tenant, pending)
    return BulkResult(requests=[revoke for revoke, _created in results], skipped=skipped)


def _skip_reason(tenant: Tenant, object_id: str, slot: GrantSlot) -> str:
    sp = (
        ServicePrincipal.objects.filter(tenant=tenant, object_id=object_id).first()
        if _is_guid(object_id)
        else None
    )
    name = sp.display_name if sp else "an application the portal no longer sees"
    return f"{slot.value} ({slot.kind}) of {name} is no longer a revoke candidate: left as it is."


def _is_guid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True
