"""Password sign-ins (Django admin's): a user name is locked after repeated failures.

Each wrong password for a user name counts, from whatever address it came (the per-address
rate limit in portal/middleware.py cannot stop a spray from many addresses).
ADMIN_LOCKOUT_FAILURES of them within ADMIN_LOCKOUT_MINUTES lock the name for
ADMIN_LOCKOUT_MINUTES: :class:`LockoutModelBackend` then refuses it before any password is
checked, the right one included. Names are counted whether or not such a user exists, so a
lock tells nobody which names are real. Counts live in the cache: Redis, shared by every
worker, whenever DEBUG is off (portal/wsgi.py).
"""

import hashlib
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.signals import user_login_failed
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver
from django.http import HttpRequest

from portal.middleware import count_hit


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


@receiver(user_login_failed)
def _password_refused(
    sender: object, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    username = str(credentials.get("username") or "")
    if username and not sign_in_locked(username=username):
        sign_in_failure_record(username=username)
