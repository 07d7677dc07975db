"""The one seam between the portal and Microsoft: tokens from Entra, calls to Graph.

Everything that talks to Microsoft goes through :class:`GraphClient`, so timeouts, the CA
bundle, throttling and error handling are decided here once. Failures surface as
:class:`GraphError`, which says whether trying again later can help.
"""

import json
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urlsplit

import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from django.conf import settings

from tenants.entra_errors import token_fix

logger = logging.getLogger(__name__)

# Graph's appId names it in every cloud (its URL differs per national cloud and points
# elsewhere with the emulator), so the token is asked for by appId.
GRAPH_SCOPE = "00000003-0000-0000-c000-000000000000/.default"
PAGE_SIZE = 999
BATCH_LIMIT = 20
# The key of a tolerated inner failure in what GraphClient.batch returns (no Graph body
# has it): {BATCH_ERROR: {"status", "code", "message"}}.
BATCH_ERROR = "@portal.error"
# Connect and read timeouts: a Graph page of 999 items can take a few seconds to arrive.
TIMEOUT = (10, 60)
RETRY_STATUSES = frozenset({429, 503, 504})
MAX_ATTEMPTS = 6
# x-ms-throttle-priority: when Graph must throttle an app, it throttles its Low requests
# first. Syncs can wait; a revoke an admin is watching should not.
PRIORITY_LOW = "Low"
PRIORITY_HIGH = "High"
# What a client keeps back from the task's soft time limit for the work after its Graph
# calls (a large tenant's snapshot takes a while to save): it never waits into that.
SAVE_RESERVE_SHARE = 0.2
SAVE_RESERVE_MIN = 60.0


def default_time_budget() -> float:
    """Seconds a sync's client may spend, waits included: the task's soft time limit less
    the reserve for saving. A Retry-After that does not fit fails the run as retryable,
    rather than the time limit killing it halfway."""
    limit = float(settings.CELERY_TASK_SOFT_TIME_LIMIT)
    return max(limit - max(limit * SAVE_RESERVE_SHARE, SAVE_RESERVE_MIN), 0.0)


# A NUL as Graph's JSON escapes it, not preceded by an escaping backslash.
_JSON_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def graph_json(response: requests.Response) -> Any:
    """A Graph answer's JSON, with every NUL in its strings read as U+FFFD: PostgreSQL
    cannot store NUL in text, and one hostile name must not fail a whole sync. Pages and
    e-mails show U+FFFD as it is (portal/text.py)."""
    if b"\\u0000" not in response.content:
        return response.json()
    text = response.content.decode("utf-8")
    return json.loads(_JSON_NUL.sub(r"\1\\ufffd", text))


class GraphError(Exception):
    """A call to Entra or Graph failed.

    ``retryable`` is True when the same call may succeed later (throttling, a server
    fault, a dropped connection); False when something must change first (credentials,
    a missing permission, a bad request).
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        code: str = "",
        request_id: str = "",
        client_request_id: str = "",
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.code = code
        # Graph's id of the request (its request-id), and the portal's (client-request-id):
        # what Microsoft's support asks for.
        self.request_id = request_id
        self.client_request_id = client_request_id

    @property
    def ids(self) -> str:
        """The request's ids as one line's tail, or "" when there are none."""
        parts = [
            f"{name} {value}"
            for name, value in (
                ("client-request-id", self.client_request_id),
                ("request-id", self.request_id),
            )
            if value
        ]
        return f"({', '.join(parts)})" if parts else ""


@dataclass
class CallStats:
    """What a client did, for the sync run's record."""

    requests: int = 0
    throttled_waits: int = 0
    throttled_seconds: float = 0.0


