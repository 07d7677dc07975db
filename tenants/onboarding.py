"""Connecting a tenant by admin consent, and what the portal's own app may do in it.

Onboarding: the portal sends an Entra administrator to the admin consent page of its own
app; Entra gives the app a service principal in the tenant with the permissions its
registration requires (read mode) and comes back with ``admin_consent=True`` (or an
error). That query string proves nothing (anyone can type it), so the portal then proves
the consent itself: a token for that tenant and one Graph read (its organization) must
succeed. Only then does it record the tenant and queue its first sync. The ``state`` is
single-use, and the caller's right to connect is checked again at the callback.

Health: which of the portal's permissions the tenant granted (as the latest sync saw
them), and which failures since the last good sync need someone to act.
"""

import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode
from uuid import UUID

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db.models import QuerySet

from portal.models import User
from tenants.access import Role, home_tenant, is_operator, role_in
from tenants.audit import audit_record
from tenants.entra_errors import Advice, consent_advice, first_code, token_advice
from tenants.graph import GraphClient, GraphError, Organization, organization_read
from tenants.models import AuditEvent, ServicePrincipal, SyncRun, Tenant
from tenants.portal_app import (
    OWN_PERMISSIONS,
    portal_can_write,
    portal_permissions_held,
    portal_service_principal,
)
from tenants.services import (
    TenantError,
    parse_guid,
    sync_run_request,
    tenant_add,
    tenant_names,
)

logger = logging.getLogger(__name__)

CONSENT_SCOPE = "https://graph.microsoft.com/.default"
STATE_SALT = "tenants.onboarding.admin-consent"
# Long enough for an administrator to read Microsoft's consent page (or sign in first),
# short enough that a leaked URL is soon useless.
STATE_MAX_AGE = 30 * 60
# A tenant as Entra's URL path takes it: a GUID or a domain name. Anything else could
# change the path of the consent URL.
TENANT_HINT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")
# How many failed runs since the last good sync the health page looks through.
FAILED_RUNS_CONSIDERED = 20
# A state's nonce waits in the cache (shared by every worker) until its callback spends it.
NONCE_CACHE_PREFIX = "tenants.onboarding.consent-nonce:"
# Entra's tokens can lag a consent given a moment ago and lack its roles (DESIGN.md): the
# proof asks for a fresh token after each of these waits (seconds) before it gives up.
PROOF_WAITS = (1.0, 2.0, 4.0)
proof_sleep: Callable[[float], None] = time.sleep


class ConsentError(Exception):
    """The consent callback cannot create a tenant; the message is for the person."""


class ConsentStateInvalid(ConsentError):
    """The callback's ``state`` is not one this portal gave this user recently, or it was
    used already."""


class ConsentNotAllowed(ConsentError):
    """The caller may not connect this tenant (any more)."""


class ConsentUnproven(ConsentError):
    """Entra's callback says "consented", but the portal cannot read the tenant."""


@dataclass
class ConsentRefused(ConsentError):
    """Entra came back with an error: what happened, and what to do about it."""

    error: str
    description: str
    code: str
    happened: str
    todo: str

    def __str__(self) -> str:
        return f"{self.error}: {self.description}"


# -- onboarding ---------------------------------------------------------------------------


def connects_any_tenant(user: User) -> bool:
    return user.is_superuser or is_operator(user)


def may_connect(user: User) -> bool:
    """Operators and superusers connect any tenant; anyone else only their own tenant,
    while it is not onboarded, or as its Portal.Admin (to grant consent again)."""
    if connects_any_tenant(user):
        return True
    if not _is_guid(user.entra_tenant_id or ""):
        return False
    tenant = home_tenant(user)
    return tenant is None or role_in(user, tenant) == Role.ADMIN


def connect_tenant_hint(user: User, asked: str) -> str | None:
    """The tenant whose consent page the user is sent to: their own, unless they may
    connect any (then what they asked for, or None for "the one you sign in to")."""
    if connects_any_tenant(user):
        return asked or None
    return user.entra_tenant_id


def tenant_hint_clean(value: str) -> str | None:
    """A tenant id or domain fit for the consent URL, or None."""
    value = value.strip()
    return value if TENANT_HINT.match(value) else None


