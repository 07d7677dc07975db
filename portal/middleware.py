"""The portal's own middleware: request ids, the Content Security Policy, Cache-Control,
sign-in rate limits, sessions that survive a database outage, session lifetimes."""

import functools
import ipaddress
import logging
import re
import time
import uuid
from collections.abc import Callable
from ipaddress import IPv4Network, IPv6Network
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.signals import user_logged_in
from django.contrib.auth.views import redirect_to_login
from django.contrib.sessions.backends.base import SessionBase, UpdateError
from django.contrib.sessions.exceptions import SessionInterrupted
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.core.cache import cache
from django.core.signals import request_finished
from django.db import DatabaseError
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_cache_control
from django_htmx.http import HttpResponseClientRedirect

from portal.logging import redact, request_id_var, user_id_var

logger = logging.getLogger("portal.request")
session_logger = logging.getLogger("portal.sessions")

GetResponse = Callable[[HttpRequest], HttpResponse]
IPNetwork = IPv4Network | IPv6Network

# A caller's id is kept only if it cannot forge log lines or fill the disk.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class RequestIdMiddleware:
    """Gives each request an id (the caller's X-Request-ID if sane) for its log lines, logs
    one line per request, and returns the id in the response's X-Request-ID."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        # Kept until the response is closed (_forget_request): Django logs 4xx and 5xx
        # answers after the last middleware has returned.
        request_id_var.set(request_id)
        user_id_var.set(None)
        started = time.monotonic()
        response = self.get_response(request)
        # The path only: query strings carry OAuth codes and states; redacted, because
        # unsubscribe links carry their token in the path (and caplog-like handlers that
        # skip the console's filters see the record as it is made).
        logger.info(
            "%s %s %s %.0fms",
            request.method,
            redact(request.path),
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        response["X-Request-ID"] = request_id
        return response

    def process_view(self, request: HttpRequest, *args: object) -> None:
        # Runs after AuthenticationMiddleware: the user is known from here on.
        if request.user.is_authenticated:
            user_id_var.set(request.user.pk)


@receiver(request_finished)
def _forget_request(**kwargs: object) -> None:
    # The thread serves other requests, or runs other code, next.
    request_id_var.set(None)
    user_id_var.set(None)


def content_security_policy() -> str:
    """No inline script or style anywhere; forms may post to the portal, and the sign-in
    form's redirect goes on to Entra (browsers apply form-action to redirects too)."""
    login = urlsplit(settings.ENTRA_LOGIN_URL)
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"frame-ancestors 'none'; form-action 'self' {login.scheme}://{login.netloc}; "
        "base-uri 'self'"
    )


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # Django's technical 404 and 500 pages (DEBUG only) style themselves inline.
        if not (settings.DEBUG and response.status_code in (404, 500)):
            response.headers.setdefault("Content-Security-Policy", content_security_policy())
        return response


class CacheControlMiddleware:
    """`Cache-Control: no-store, private` on every response to a signed-in user (pages, htmx
    fragments, redirects) and on every download: what a tenant's admin or reader saw must
    not wait in a shared computer's browser cache, or in a proxy's, for the next person."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        download = response.get("Content-Disposition", "").lower().startswith("attachment")
        if download or (user is not None and user.is_authenticated):
            # Also drops a view's "public"; no-store outranks any max-age left.
            patch_cache_control(response, no_store=True, private=True)
        return response


# Sign-in starts, Entra's callbacks and Django admin's password form: what a password
# sprayer or a flood of authorization requests hits. Method None: any method.
RATE_LIMITED_VIEWS: dict[str, str | None] = {
    "microsoft_login": "POST",
    "microsoft_callback": None,
    "admin:login": "POST",
}
RATE_LIMIT_WINDOW = 60


class LoginRateLimitMiddleware:
    """At most LOGIN_RATE_LIMIT requests a minute per client address to each sign-in view;
    then 429 until the minute is over. Counts live in the cache: Redis (CACHE_URL), which
    the web server requires without DEBUG, so that every worker counts together."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, *args: object) -> HttpResponse | None:
        view = request.resolver_match.view_name if request.resolver_match else ""
        if view not in RATE_LIMITED_VIEWS:
            return None
        method = RATE_LIMITED_VIEWS[view]
        if method is not None and request.method != method:
            return None
        address = client_ip(request)
        hits = count_hit(f"login-rate:{view}:{address}")
        if hits <= settings.LOGIN_RATE_LIMIT:
            return None
        logger.warning("Sign-in rate limit reached on %s by %s", view, address)
        response = render(request, "429.html", status=429)
        response["Retry-After"] = str(RATE_LIMIT_WINDOW)
        return response


