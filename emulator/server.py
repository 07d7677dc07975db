"""HTTPS on loopback, and the handle tests use to run the emulator in-process.

    with run_emulator(scenario="demo", data_dir=tmp_path) as emu:
        emu.url, emu.ca_path, emu.env()          # point a client at it
        emu.set_faults([{"path": "/v1.0/servicePrincipals", "status": 429, "every": 2}])
        emu.counters()["requests"]["GET /v1.0/servicePrincipals"]

The stdlib threading server keeps each client's connection open (HTTP/1.1 keep-alive),
and TLS handshakes happen on the connection's own thread, not on the accepting one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import ssl
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from emulator import pki
from emulator import scenario as scenarios
from emulator.app import App
from emulator.web import Request, Response, json_response

HOST = "127.0.0.1"
_HANDSHAKE_TIMEOUT = 10
_IDLE_TIMEOUT = 120
_QUIET_ERRORS = (ConnectionError, ssl.SSLError, TimeoutError)


def default_data_dir() -> Path:
    var = os.environ.get("PORTAL_VAR_DIR") or Path(__file__).resolve().parent.parent / "var"
    return Path(var) / "emulator"


@dataclass(frozen=True)
class AppCredentials:
    client_id: str
    secret: str | None
    certificate_path: Path | None
    private_key_path: Path | None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "EntraGraphEmulator/1.0"
    timeout = _IDLE_TIMEOUT
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(
            method=self.command,
            path=unquote(parts.path),
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self.rfile.read(length) if length > 0 else b"",
            base_url=self.server.base_url,
        )
        try:
            response = self.server.app.handle(request)
        except Exception as exc:  # a bug in the emulator: answer, and show it
            self.log_error("unhandled %r on %s %s", exc, self.command, self.path)
            response = json_response(500, {"error": "emulator_error", "detail": repr(exc)})
        if response.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(response)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        if response.body:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, port: int, app: App, context: ssl.SSLContext, verbose: bool) -> None:
        super().__init__((HOST, port), _Handler)
        self.app = app
        self.context = context
        self.verbose = verbose
        self.base_url = f"https://{HOST}:{self.server_address[1]}"

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request.settimeout(_HANDSHAKE_TIMEOUT)
        try:
            connection = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # e.g. a client that does not trust the CA
        try:
            self.RequestHandlerClass(connection, client_address, self)
        finally:
            connection.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], _QUIET_ERRORS):
            super().handle_error(request, client_address)


class Emulator:
    """The emulator serving HTTPS on 127.0.0.1; `port=0` picks a free port."""

    def __init__(
        self,
        scenario: str | Path | Mapping[str, Any] = "demo",
        *,
        data_dir: Path | str | None = None,
        port: int = 0,
        verbose: bool = False,
    ) -> None:
        self.data_dir = Path(data_dir) if data_dir else default_data_dir()
        self.pki = pki.load_or_create(self.data_dir)
        self.app = App(scenarios.load(scenario, self.data_dir), self.pki, self.data_dir)
        self._server = _Server(port, self.app, self.pki.server_context(), verbose)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL of both Entra (`/{tenant}/oauth2/v2.0/token`) and Graph (`/v1.0`)."""
        return self._server.base_url

    @property
    def ca_path(self) -> Path:
        return self.pki.ca_path

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.05)

    def start(self) -> Emulator:
        self._thread = threading.Thread(target=self.serve_forever, name="emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    # -- what tests use ---------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """The settings that point the portal at this emulator."""
        env = {
            "GRAPH_URL": self.url,
            "ENTRA_LOGIN_URL": self.url,
            "GRAPH_CA_BUNDLE": str(self.ca_path),
        }
        scenario = self.app.state.scenario
        if scenario.portal_app_id:
            credentials = self.credentials(scenario.portal_app_id)
            env["PORTAL_CLIENT_ID"] = credentials.client_id
            if credentials.secret:
                env["PORTAL_CLIENT_SECRET"] = credentials.secret
            if credentials.certificate_path and credentials.private_key_path:
                env["PORTAL_CLIENT_CERTIFICATE_FILE"] = str(credentials.certificate_path)
                env["PORTAL_CLIENT_PRIVATE_KEY_FILE"] = str(credentials.private_key_path)
        if scenario.operator_tenant_id:
            env["PORTAL_OPERATOR_TENANT_ID"] = scenario.operator_tenant_id
        return env

    def credentials(self, app_id: str) -> AppCredentials:
        """An app's first unexpired secret and first generated certificate, if any."""
        app = self.app.state.applications[app_id]
        now = dt.datetime.now(dt.UTC)
        secret = next((s.value for s in app.secrets if not s.expires or s.expires > now), None)
        generated = next((c for c in app.certificates if c.key_path), None)
        return AppCredentials(
            client_id=app.app_id,
            secret=secret,
            certificate_path=generated.path if generated else None,
            private_key_path=generated.key_path if generated else None,
        )

    def tenant_id(self, name: str) -> str:
        """A tenant's id by its display name (e.g. "Contoso")."""
        return next(t.id for t in self.app.state.tenants.values() if t.name == name)

    def counters(self) -> dict[str, Any]:
        return self.app.counters.snapshot()

    def reset_counters(self) -> None:
        self.app.counters.reset()

    def set_faults(self, rules: list[dict[str, Any]]) -> None:
        self.app.faults.set(rules)

    def clear_faults(self) -> None:
        self.app.faults.set([])

    def fault_rules(self) -> list[dict[str, Any]]:
        return self.app.faults.rules()

    def expire_tokens(self) -> None:
        self.app.state.expire_tokens()

    def requests_to(self, pattern: str, method: str | None = None) -> int:
        """How many requests (batched ones too) had a path matching `pattern`, a regular
        expression searched ignoring case; e.g. an SSO app's id + "/appRoleAssignedTo"."""
        return self.app.counters.matching(pattern, method)

    def queries_to(self, pattern: str, method: str | None = None) -> list[dict[str, str]]:
        """The query parameters (decoded) of the latest requests to paths matching
        `pattern`, oldest first; e.g. the `$filter` of each audit log read."""
        return self.app.counters.queries(pattern, method)

    def behaviour(self) -> dict[str, Any]:
        return self.app.state.behaviour.to_dict()

    def set_behaviour(self, **switches: Any) -> dict[str, Any]:
        """Changes the switches given (see behaviour.py); the others stay."""
        return self.app.set_behaviour(switches, merge=True).to_dict()

    def replace_behaviour(self, switches: Mapping[str, Any]) -> dict[str, Any]:
        """Sets every switch: those left out go back to off."""
        return self.app.set_behaviour(dict(switches), merge=False).to_dict()

    def advance_clock(self, seconds: float) -> None:
        """Moves the emulator's clock forward: lags pass, delta tokens age, budgets refill."""
        self.app.state.clock.advance(seconds)

    def expire_delta_tokens(self) -> None:
        self.app.state.expire_delta_tokens()

    def sp_id(self, tenant: str, app_id: str) -> str:
        """A service principal's object id in a tenant, by its appId."""
        with self.app.state.lock:
            found = self.app.state.tenant(tenant)
            if found is None or app_id.lower() not in found.sp_by_app_id:
                raise KeyError(app_id)
            return found.sp_by_app_id[app_id.lower()].id

    def update_service_principal(self, tenant: str, sp_id: str, **fields: Any) -> None:
        self._edit(tenant, lambda state, t: state.update_service_principal(t, sp_id, fields))

    def add_service_principal(self, tenant: str, app_id: str) -> str:
        """As an admin adding one of the scenario's applications to a tenant (a consent
        that grants nothing yet): its new service principal's object id."""
        self._edit(tenant, lambda state, t: state.consent(t, state.applications[app_id], []))
        return self.sp_id(tenant, app_id)

    def add_owner(self, tenant: str, sp_id: str, owner: str) -> None:
        """As an admin adding an owner (a user's UPN or id, or an app's appId) to an
        enterprise app: a relationship, so the principal itself shows no change."""
        self._edit(
            tenant,
            lambda state, t: t.owners.setdefault(sp_id, []).append(state._owner(t, owner).id),
        )

    def delete_service_principal(self, tenant: str, sp_id: str) -> None:
        """As an admin deleting an enterprise app: its grants and assignments go too."""
        self._edit(tenant, lambda state, t: state.delete_service_principal(t, sp_id))

    def _edit(self, tenant: str, change: Any) -> None:
        with self.app.state.lock:
            found = self.app.state.tenant(tenant)
            if found is None:
                raise KeyError(tenant)
            change(self.app.state, found)

    def set_premium(self, tenant: str, premium: bool) -> None:
        """Gives a tenant Entra ID P1 (or takes it away): the sign-in activity report and
        30 days of audit events, or a 403 and 7 days."""
        self._edit(tenant, lambda state, t: state.set_premium(t, premium))

    def sign_in(
        self, tenant: str, client_app_id: str, resource_app_id: str, *, delegated: bool = False
    ) -> None:
        """As a token issued now would: the client signed in, to the resource."""
        self._edit(
            tenant,
            lambda state, t: state.record_sign_in(
                t, client_app_id, resource_app_id, delegated=delegated
            ),
        )

    def audit_events(self, tenant: str) -> list[dict[str, Any]]:
        """Every directory audit event, oldest first, those past retention too."""
        return self.state(tenant)["directoryAudits"]

    def load(self, scenario: str | Path | Mapping[str, Any]) -> None:
        self.app.load(scenarios.load(scenario, self.data_dir))

    def reset(self) -> None:
        self.app.load(self.app.state.scenario)

    def state(self, tenant: str) -> dict[str, Any]:
        with self.app.state.lock:
            found = self.app.state.tenant(tenant)
            if found is None:
                raise KeyError(tenant)
            return found.dump()


@contextlib.contextmanager
def run_emulator(
    scenario: str | Path | Mapping[str, Any] = "demo",
    *,
    data_dir: Path | str | None = None,
    port: int = 0,
) -> Iterator[Emulator]:
    emulator = Emulator(scenario, data_dir=data_dir, port=port).start()
    try:
        yield emulator
    finally:
        emulator.stop()