@dataclass(frozen=True)
class Credentials:
    client_id: str
    secret: str = ""
    certificate_pem: str = ""
    private_key_pem: str = ""

    @classmethod
    def from_settings(cls) -> "Credentials":
        return cls(
            client_id=settings.PORTAL_CLIENT_ID,
            secret=settings.PORTAL_CLIENT_SECRET,
            certificate_pem=settings.PORTAL_CLIENT_CERTIFICATE,
            private_key_pem=settings.PORTAL_CLIENT_PRIVATE_KEY,
        )

    def msal_credential(self) -> str | dict[str, str]:
        if self.certificate_pem and self.private_key_pem:
            certificate = x509.load_pem_x509_certificate(self.certificate_pem.encode())
            return {
                "private_key": self.private_key_pem,
                # Entra identifies a certificate by its SHA-1 thumbprint.
                "thumbprint": certificate.fingerprint(hashes.SHA1()).hex(),
                "public_certificate": self.certificate_pem,
            }
        if self.secret:
            return self.secret
        raise GraphError(
            "The portal has no credentials: set PORTAL_CLIENT_SECRET, or "
            "PORTAL_CLIENT_CERTIFICATE and PORTAL_CLIENT_PRIVATE_KEY",
            retryable=False,
        )


def new_session() -> requests.Session:
    """The portal's HTTP session: its own CA bundle, no proxy from the environment."""
    session = requests.Session()
    session.trust_env = False  # HTTPS_PROXY or a netrc must not redirect tokens silently
    if settings.GRAPH_CA_BUNDLE:
        session.verify = settings.GRAPH_CA_BUNDLE
    session.headers["User-Agent"] = "PermissionPortal/1.0"
    return session


_apps: dict[tuple[str, str, str], msal.ConfidentialClientApplication] = {}
_apps_lock = threading.Lock()


def _msal_app(
    tenant_id: str, credentials: Credentials, session: requests.Session
) -> msal.ConfidentialClientApplication:
    """One MSAL application per tenant, kept so that its token cache is reused."""
    key = (settings.ENTRA_LOGIN_URL, tenant_id, credentials.client_id)
    with _apps_lock:
        app = _apps.get(key)
        if app is None:
            host = urlsplit(settings.ENTRA_LOGIN_URL).hostname or ""
            known = host in msal.authority.WELL_KNOWN_AUTHORITY_HOSTS
            app = msal.ConfidentialClientApplication(
                credentials.client_id,
                client_credential=credentials.msal_credential(),
                authority=f"{settings.ENTRA_LOGIN_URL}/{tenant_id}",
                http_client=session,
                # Instance discovery asks login.microsoftonline.com whether the authority
                # is genuine; a national cloud it knows, the emulator it cannot.
                instance_discovery=None if known else False,
            )
            _apps[key] = app
        return app


def forget_tokens() -> None:
    """Drop cached MSAL applications (after credentials change, and between tests)."""
    with _apps_lock:
        _apps.clear()