def count_hit(key: str, window: int = RATE_LIMIT_WINDOW) -> int:
    """Counts one hit on ``key`` in a window of ``window`` seconds from its first hit."""
    # add() is atomic, so is incr() on Redis.
    if cache.add(key, 1, timeout=window):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.add(key, 1, timeout=window)
        return 1


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, unless that is one of TRUSTED_PROXIES; then the
    rightmost X-Forwarded-For entry that is not a trusted proxy. Proxies append the address
    they saw; whatever stands further left is the client's own say, so it counts for nothing."""
    remote = request.META.get("REMOTE_ADDR", "")
    proxies = _networks(tuple(settings.TRUSTED_PROXIES))
    if not _is_proxy(remote, proxies):
        return remote
    client = remote
    for hop in reversed(request.headers.get("X-Forwarded-For", "").split(",")):
        hop = hop.strip()
        if not hop:
            continue
        if not _is_proxy(hop, proxies):
            return hop[:64]  # the address that the outermost trusted proxy saw
        client = hop
    return client  # proxies all the way: the leftmost of them


@functools.lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    # Checked at start-up (settings.py): every entry parses.
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


def _is_proxy(address: str, proxies: tuple[IPNetwork, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped  # an IPv4 client as a dual-stack socket reports it
    return any(ip in network for network in proxies)


# When the session's user signed in, and when they last made a request (seconds since the
# epoch, in the session itself).
class SessionMiddleware(DjangoSessionMiddleware):
    """Django's, except when the database fails as the session is saved.

    Django reads any failed update of a session as "deleted by a concurrent request" and
    answers 400 Bad Request: during a database outage (seen in the soak, PostgreSQL
    restarted) a page that had rendered became a bare 400. The portal answers its own
    "unavailable for a moment" page (templates/500.html) with 503 instead; the session is
    as it was, and the next request saves it."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        try:
            return super().process_response(request, response)
        except SessionInterrupted as interrupted:
            if not _database_failed(interrupted):
                raise
            session_logger.warning("Session not saved: the database is unavailable")
            return render(None, "500.html", status=503)


def _database_failed(interrupted: SessionInterrupted) -> bool:
    """Whether the session's update failed because the database did (the db backend turns
    a DatabaseError into UpdateError, which the middleware turns into SessionInterrupted)."""
    update = interrupted.__context__
    return isinstance(update, UpdateError) and isinstance(update.__context__, DatabaseError)


SESSION_STARTED_KEY = "portal_signed_in_at"
SESSION_SEEN_KEY = "portal_seen_at"
# The last request is written down at most this often: not one session save per request.
SEEN_RESOLUTION = 60


class SessionLifetimeMiddleware:
    """Ends a session SESSION_MAX_HOURS after its sign-in, however busy, and after
    SESSION_IDLE_MINUTES without a request: roles come from the id token at sign-in, so a
    session must not outlive a role removed in Entra by long. The user is signed out and
    sent to sign in again (htmx requests with HX-Redirect, so the whole page goes).

    Django's own expiry moves forward with every save of the session, which this
    middleware makes; it is only the outer bound (SESSION_COOKIE_AGE = SESSION_MAX_HOURS)."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            ended = session_ended(request.session, time.time())
            if ended:
                return self._sign_out(request, ended)
        response = self.get_response(request)
        if request.user.is_authenticated:
            _session_stamp(request.session, time.time())
        return response

    def _sign_out(self, request: HttpRequest, ended: str) -> HttpResponse:
        session_logger.info("Session of user %s ended: %s", request.user.pk, ended)
        logout(request)
        messages.info(request, "Your session has ended: please sign in again.")
        htmx = getattr(request, "htmx", None)
        if htmx:
            # The page the fragment belongs to, when it is the portal's own.
            page = htmx.current_url_abs_path or "/"
            return HttpResponseClientRedirect(redirect_to_login(page)["Location"])
        return redirect_to_login(request.get_full_path())


def session_ended(session: SessionBase, now: float) -> str:
    """Why the session is over ("12 hours since sign-in", "no request for 120 minutes"),
    or "" while it lasts."""
    started = session.get(SESSION_STARTED_KEY)
    seen = session.get(SESSION_SEEN_KEY)
    if started is None or seen is None:
        return ""  # from before these clocks: they start with this request
    if now - started > settings.SESSION_MAX_HOURS * 3600:
        return f"{settings.SESSION_MAX_HOURS} hours since sign-in"
    if now - seen > settings.SESSION_IDLE_MINUTES * 60:
        return f"no request for {settings.SESSION_IDLE_MINUTES} minutes"
    return ""


@receiver(user_logged_in)
def _session_clocks_start(request: HttpRequest | None, **kwargs: object) -> None:
    # At sign-in, in the session that login() has just renewed.
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_STARTED_KEY] = request.session[SESSION_SEEN_KEY] = time.time()


def _session_stamp(session: SessionBase, now: float) -> None:
    if SESSION_STARTED_KEY not in session:
        # A session from before these clocks existed: they start now.
        session[SESSION_STARTED_KEY] = session[SESSION_SEEN_KEY] = now
    elif now - session.get(SESSION_SEEN_KEY, 0) >= SEEN_RESOLUTION:
        session[SESSION_SEEN_KEY] = now