def admin_consent_url(*, tenant_hint: str | None, redirect_uri: str, user: User) -> str:
    """Where an administrator grants the portal's app admin consent.

    ``state`` is signed and names the user, so that a callback carrying someone else's
    state (a link an attacker had a victim follow) is refused; it also names the tenant
    asked for, so that consent in another tenant is not taken for it. Its nonce waits in
    the cache until the callback spends it: each state works once.
    """
    nonce = secrets.token_urlsafe(16)
    cache.set(NONCE_CACHE_PREFIX + nonce, user.pk, timeout=STATE_MAX_AGE)
    state = signing.dumps(
        {"user": user.pk, "tenant": tenant_hint or "", "nonce": nonce}, salt=STATE_SALT
    )
    query = urlencode(
        {
            "client_id": settings.PORTAL_CLIENT_ID,
            "scope": CONSENT_SCOPE,
            "redirect_uri": redirect_uri,
            "state": state,
        }
    )
    return f"{settings.ENTRA_LOGIN_URL}/{tenant_hint or 'organizations'}/v2.0/adminconsent?{query}"


def admin_consent_state_ok(*, state: str, user: User, tenant_id: str | None) -> bool:
    """Whether ``state`` is this portal's, recent, this user's, not used before, and for
    ``tenant_id`` (None when Entra names no tenant, as in an error: nothing is created
    then). A state of this user is spent by this call, whatever the rest of the callback
    says: a declined consent's state cannot come back later with ``admin_consent=True``."""
    try:
        payload = signing.loads(state, salt=STATE_SALT, max_age=STATE_MAX_AGE)
    except signing.BadSignature:  # SignatureExpired is one
        return False
    if not isinstance(payload, dict) or payload.get("user") != user.pk:
        return False
    # delete() is True once: two callbacks racing with one state cannot both pass.
    if not cache.delete(NONCE_CACHE_PREFIX + str(payload.get("nonce", ""))):
        return False
    asked = str(payload.get("tenant", ""))
    if tenant_id is None:
        return True
    # A domain or "organizations" lets the administrator choose; a tenant id does not.
    try:
        return UUID(asked) == UUID(tenant_id)
    except ValueError:
        return not _is_guid(asked)


def _is_guid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True


def admin_consent_complete(
    *,
    params: dict[str, str],
    state_ok: bool,
    actor: User | None = None,
    client: GraphClient | None = None,
) -> Tenant:
    """Records the tenant Entra's callback names, once consent there is proven, and
    queues its first sync.

    Raises :class:`ConsentStateInvalid` for a state that failed its check,
    :class:`ConsentNotAllowed` when ``actor`` may not connect a tenant any more,
    :class:`ConsentRefused` when Entra reports an error instead of consent, and
    :class:`ConsentUnproven` when the portal cannot read the tenant after all.
    """
    if not state_ok:
        raise ConsentStateInvalid(
            "This link to the portal is not valid any more: it expired, was used already, "
            "was changed, or was started by someone else. Start connecting the tenant again."
        )
    # The right to connect may have ended since the start (a role removed in Entra).
    if actor is not None and not may_connect(actor):
        raise ConsentNotAllowed(
            "You may not connect this tenant: only its Portal.Admins connect it again, "
            "and only operators connect other tenants."
        )
    if params.get("error") or params.get("admin_consent", "").lower() != "true":
        raise consent_refused(params)
    try:
        tenant_id = parse_guid(params.get("tenant", ""), what="tenant id")
    except TenantError as exc:
        raise ConsentError(f"Entra named no valid tenant: {exc}") from exc
    organization = consent_proof(client or GraphClient(tenant_id=str(tenant_id)))
    tenant, created = tenant_add(tenant_id=str(tenant_id))
    names = tenant_names(tenant=tenant, organization=organization)
    if names:
        Tenant.objects.filter(pk=tenant.pk).update(**names)
        tenant.refresh_from_db(fields=list(names))
    audit_record(
        action=AuditEvent.Action.TENANT_CONNECTED,
        tenant=tenant,
        actor=actor,
        target=str(tenant.tenant_id),
        details={"new": created},
    )
    sync_run_request(tenant=tenant, trigger=SyncRun.Trigger.CONNECT, requested_by=actor)
    return tenant


