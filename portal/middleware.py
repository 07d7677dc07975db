"""The portal's own middleware: request ids, the Content Security Policy, sign-in rate limits."""

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
from django.core.cache import cache
from django.core.signals import request_finished
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from portal.logging import request_id_var, user_id_var

logger = logging.getLogger("portal.request")

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
        # The path only: query strings carry OAuth codes and states.
        logger.info(
            "%s %s %s %.0fms",
            request.method,
            request.path,
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
