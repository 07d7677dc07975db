"""The emulator as one request handler: routing, request counters, faults, throttling,
errors."""

from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path

from emulator import scenario as scenarios
from emulator.behaviour import Behaviour, Throttling, retry_after_text
from emulator.control import ControlApi
from emulator.entra import EntraApi
from emulator.faults import Counters, Effect, Faults
from emulator.graph import GraphApi, error_response
from emulator.pki import Pki
from emulator.state import GraphError, State
from emulator.tokens import Tokens
from emulator.web import Request, Response, Router, json_response

CONTROL_PREFIX = "/_emulator/"
_GRAPH_PREFIXES = ("/v1.0/", "/beta/")  # beta: only the sign-in activity report
_FAULT_CODES = {429: "TooManyRequests", 503: "serviceNotAvailable", 504: "gatewayTimeout"}


class App:
    def __init__(self, scenario: scenarios.Scenario, pki: Pki, data_dir: Path) -> None:
        self.pki = pki
        self.data_dir = data_dir
        self.state = State(scenario)
        self.tokens = Tokens(pki, self.state)
        self.faults = Faults()
        self.faults.set(list(scenario.faults))
        self.counters = Counters()
        self.budget = Budget()
        self._router = Router()
        for method, template, handler in EntraApi(self).routes():
            self._router.add(method, template, handler)
        for method, template, handler in GraphApi(self).routes():
            self._router.add(method, template, handler, ignore_case=True)
        self._control = Router()
        for method, template, handler in ControlApi(self).routes():
            self._control.add(method, template, handler)

    def load(self, scenario: scenarios.Scenario) -> None:
        """Replaces the directory, faults, behaviour and counters with a scenario's."""
        self.state.load(scenario)
        self.faults.set(list(scenario.faults))
        self.counters.reset()
        self.budget.reset()

    def set_behaviour(self, switches: dict, *, merge: bool) -> Behaviour:
        """Changes the switches (ValueError names a bad one); `merge` keeps the others."""
        with self.state.lock:
            base = self.state.behaviour if merge else None
            self.state.behaviour = Behaviour.from_dict(switches, base)
            return self.state.behaviour

    def handle(self, request: Request) -> Response:
        if request.path.startswith(CONTROL_PREFIX):
            route, params, exists = self._control.match(request.method, request.path)
            if route is None:
                status = 405 if exists else 404
                return json_response(status, {"error": f"no control endpoint {request.path}"})
            request.params = params
            return route.handler(request)
        return self._dispatch(request, can_drop=True)

    def handle_inner(self, request: Request) -> Response:
        """One request of a `$batch`: counted and faulted on its own, never dropped."""
        return self._dispatch(request, can_drop=False)

    def _dispatch(self, request: Request, *, can_drop: bool) -> Response:
        route, params, exists = self._router.match(request.method, request.path)
        self.counters.add(
            f"{request.method} {route.template if route else '(no route)'}",
            f"{request.method} {request.path}",
            request.query,
        )
        effect = self.faults.decide(request.method, request.path, can_drop=can_drop)
        if effect is not None:
            if effect.delay_ms:
                time.sleep(effect.delay_ms / 1000)
            if effect.drop:
                return Response(0, drop=True)
            if effect.expire_tokens:
                self.state.expire_tokens()
            if effect.status:
                return _fault_response(request, effect)
        graph = request.path.lower().startswith(_GRAPH_PREFIXES)
        if route is None:
            if not graph:
                return json_response(404, {"error": "not_found", "error_description": request.path})
            if exists:
                error = GraphError(
                    405,
                    "Request_BadRequest",
                    "Specified HTTP method is not allowed for the request target.",
                )
            else:
                segment = request.path.rstrip("/").rsplit("/", 1)[-1]
                error = GraphError(
                    400, "BadRequest", f"Resource not found for the segment '{segment}'."
                )
            return error_response(request, error)
        request.params = params
        usage = None
        throttling = self.state.behaviour.throttling
        if throttling.active and graph and not request.path.lower().endswith("/$batch"):
            usage, wait = self.budget.spend(self._budget_key(request), throttling, self.state)
            if throttling.enforce and usage > 1:
                return _throttled(request, usage, wait, throttling.fractional_retry_after)
        try:
            response = route.handler(request)
        except GraphError as error:
            response = error_response(request, error)
        if usage is not None and usage > throttling.report_above:
            # Sent only above 0.8 of the limit, from 0.8 to 1.8 (throttling-limits.md).
            response.headers.append(("x-ms-throttle-limit-percentage", _share(usage)))
        return response

    def _budget_key(self, request: Request) -> str:
        """Graph keeps the budget per app and tenant: the token's, when it has one."""
        _, _, token = request.header("authorization").partition(" ")
        claims = self.tokens.peek(token.strip()) if token.strip() else None
        if claims is None:
            return "(anonymous)"
        return f"{claims.get('tid')}/{claims.get('appid') or claims.get('azp')}"


class Budget:
    """Requests per app and tenant within the last window, on the emulator's clock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spent: dict[str, deque[float]] = {}

    def spend(self, key: str, throttling: Throttling, state: State) -> tuple[float, float]:
        """Counts a request; returns the share of the limit now used, and the seconds
        until one more would fit again."""
        now = state.clock.now()
        with self._lock:
            spent = self._spent.setdefault(key, deque())
            spent.append(now)  # throttled requests count too, as on Graph
            while spent and spent[0] <= now - throttling.window_seconds:
                spent.popleft()
            usage = len(spent) / throttling.limit
            over = len(spent) - throttling.limit
            wait = spent[over] + throttling.window_seconds - now if over > 0 else 0.0
        return usage, wait

    def reset(self) -> None:
        with self._lock:
            self._spent.clear()


def _share(usage: float) -> str:
    return f"{min(max(usage, 0.8), 1.8):.1f}"


def _throttled(request: Request, usage: float, wait: float, fractional: bool) -> Response:
    headers = [
        ("Retry-After", retry_after_text(wait, fractional)),
        ("x-ms-throttle-limit-percentage", _share(usage)),
    ]
    error = GraphError(429, "TooManyRequests", "Too many requests.")
    return error_response(request, error, headers)


def _fault_response(request: Request, effect: Effect) -> Response:
    assert effect.status is not None
    headers = [] if effect.retry_after is None else [("Retry-After", str(effect.retry_after))]
    if request.path.lower().startswith(_GRAPH_PREFIXES):
        code = _FAULT_CODES.get(effect.status, "generalException")
        message = "The emulator was told to fail this request (fault rule)."
        return error_response(request, GraphError(effect.status, code, message), headers)
    body = {
        "error": "temporarily_unavailable",
        "error_description": "The emulator was told to fail this request (fault rule).",
    }
    return json_response(effect.status, body, headers)