def consent_proof(client: GraphClient) -> Organization:
    """The tenant's organization, read with a token of the portal's app in that tenant:
    proof that its admin consented (before consent the app has no service principal
    there, and Entra issues no token; without the read permissions Graph answers 403).

    A token issued just after consent may lack the new roles, so a 403 is asked again
    with a fresh token after each of :data:`PROOF_WAITS`. Raises :class:`ConsentUnproven`.
    """
    for wait in (*PROOF_WAITS, None):
        try:
            return organization_read(client)
        except GraphError as exc:
            if exc.status != 403 or wait is None:
                logger.warning("Consent in tenant %s not proven: %s", client.tenant_id, exc)
                raise ConsentUnproven(
                    f"Entra did not confirm the consent in tenant {client.tenant_id}: {exc} "
                    "Nothing was connected. If an administrator consented a moment ago, "
                    "connect the tenant again in a minute."
                ) from exc
        client.forget_token()
        proof_sleep(wait)
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def consent_refused(params: dict[str, str]) -> ConsentRefused:
    error = params.get("error") or "no_consent"
    description = params.get("error_description", "")
    code = first_code(description)
    advice = consent_advice(code=code, error=error)
    return ConsentRefused(
        error=error,
        description=description,
        code=code,
        happened=advice.problem,
        todo=advice.fix,
    )


# -- health -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortalPermission:
    value: str
    enables: str
    granted: bool


@dataclass(frozen=True)
class Problem:
    """A failure that needs someone to act: what it is, and the fix."""

    code: str
    problem: str
    fix: str
    # The fix is connecting the tenant again (admin consent).
    reconnect: bool
    run: SyncRun


@dataclass(frozen=True)
class Health:
    synced: bool
    can_revoke: bool
    permissions: list[PortalPermission]
    last_sync: SyncRun | None
    last_failed: SyncRun | None
    problems: list[Problem]
    # The portal's own service principal in the tenant, as the latest sync saw it.
    portal_service_principal: ServicePrincipal | None


ACCESS_DENIED = "access-denied"
MISSING_READ = Advice(
    "The portal's app lacks a permission it needs to read this tenant.",
    "Grant admin consent again: connecting the tenant again asks for the read permissions.",
    reconnect=True,
)


def tenant_health(tenant: Tenant) -> Health:
    held = portal_permissions_held(tenant)
    failed = list(_failed_since_last_good(tenant).order_by("-pk")[:FAILED_RUNS_CONSIDERED])
    return Health(
        synced=tenant.last_good_sync_id is not None,
        can_revoke=portal_can_write(tenant),
        permissions=[
            PortalPermission(value=p.value, enables=p.enables, granted=p.value in held)
            for p in OWN_PERMISSIONS
        ],
        last_sync=tenant.last_good_sync,
        last_failed=SyncRun.objects.filter(tenant=tenant, status=SyncRun.Status.FAILED).first(),
        problems=run_problems(failed),
        portal_service_principal=portal_service_principal(tenant),
    )


def _failed_since_last_good(tenant: Tenant) -> QuerySet[SyncRun]:
    # A failure before the last good sync has been fixed since (or passed by itself).
    runs = SyncRun.objects.filter(tenant=tenant, status=SyncRun.Status.FAILED)
    if tenant.last_good_sync_id is not None:
        runs = runs.filter(pk__gt=tenant.last_good_sync_id)
    return runs


def run_problems(runs: list[SyncRun]) -> list[Problem]:
    """The known problems in ``runs`` (newest first), each once, with its newest run."""
    problems: dict[str, Problem] = {}
    for run in runs:
        code = _problem_code(run.error)
        if code and code not in problems:
            advice = MISSING_READ if code == ACCESS_DENIED else token_advice(code)
            problems[code] = Problem(code, advice.problem, advice.fix, advice.reconnect, run)
    return list(problems.values())


def _problem_code(error: str) -> str:
    """The problem's key: the AADSTS code of a token error ("AADSTS" when it has none),
    ACCESS_DENIED for a read that Graph refused, or "" for anything else (throttling,
    an outage: they pass by themselves)."""
    if "AADSTS" in error or "Entra refused a token" in error:
        return first_code(error) or "AADSTS"
    return ACCESS_DENIED if ": access denied (" in error else ""
