"""`/_emulator/...`: what tests and benchmarks use to steer the emulator over HTTP.

GET    /_emulator/health
GET    /_emulator/state[?tenant=ID]      counts per tenant, or one tenant in full
POST   /_emulator/reset                  back to the loaded scenario (faults, counters too)
POST   /_emulator/scenario[?name=demo]   load a built-in scenario, or the YAML/JSON body
GET    /_emulator/counters[?path=RE&method=GET]
                                         {"total": n, "requests": {"GET /v1.0/...": n},
                                          "paths": {"GET /v1.0/servicePrincipals/<id>": n},
                                          "matching": n (with ?path)}
DELETE /_emulator/counters
GET    /_emulator/faults                 the rules, with how often each matched and fired
PUT    /_emulator/faults                 replace the rules: {"rules": [...]}
POST   /_emulator/faults                 add rules: {"rules": [...]}
DELETE /_emulator/faults
POST   /_emulator/expire-tokens          every token issued so far stops working
GET    /_emulator/behaviour              the switches (behaviour.py)
PUT    /_emulator/behaviour              replace them: {"replication_lag": {...}, ...}
PATCH  /_emulator/behaviour              change only the switches given
DELETE /_emulator/behaviour              every switch off
GET    /_emulator/clock                  {"now": epoch seconds, "offset": seconds}
POST   /_emulator/clock                  move it forward: {"advance": seconds}
POST   /_emulator/delta/expire           every delta token issued so far answers 410 Gone (resyncRequired)
PATCH  /_emulator/tenants/{tenant}     {"premium": true|false}: Entra ID P1 or not
PATCH  /_emulator/tenants/{tenant}/servicePrincipals/{id}   change fields (as Graph PATCH)
DELETE /_emulator/tenants/{tenant}/servicePrincipals/{id}   delete it, with its grants
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator import scenario as scenarios
from emulator.state import GraphError
from emulator.web import Request, Response, json_response

if TYPE_CHECKING:
    from emulator.app import App


class ControlApi:
    def __init__(self, app: App) -> None:
        self.app = app

    def routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", "/_emulator/health", self.health),
            ("GET", "/_emulator/state", self.state),
            ("POST", "/_emulator/reset", self.reset),
            ("POST", "/_emulator/scenario", self.load_scenario),
            ("GET", "/_emulator/counters", self.counters),
            ("DELETE", "/_emulator/counters", self.reset_counters),
            ("GET", "/_emulator/faults", self.faults),
            ("PUT", "/_emulator/faults", self.set_faults),
            ("POST", "/_emulator/faults", self.add_faults),
            ("DELETE", "/_emulator/faults", self.clear_faults),
            ("POST", "/_emulator/expire-tokens", self.expire_tokens),
            ("GET", "/_emulator/behaviour", self.behaviour),
            ("PUT", "/_emulator/behaviour", self.replace_behaviour),
            ("PATCH", "/_emulator/behaviour", self.change_behaviour),
            ("DELETE", "/_emulator/behaviour", self.clear_behaviour),
            ("GET", "/_emulator/clock", self.clock),
            ("POST", "/_emulator/clock", self.advance_clock),
            ("POST", "/_emulator/delta/expire", self.expire_delta_tokens),
            ("PATCH", "/_emulator/tenants/{tenant}", self.update_tenant),
            ("PATCH", "/_emulator/tenants/{tenant}/servicePrincipals/{id}", self.update_sp),
            ("DELETE", "/_emulator/tenants/{tenant}/servicePrincipals/{id}", self.delete_sp),
        ]

    def health(self, request: Request) -> Response:
        return json_response(200, {"status": "ok", "scenario": self.app.state.scenario.name})

    def state(self, request: Request) -> Response:
        state = self.app.state
        with state.lock:
            wanted = request.query.get("tenant")
            if wanted:
                tenant = state.tenant(wanted)
                if tenant is None:
                    return _problem(404, f"no tenant {wanted}")
                return json_response(200, tenant.dump())
            return json_response(
                200,
                {
                    "scenario": state.scenario.name,
                    "tokenGeneration": state.token_generation,
                    "tenants": [
                        {
                            "id": t.id,
                            "displayName": t.name,
                            "domain": t.domain,
                            "users": len(t.users),
                            "servicePrincipals": len(t.service_principals),
                            "appRoleAssignments": len(t.assignments),
                            "oauth2PermissionGrants": len(t.grants),
                        }
                        for t in state.tenants.values()
                    ],
                },
            )

    def reset(self, request: Request) -> Response:
        self.app.load(self.app.state.scenario)
        return self.health(request)

    def load_scenario(self, request: Request) -> Response:
        name = request.query.get("name")
        try:
            if name:
                if not (scenarios.SCENARIOS_DIR / f"{name}.yaml").is_file():
                    return _problem(404, f"no built-in scenario {name!r}")
                loaded = scenarios.load(name, self.app.data_dir)
            else:
                text = request.body.decode("utf-8", "replace")
                loaded = scenarios.parse_text(text, "request body", self.app.data_dir, Path.cwd())
        except scenarios.ScenarioError as exc:
            return _problem(400, str(exc))
        self.app.load(loaded)
        return self.health(request)

    def counters(self, request: Request) -> Response:
        snapshot = self.app.counters.snapshot()
        if request.query.get("path"):
            try:
                snapshot["matching"] = self.app.counters.matching(
                    request.query["path"], request.query.get("method")
                )
            except re.error as exc:
                return _problem(400, f"path: not a regular expression ({exc})")
        return json_response(200, snapshot)

    def reset_counters(self, request: Request) -> Response:
        self.app.counters.reset()
        return Response(204)

    def faults(self, request: Request) -> Response:
        return json_response(200, {"rules": self.app.faults.rules()})

    def set_faults(self, request: Request) -> Response:
        return self._change_faults(request, self.app.faults.set)

    def add_faults(self, request: Request) -> Response:
        return self._change_faults(request, self.app.faults.add)

    def clear_faults(self, request: Request) -> Response:
        self.app.faults.set([])
        return Response(204)

    def expire_tokens(self, request: Request) -> Response:
        self.app.state.expire_tokens()
        return Response(204)

    def behaviour(self, request: Request) -> Response:
        return json_response(200, self.app.state.behaviour.to_dict())

    def replace_behaviour(self, request: Request) -> Response:
        return self._change_behaviour(request, merge=False)

    def change_behaviour(self, request: Request) -> Response:
        return self._change_behaviour(request, merge=True)

    def clear_behaviour(self, request: Request) -> Response:
        self.app.set_behaviour({}, merge=False)
        return Response(204)

    def _change_behaviour(self, request: Request, *, merge: bool) -> Response:
        try:
            switches = json.loads(request.body or b"{}")
            self.app.set_behaviour(switches, merge=merge)
        except ValueError as exc:
            return _problem(400, f"bad switch: {exc}")
        return self.behaviour(request)

    def clock(self, request: Request) -> Response:
        clock = self.app.state.clock
        return json_response(200, {"now": clock.now(), "offset": clock.offset})

    def advance_clock(self, request: Request) -> Response:
        try:
            payload = json.loads(request.body or b"{}")
            if not isinstance(payload, dict) or "advance" not in payload:
                return _problem(400, 'expected {"advance": seconds}')
            self.app.state.clock.advance(payload["advance"])
        except ValueError as exc:
            return _problem(400, str(exc))
        return self.clock(request)

    def expire_delta_tokens(self, request: Request) -> Response:
        self.app.state.expire_delta_tokens()
        return Response(204)

    def update_tenant(self, request: Request) -> Response:
        state = self.app.state
        tenant = state.tenant(request.params["tenant"])
        if tenant is None:
            return _problem(404, f"no tenant {request.params['tenant']}")
        try:
            body = json.loads(request.body or b"{}")
            if not isinstance(body, dict) or set(body) != {"premium"}:
                return _problem(400, 'expected {"premium": true|false}')
            state.set_premium(tenant, body["premium"])
        except ValueError as exc:
            return _problem(400, str(exc))
        return Response(204)

    def update_sp(self, request: Request) -> Response:
        return self._edit_sp(request, delete=False)

    def delete_sp(self, request: Request) -> Response:
        return self._edit_sp(request, delete=True)

    def _edit_sp(self, request: Request, *, delete: bool) -> Response:
        state = self.app.state
        with state.lock:
            tenant = state.tenant(request.params["tenant"])
            if tenant is None:
                return _problem(404, f"no tenant {request.params['tenant']}")
            try:
                if delete:
                    state.delete_service_principal(tenant, request.params["id"].lower())
                else:
                    body = json.loads(request.body or b"{}")
                    state.update_service_principal(tenant, request.params["id"].lower(), body)
            except GraphError as exc:
                return _problem(exc.status, exc.message)
            except ValueError as exc:
                return _problem(400, str(exc))
        return Response(204)

    def _change_faults(self, request: Request, change: Any) -> Response:
        try:
            payload = json.loads(request.body or b"{}")
            rules = payload.get("rules") if isinstance(payload, dict) else None
            if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
                return _problem(400, 'expected {"rules": [{...}, ...]}')
            change(rules)
        except ValueError as exc:
            return _problem(400, f"bad fault rule: {exc}")
        return self.faults(request)


def _problem(status: int, message: str) -> Response:
    return json_response(status, {"error": message})
