"""Password sign-ins (Django admin's): locked after repeated failures, and with failed
Entra sign-ins, written to the audit trail and the log.

Each wrong password for a user name counts, from whatever address it came (the per-address
rate limit in portal/middleware.py cannot stop a spray from many addresses).
ADMIN_LOCKOUT_FAILURES of them within ADMIN_LOCKOUT_MINUTES lock the name for
ADMIN_LOCKOUT_MINUTES: :class:`LockoutModelBackend` then refuses it before any password is
checked, the right one included. Names are counted whether or not such a user exists, so a
lock tells nobody which names are real. Counts live in the cache: Redis, shared by every
worker, whenever DEBUG is off (portal/wsgi.py).

Every Django admin sign-in, every failed sign-in and every lock is an audit event of no
tenant (superusers see them in the audit trail) and a ``portal.signins`` log line: the user
name, the client's address, the reason; never a password or a token.
"""

import hashlib
import logging
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver
from django.http import HttpRequest

from portal.logging import redact
from portal.middleware import client_ip, count_hit
from portal.models import User
from tenants.audit import audit_record
from tenants.models import AuditEvent

logger = logging.getLogger(__name__)

VIA_ADMIN = "Django admin"
VIA_ENTRA = "Entra"
WRONG_PASSWORD = "wrong user name or password"
LOCKED = "user name locked"
# Longer reasons (an exception's text) are cut: the audit trail is no place for tracebacks.
_MAX_REASON = 300


def now() -> float:
    """The clock the locks are read with (the tests move it)."""
    return time.time()


def _name_key(username: str) -> str:
    # One count for every spelling that could name the same account; hashed, so the cache
    # keys hold no user name and any characters are fine.
    return hashlib.sha256(username.strip().casefold().encode()).hexdigest()


def _lockout_seconds() -> int:
    return settings.ADMIN_LOCKOUT_MINUTES * 60


def sign_in_locked(*, username: str) -> bool:
    """Whether ``username`` is locked after too many failed passwords."""
    until = cache.get(f"sign-in-lock:{_name_key(username)}")
    return until is not None and now() < until


def sign_in_failure_record(*, username: str) -> bool:
    """Counts one wrong password for ``username``; True when that locks the name."""
    key = _name_key(username)
    failures = count_hit(f"sign-in-failures:{key}", _lockout_seconds())
    if failures < settings.ADMIN_LOCKOUT_FAILURES:
        return False
    cache.set(f"sign-in-lock:{key}", now() + _lockout_seconds(), timeout=_lockout_seconds())
    # Once the lock is over, the name starts again with a full allowance.
    cache.delete(f"sign-in-failures:{key}")
    return True


class LockoutModelBackend(ModelBackend):
    """Django's password backend, which refuses a locked user name outright."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        name = username if username is not None else kwargs.get(get_user_model().USERNAME_FIELD)
        if name and sign_in_locked(username=str(name)):
            # PermissionDenied, not None: no backend after this one checks the password.
            raise PermissionDenied("This user name is locked after failed sign-ins")
        return super().authenticate(request, username, password, **kwargs)


def sign_in_failed(*, request: HttpRequest | None, username: str, via: str, reason: str) -> None:
    """Writes down one failed sign-in: who tried (if known), from where, through what, why."""
    address = client_ip(request) if request is not None else ""
    reason = redact(reason)[:_MAX_REASON]
    if username:
        # repr(): a user name is whatever was typed, newlines and all.
        logger.warning(
            "%s sign-in failed for %r from %s: %s", via, username, address or "?", reason
        )
    else:
        logger.warning("%s sign-in failed from %s: %s", via, address or "?", reason)
    audit_record(
        action=AuditEvent.Action.SIGN_IN_FAILED,
        target=username[:150],
        details={"via": via, "client": address, "reason": reason},
    )


def password_sign_in_failed(*, request: HttpRequest | None, username: str) -> None:
    """A password refused for ``username``: counted toward its lock, audited and logged."""
    if username and sign_in_locked(username=username):
        sign_in_failed(request=request, username=username, via=VIA_ADMIN, reason=LOCKED)
        return
    sign_in_failed(request=request, username=username, via=VIA_ADMIN, reason=WRONG_PASSWORD)
    if not username or not sign_in_failure_record(username=username):
        return
    address = client_ip(request) if request is not None else ""
    logger.warning(
        "Django admin user name %r locked for %s minutes after %s failed sign-ins (last from %s)",
        username,
        settings.ADMIN_LOCKOUT_MINUTES,
        settings.ADMIN_LOCKOUT_FAILURES,
        address or "?",
    )
    audit_record(
        action=AuditEvent.Action.SIGN_IN_LOCKED,
        target=username[:150],
        details={
            "client": address,
            "failures": settings.ADMIN_LOCKOUT_FAILURES,
            "minutes": settings.ADMIN_LOCKOUT_MINUTES,
        },
    )


def staff_signed_in(*, request: HttpRequest, user: User) -> None:
    """A sign-in to Django admin with a password: audited and logged; the failures end."""
    address = client_ip(request)
    username = user.get_username()
    logger.info("Django admin sign-in: %r from %s", username, address or "?")
    audit_record(
        action=AuditEvent.Action.STAFF_SIGNED_IN,
        actor=user,
        target=username,
        details={"client": address},
    )
    cache.delete(f"sign-in-failures:{_name_key(username)}")


@receiver(user_login_failed)
def _password_refused(
    sender: object, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # Django sends this for every authenticate() that no backend accepts; only Django
    # admin's form signs in with a password (people sign in with Entra).
    username = str(credentials.get("username") or "")
    password_sign_in_failed(request=request, username=username)


@receiver(user_logged_in)
def _signed_in(sender: object, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    match = getattr(request, "resolver_match", None)
    if request is not None and match is not None and match.view_name == "admin:login":
        staff_signed_in(request=request, user=user)
