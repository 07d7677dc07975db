"""Signed-in sessions reading the portal's pages, bounded in count and time.

Sessions are made directly in the database (the portal signs people in through Entra
only): one user each, half of them operators who see every tenant, half admins of one
small tenant. Every loop stops at its deadline or its request count, whichever comes first.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

# As long as gunicorn lets a request run (its --timeout): longer is no answer at all.
REQUEST_TIMEOUT = 60
# Loops stop at this many requests a session even if their time has not run out.
MAX_REQUESTS_PER_SESSION = 2000


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic() when the request was sent
    seconds: float
    status: int  # 0: no answer (connection refused, timeout)
    url: str
    body: str = ""  # the start of an error page, to tell a clear one
    # A download the server cut off mid-stream (the database gone under it): the client
    # sees a failed download, the portal's only honest answer once bytes are sent.
    cut_off: bool = False


@dataclass(frozen=True)
class Session:
    cookie: str  # "sessionid=..."
    urls: tuple[str, ...]


@dataclass
class Samples:
    items: list[Sample] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, sample: Sample) -> None:
        with self.lock:
            self.items.append(sample)

    def between(self, start: float, end: float) -> list[Sample]:
        with self.lock:
            return [s for s in self.items if start <= s.at < end]


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (share 0.95 for p95); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass(frozen=True)
class Figures:
    served: int
    errors: int
    p50: float
    p95: float
    p99: float

    @classmethod
    def of(cls, samples: Iterable[Sample]) -> Figures:
        items = list(samples)
        seconds = [s.seconds for s in items]
        return cls(
            served=len(items),
            errors=sum(1 for s in items if not 200 <= s.status < 400),
            p50=percentile(seconds, 0.50),
            p95=percentile(seconds, 0.95),
            p99=percentile(seconds, 0.99),
        )

    def line(self, name: str) -> str:
        return (
            f"soak: {name}: {self.served} requests, p50 {self.p50 * 1000:.0f} ms, "
            f"p95 {self.p95 * 1000:.0f} ms, p99 {self.p99 * 1000:.0f} ms, {self.errors} errors"
        )


def fetch(http: requests.Session, url: str, cookie: str = "") -> Sample:
    """One GET; the session cookie is sent as a header, since the portal (DEBUG off) marks
    it Secure and this is plain http on loopback."""
    started = time.monotonic()
    headers = {"Cookie": cookie} if cookie else {}
    try:
        response = http.get(url, headers=headers, timeout=REQUEST_TIMEOUT, allow_redirects=False)
    except requests.exceptions.ChunkedEncodingError:
        return Sample(started, time.monotonic() - started, 0, url, cut_off=True)
    except requests.RequestException:
        return Sample(started, time.monotonic() - started, 0, url)
    body = "" if response.status_code < 400 else response.text[:300]
    return Sample(started, time.monotonic() - started, response.status_code, url, body)


def read_loop(
    base_url: str,
    session: Session,
    samples: Samples,
    *,
    until: float,
    max_requests: int = MAX_REQUESTS_PER_SESSION,
    pause: float = 0.0,
    stop: Callable[[], bool] = lambda: False,
) -> None:
    """One session reading its pages in turn until ``until`` (monotonic), ``max_requests``
    or ``stop()``."""
    with requests.Session() as http:
        http.trust_env = False
        for number in range(max_requests):
            if time.monotonic() >= until or stop():
                return
            url = session.urls[number % len(session.urls)]
            samples.add(fetch(http, base_url + url, session.cookie))
            if pause:
                time.sleep(pause)


def load(
    base_url: str, sessions: list[Session], *, seconds: float, max_requests: int
) -> list[Sample]:
    """Every session at once for ``seconds``; the samples of all of them."""
    samples = Samples()
    until = time.monotonic() + seconds
    with ThreadPoolExecutor(len(sessions)) as pool:
        futures = [
            pool.submit(read_loop, base_url, s, samples, until=until, max_requests=max_requests)
            for s in sessions
        ]
        for future in futures:
            future.result()
    return samples.items


# -- users and their sessions, made in the database -------------------------------------


def sessions_make(count: int, *, operator_tenant: str, small_tenants: list[str]) -> list[Session]:
    """``count`` users with a session each: operators (every tenant) and small tenants'
    admins in turn, each reading the pages its role shows."""
    from django.conf import settings
    from django.test import Client

    from portal.models import User
    from tenants.access import PORTAL_ADMIN, PORTAL_OPERATOR
    from tenants.models import ServicePrincipal, Tenant

    tenants = {str(t.tenant_id): t for t in Tenant.objects.all()}
    made = []
    for number in range(count):
        operator = number % 2 == 0
        home = operator_tenant if operator else small_tenants[number % len(small_tenants)]
        user, _ = User.objects.get_or_create(
            username=f"soak-user-{number:02d}",
            defaults={
                "entra_tenant_id": home,
                "entra_roles": [PORTAL_OPERATOR if operator else PORTAL_ADMIN],
            },
        )
        client = Client()
        client.force_login(user, backend="portal.signins.LockoutModelBackend")
        cookie = (
            f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        )
        tenant = tenants[operator_tenant if operator else home]
        apps = ServicePrincipal.objects.filter(tenant=tenant).order_by("pk")
        app_ids = [str(a) for a in apps.values_list("app_id", flat=True)[1 : 1 + 3]]
        base = f"/tenants/{tenant.tenant_id}"
        urls = ["/", f"{base}/", *(f"{base}/applications/{a}/" for a in app_ids)]
        urls += [f"{base}/report.csv", f"{base}/audit/", "/"]
        if not operator:
            urls.append(f"{base}/report.json")
        made.append(Session(cookie, tuple(urls)))
    return made


def sample_errors(samples: Iterable[Sample]) -> dict[str, Any]:
    """Error answers by status and page, for the report."""
    errors: dict[str, int] = {}
    for s in samples:
        if not 200 <= s.status < 400:
            key = f"{s.status} {s.url.split('?')[0]}"
            errors[key] = errors.get(key, 0) + 1
    return errors