@dataclass
class GraphClient:
    """Graph for one tenant, as the portal's own application.

    ``priority`` is sent as ``x-ms-throttle-priority`` (Low for syncs, High for revokes);
    ``time_budget`` is how many seconds the client may take from its creation, waits for
    Graph included (see :func:`default_time_budget`).
    """

    tenant_id: str
    credentials: Credentials = field(default_factory=Credentials.from_settings)
    session: requests.Session = field(default_factory=new_session)
    sleep: Callable[[float], None] = time.sleep
    stats: CallStats = field(default_factory=CallStats)
    priority: str = PRIORITY_LOW
    time_budget: float = field(default_factory=default_time_budget)
    clock: Callable[[], float] = time.monotonic
    _deadline: float = field(init=False, repr=False)
    # A 403 drops the cached token once per client: roles granted minutes ago may be
    # missing from it. A fresh token that is refused as well is refused for good.
    _fresh_token_after_403: bool = field(init=False, default=False, repr=False)

    def __post_init__(self) -> None:
        self._deadline = self.clock() + self.time_budget

    # -- tokens --------------------------------------------------------------------------
    def _token(self) -> str:
        app = _msal_app(self.tenant_id, self.credentials, self.session)
        try:
            result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise GraphError(
                f"Cannot reach Entra at {settings.ENTRA_LOGIN_URL}: {exc.__class__.__name__}",
                retryable=True,
            ) from exc
        except ValueError as exc:  # MSAL: the authority's discovery document is unusable
            raise GraphError(
                f"Entra sign-in for tenant {self.tenant_id} failed: {exc}", retryable=False
            ) from exc
        if "access_token" in result:
            return result["access_token"]
        raise _token_error(self.tenant_id, result)

    def forget_token(self) -> None:
        """Drop this tenant's cached token: the next call asks Entra for a fresh one (a
        token issued just after consent may lack the roles granted)."""
        self._forget_token()

    def _forget_token(self) -> None:
        app = _msal_app(self.tenant_id, self.credentials, self.session)
        # list(): the cache cannot be changed while it is being searched.
        for account_token in list(
            app.token_cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)
        ):
            app.token_cache.remove_at(account_token)

    def _drop_token_after_403(self) -> bool:
        """Drops the cached token the first time Graph refuses one; False after that."""
        if self._fresh_token_after_403:
            return False
        self._forget_token()
        self._fresh_token_after_403 = True
        return True

    # -- requests ------------------------------------------------------------------------
    def url(self, path: str) -> str:
        """The URL of a Graph path, or an absolute URL (a nextLink) that is on GRAPH_URL's
        scheme, host and port: the bearer token goes nowhere else."""
        if path.startswith("/"):
            return f"{settings.GRAPH_URL}/v1.0{path}"
        if _origin(urlsplit(path)) != _origin(urlsplit(settings.GRAPH_URL)):
            raise GraphError(
                f"Graph sent a link to {_origin_text(path)}, which is not {settings.GRAPH_URL};"
                " the portal does not follow it (its token is for Graph only)",
                retryable=False,
            )
        return path

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        needs: str = "",
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        """One Graph call with retries. ``needs`` names the permission the call requires,
        so that a 403 says which one the portal lacks; ``headers`` are sent as well (e.g.
        ``ConsistencyLevel: eventual``)."""
        url = self.url(path)
        # One id for the call and its retries, so that Graph's logs tie them together.
        client_request_id = str(uuid.uuid4())
        token_refreshed = False
        for attempt in range(1, MAX_ATTEMPTS + 1):
            sent = {
                "Authorization": f"Bearer {self._token()}",
                "Accept": "application/json",
                "client-request-id": client_request_id,
                "x-ms-throttle-priority": self.priority,
                **(headers or {}),
            }
            self.stats.requests += 1
            try:
                response = self.session.request(
                    method, url, json=json, headers=sent, timeout=TIMEOUT
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                delay = _backoff(attempt)
                if attempt == MAX_ATTEMPTS or delay > self.remaining():
                    raise GraphError(
                        f"{method} {_short(url)}: the connection failed {attempt} times "
                        f"({exc.__class__.__name__})",
                        retryable=True,
                        client_request_id=client_request_id,
                    ) from exc
                logger.warning(
                    "Graph %s %s: %s, retrying in %.1fs",
                    method,
                    _short(url),
                    exc.__class__.__name__,
                    delay,
                )
                self.sleep(delay)
                continue
            if response.status_code == 401 and not token_refreshed:
                # A token revoked or expired early: one fresh token, then give up.
                self._forget_token()
                token_refreshed = True
                continue
            if response.status_code == 403 and self._drop_token_after_403():
                continue
            if response.status_code in RETRY_STATUSES and attempt < MAX_ATTEMPTS:
                delay = retry_after_seconds(response, attempt)
                self.wait_for_graph(delay, f"{method} {_short(url)}", client_request_id)
                continue
            if response.status_code >= 400:
                error = response_error(method, url, response, needs=needs, tenant_id=self.tenant_id)
                error.client_request_id = client_request_id
                raise error
            return response
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def remaining(self) -> float:
        """Seconds left of the client's time budget."""
        return self._deadline - self.clock()

    def wait_for_graph(self, delay: float, what: str, client_request_id: str = "") -> None:
        """Waits as long as Graph asked (throttling), or fails as retryable when that
        would run past the time budget: the run is tried again later instead."""
        left = self.remaining()
        if delay > left:
            raise GraphError(
                f"{what}: Graph asked the portal to wait {delay:.1f} s, longer than the "
                f"{max(left, 0):.0f} s this run has left; the sync is tried again later",
                retryable=True,
                status=429,
                client_request_id=client_request_id,
            )
        self.stats.throttled_waits += 1
        self.stats.throttled_seconds += delay
        logger.info("Graph %s: throttled, waiting %.1fs", what, delay)
        self.sleep(delay)

    def get_json(
        self, path: str, *, needs: str = "", headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        return graph_json(self.request("GET", path, needs=needs, headers=headers))

    def pages(self, path: str, *, needs: str = "") -> Iterator[list[dict[str, Any]]]:
        """Each page's ``value`` of a collection, following ``@odata.nextLink`` verbatim
        (on Graph's own host only: :meth:`url` refuses any other)."""
        next_url: str | None = path
        while next_url:
            body = self.get_json(next_url, needs=needs)
            yield body.get("value", [])
            next_url = body.get("@odata.nextLink")

    def batch(
        self,
        requests_: list[dict[str, Any]],
        *,
        needs: str = "",
        tolerate: frozenset[int] = frozenset(),
    ) -> dict[str, dict[str, Any]]:
        """Run GET requests through ``$batch`` (at most 20 a call); returns bodies by id.

        An inner request that is throttled is retried on its own in the next round, after
        the longest Retry-After among them; an inner 403 is retried once with a fresh
        token; an inner request that fails otherwise raises, unless its status is in
        ``tolerate``: then its answer is ``{BATCH_ERROR: {"status", "code", "message"}}``
        for the caller to judge (a 404 for a principal that vanished since it was listed).
        """
        results: dict[str, dict[str, Any]] = {}
        pending = list(requests_)
        rounds = 0
        while pending:
            rounds += 1
            retry: list[dict[str, Any]] = []
            delay = 0.0
            refused: list[dict[str, Any]] = []
            for chunk_start in range(0, len(pending), BATCH_LIMIT):
                chunk = pending[chunk_start : chunk_start + BATCH_LIMIT]
                response = self.request("POST", "/$batch", json={"requests": chunk}, needs=needs)
                client_request_id = response.request.headers.get("client-request-id", "")
                by_id = {item["id"]: item for item in chunk}
                for answer in graph_json(response).get("responses", []):
                    status = int(answer.get("status", 500))
                    inner = by_id[answer["id"]]
                    if status in RETRY_STATUSES and rounds < MAX_ATTEMPTS:
                        retry.append(inner)
                        delay = max(delay, _header_seconds(answer.get("headers", {}), rounds))
                    elif status == 403 and not self._fresh_token_after_403:
                        refused.append(inner)
                    elif status in tolerate:
                        error = (answer.get("body") or {}).get("error") or {}
                        error = error if isinstance(error, dict) else {}
                        results[answer["id"]] = {
                            BATCH_ERROR: {
                                "status": status,
                                "code": str(error.get("code", "")),
                                "message": str(error.get("message", "")),
                            }
                        }
                    elif status >= 400:
                        error = _error_from_body(
                            inner.get("method", "GET"),
                            self.url(inner["url"]),
                            status,
                            answer.get("body") or {},
                            needs=needs,
                            tenant_id=self.tenant_id,
                        )
                        error.client_request_id = client_request_id
                        raise error
                    else:
                        results[answer["id"]] = answer.get("body") or {}
            if refused:
                self._drop_token_after_403()
                retry.extend(refused)
            if retry and delay:
                self.wait_for_graph(delay, f"POST /$batch ({len(retry)} requests)")
            pending = retry
        return results


def _origin(parts: SplitResult) -> tuple[str, str, int | None]:
    """Scheme, host and port, with the scheme's default port filled in."""
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: matches nothing
        return (scheme, "", -1)
    return (scheme, (parts.hostname or "").lower(), port or {"https": 443, "http": 80}.get(scheme))


def _origin_text(url: str) -> str:
    """A foreign link's scheme, host and port, for the message (never its query: it may
    carry someone's token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"[:200]


ORGANIZATION_PATH = "/organization?$select=id,displayName,verifiedDomains"


@dataclass(frozen=True)
class Organization:
    """A tenant's organization as Graph names it ("" for what Graph leaves out)."""

    name: str = ""
    default_domain: str = ""


def organization_read(client: GraphClient) -> Organization:
    """The tenant's display name and default verified domain. Needs Directory.Read.All (or
    Organization.Read.All); raises :class:`GraphError` like every call."""
    organizations = client.get_json(ORGANIZATION_PATH).get("value") or []
    organization = organizations[0] if organizations else {}
    domains = organization.get("verifiedDomains") or []
    return Organization(
        name=organization.get("displayName") or "",
        default_domain=next((d.get("name") or "" for d in domains if d.get("isDefault")), ""),
    )


def retry_after_seconds(response: requests.Response, attempt: int) -> float:
    return _header_seconds(response.headers, attempt)


def _header_seconds(headers: dict[str, str] | Any, attempt: int) -> float:
    raw = None
    for name, value in dict(headers).items():
        if name.lower() == "retry-after":
            raw = value
    try:
        # As Graph gives it, fractions too ("1.5"; Graph has sent "2.542"): the client's
        # time budget, not a cap here, decides whether it is worth waiting.
        seconds = float(raw) if raw is not None else _backoff(attempt)
    except ValueError:
        seconds = _backoff(attempt)
    if seconds != seconds or seconds == float("inf"):  # NaN or inf: not a wait Graph means
        seconds = _backoff(attempt)
    return max(seconds, 0.0)


def _backoff(attempt: int) -> float:
    # Exponential with jitter, so that many workers do not retry in step.
    return min(2 ** (attempt - 1), 30) * (0.5 + random.random() / 2)  # jitter, not cryptography


def _short(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query[:80]}" if parts.query else "")


def response_error(
    method: str, url: str, response: requests.Response, *, needs: str, tenant_id: str
) -> GraphError:
    try:
        body = graph_json(response)
    except ValueError:
        body = {}
    error = _error_from_body(
        method, url, response.status_code, body, needs=needs, tenant_id=tenant_id
    )
    error.request_id = error.request_id or response.headers.get("request-id", "")
    return error


def _error_from_body(
    method: str, url: str, status: int, body: dict[str, Any], *, needs: str, tenant_id: str
) -> GraphError:
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code = str(error.get("code", ""))
    inner = error.get("innerError") or error.get("innererror") or {}
    request_id = str(inner.get("request-id", "")) if isinstance(inner, dict) else ""
    where = f"{method} {_short(url)}"
    graph_message = str(error.get("message", "")).strip() or f"HTTP {status}"
    if status == 403:
        lacking = (
            f" The portal's app needs {needs} in tenant {tenant_id}: grant it admin consent."
            if needs
            else ""
        )
        message = f"{where}: access denied ({code or 'Forbidden'}).{lacking}"
    elif status == 401:
        message = f"{where}: Graph rejected the portal's token ({code or 'Unauthorized'}): {graph_message}"
    else:
        message = f"{where}: HTTP {status} {code}: {graph_message}".replace("  ", " ")
    return GraphError(
        message,
        retryable=status in RETRY_STATUSES or status >= 500,
        status=status,
        code=code,
        request_id=request_id,
    )


def _token_error(tenant_id: str, result: dict[str, Any]) -> GraphError:
    description = str(result.get("error_description", ""))
    fix = token_fix(codes=result.get("error_codes", []), description=description)
    first_line = (
        description.splitlines()[0] if description else result.get("error", "unknown error")
    )
    message = f"Entra refused a token for tenant {tenant_id}: {first_line}"
    if fix:
        message += f" (fix: {fix})"
    # Entra's 5xx-class sign-in failures ("temporarily_unavailable") may pass; credential
    # problems do not.
    return GraphError(
        message,
        retryable=result.get("error") == "temporarily_unavailable",
        code=result.get("error", ""),
    )
