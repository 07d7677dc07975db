"""`/_emulator/...`: what tests and benchmarks use to steer the emulator over HTTP.

GET    /_emulator/health
GET    /_emulator/state[?tenant=ID]      counts per tenant, or one tenant in full
POST   /_emulator/reset                  back to the loaded scenario (faults, counters too)
POST   /_emulator/scenario[?name=demo]   load a built-in scenario, or the YAML/JSON body
GET    /_emulator/counters               {"total": n, "requests": {"GET /v1.0/...": n}}
DELETE /_emulator/counters
GET    /_emulator/faults                 the rules, with how often each matched and fired
PUT    /_emulator/faults                 replace the rules: {"rules": [...]}
POST   /_emulator/faults                 add rules: {"rules": [...]}
DELETE /_emulator/faults
POST   /_emulator/expire-tokens          every token issued so far stops working
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator import scenario as scenarios
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
        return json_response(200, self.app.counters.snapshot())

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
