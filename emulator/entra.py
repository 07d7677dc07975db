"""Microsoft Entra ID endpoints: discovery, keys, tokens, sign-in and admin consent.

Errors use Entra's token-endpoint JSON (`error`, `error_description` starting with the
AADSTS code, `error_codes`, ...) or, where Entra shows a page, an HTML page.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import html
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from emulator.pki import thumbprint
from emulator.scenario import GRAPH_APP_ID, Application, Grant
from emulator.state import AuthCode, Entity, TenantState
from emulator.tokens import GRAPH_AUDIENCE
from emulator.web import (
    Request,
    Response,
    add_params,
    dumps,
    html_response,
    json_response,
    redirect,
)

if TYPE_CHECKING:
    from emulator.app import App

_ANY_TENANT = ("organizations", "common")
_CODE_LIFETIME = 600
_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
# The groupMembershipClaims values that put directory roles (wids) in a token.
WIDS_CLAIMS = frozenset({"DirectoryRole", "All"})
# Redirect URIs on these hosts may come back on any port (see _redirect_matches).
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class OAuthError(Exception):
    def __init__(self, status: int, error: str, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.code, self.message = status, error, code, message


class PageError(Exception):
    """An error Entra shows on its own page, because the redirect URI can't be trusted."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class _Client:
    app: Application
    auth_method: str  # "1" = secret, "2" = certificate (Entra's appidacr values)


class EntraApi:
    def __init__(self, app: App) -> None:
        self.app = app
        self.state = app.state
        self.tokens = app.tokens

    def routes(self) -> list[tuple[str, str, Callable[[Request], Response]]]:
        authorize = self._page(self.authorize)
        consent = self._page(self.admin_consent)
        return [
            ("GET", "/{tenant}/v2.0/.well-known/openid-configuration", self.openid_configuration),
            ("GET", "/{tenant}/discovery/v2.0/keys", self.keys),
            ("POST", "/{tenant}/oauth2/v2.0/token", self.token),
            ("GET", "/{tenant}/oauth2/v2.0/authorize", authorize),
            ("POST", "/{tenant}/oauth2/v2.0/authorize", authorize),
            ("GET", "/{tenant}/oauth2/v2.0/logout", self.logout),
            ("GET", "/{tenant}/adminconsent", consent),
            ("POST", "/{tenant}/adminconsent", consent),
            ("GET", "/{tenant}/v2.0/adminconsent", consent),
            ("POST", "/{tenant}/v2.0/adminconsent", consent),
        ]

    # -- discovery -------------------------------------------------------------------

    def openid_configuration(self, request: Request) -> Response:
        segment = request.params["tenant"]
        if segment.lower() in _ANY_TENANT:
            tid, path_tenant = "{tenantid}", segment.lower()
        else:
            tenant = self.state.tenant(segment)
            if tenant is None:
                return _oauth_error(request, _tenant_not_found(segment))
            tid = path_tenant = tenant.id
        base = f"{request.base_url}/{path_tenant}"
        return json_response(
            200,
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{request.base_url}/{tid}/v2.0",
                "request_uri_parameter_supported": False,
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "claims_supported": [
                    "sub",
                    "iss",
                    "aud",
                    "exp",
                    "iat",
                    "auth_time",
                    "nonce",
                    "preferred_username",
                    "name",
                    "tid",
                    "ver",
                    "oid",
                    "roles",
                    "email",
                ],
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
                "msgraph_host": request.base_url.removeprefix("https://"),
            },
        )

    def keys(self, request: Request) -> Response:
        tenant = self.state.tenant(request.params["tenant"])
        tid = tenant.id if tenant else "{tenantid}"
        return json_response(200, self.tokens.jwks(f"{request.base_url}/{tid}/v2.0"))

    # -- token endpoint --------------------------------------------------------------

    def token(self, request: Request) -> Response:
        form = request.form()
        try:
            grant_type = form.get("grant_type", "")
            if grant_type == "client_credentials":
                payload = self._client_credentials(request, form)
            elif grant_type == "authorization_code":
                payload = self._authorization_code(request, form)
            else:
                raise OAuthError(
                    400,
                    "unsupported_grant_type",
                    70003,
                    f"The app requested an unsupported grant type '{grant_type}'.",
                )
        except OAuthError as exc:
            return _oauth_error(request, exc)
        return json_response(200, payload, [("Cache-Control", "no-store"), ("Pragma", "no-cache")])

    def _client_credentials(self, request: Request, form: dict[str, str]) -> dict[str, Any]:
        segment = request.params["tenant"]
        tenant = self.state.tenant(segment) if segment.lower() not in _ANY_TENANT else None
        if tenant is None:
            raise _tenant_not_found(segment)
        client = self._authenticate(request, form, tenant, required=True)
        assert client is not None
        scopes = form.get("scope", "").split()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            raise OAuthError(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {form.get('scope', '')} is not valid. Client "
                "credential flows must have a scope value with /.default suffixed to the "
                "resource identifier (application ID URI).",
            )
        with self.state.lock:
            resource = _resource_sp(tenant, scopes[0].removesuffix("/.default"))
            if resource is None:
                raise OAuthError(
                    400,
                    "invalid_resource",
                    500011,
                    f"The resource principal named {scopes[0].removesuffix('/.default')} was "
                    f"not found in the tenant named {tenant.name}.",
                )
            client_sp = _client_sp(tenant, client.app)
            # Tokens issued just after a consent or a role grant may lack the new roles
            # (microsoft-graph-docs#10907, #4765): with token_role_lag, they do.
            roles = tenant.role_values(client_sp.id, resource.id, self.state.roles_as_of())
        # The sign-in activity report sees this: the client signed in, app-only.
        self.state.record_sign_in(
            tenant, client.app.app_id, resource.data["appId"], delegated=False
        )
        audience = _audience(resource)
        claims = {
            "aud": audience,
            "iss": f"{request.base_url}/{tenant.id}/v2.0",
            "idp": f"{request.base_url}/{tenant.id}/",
            "tid": tenant.id,
            "oid": client_sp.id,
            "sub": client_sp.id,
            "appid": client.app.app_id,
            "azp": client.app.app_id,
            "appidacr": client.auth_method,
            "azpacr": client.auth_method,
            "app_displayname": client.app.name,
            "idtyp": "app",
            **({"roles": roles} if roles else {}),
        }
        lifetime = self.state.scenario.token_lifetime
        return {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": self.tokens.issue(claims, lifetime),
        }

    def _authorization_code(self, request: Request, form: dict[str, str]) -> dict[str, Any]:
        with self.state.lock:
            code = self.state.codes.pop(form.get("code", ""), None)
        if code is None:
            raise OAuthError(
                400,
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed or is not valid.",
            )
        if code.expires < time.time():
            raise OAuthError(
                400, "invalid_grant", 70008, "The provided authorization code has expired."
            )
        tenant = self.state.tenants[code.tenant_id]
        segment = request.params["tenant"]
        if segment.lower() not in _ANY_TENANT and self.state.tenant(segment) is not tenant:
            raise OAuthError(
                400, "invalid_grant", 9002313, "Invalid request: the code is for another tenant."
            )
        if form.get("client_id", code.client_id) != code.client_id:
            raise OAuthError(
                400, "invalid_grant", 70000, "The code was issued to another application."
            )
        form.setdefault("client_id", code.client_id)
        client = self._authenticate(request, form, tenant, required=False)
        if form.get("redirect_uri") != code.redirect_uri:
            raise OAuthError(
                400, "invalid_grant", 70000, "The provided value for 'redirect_uri' is not valid."
            )
        if code.code_challenge and not _pkce_ok(code, form.get("code_verifier", "")):
            raise OAuthError(
                400,
                "invalid_grant",
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the "
                "authorization request.",
            )
        app = client.app if client else self.state.applications[code.client_id]
        with self.state.lock:
            user = tenant.user(code.user_id).data
            client_sp = tenant.sp_by_app_id.get(app.app_id)
            as_of = self.state.roles_as_of()
            roles = tenant.role_values(user["id"], client_sp.id, as_of) if client_sp else []
            # Directory roles reach the tokens only where the registration asks for them.
            wids = (
                self.state.directory_roles(tenant, user["id"])
                if app.group_membership_claims in WIDS_CLAIMS
                else []
            )
            graph = tenant.sp_by_app_id.get(GRAPH_APP_ID)
            catalog = {p["value"] for p in graph.data["oauth2PermissionScopes"]} if graph else set()
        # Like Entra, the access token is for Graph and carries the Graph scopes asked for;
        # a sign-in that asks for none still gets User.Read.
        if client_sp is not None:
            self.state.record_sign_in(tenant, app.app_id, GRAPH_APP_ID, delegated=True)
        granted = [s for s in code.scope if s in catalog and s != "offline_access"]
        if all(s in _OIDC_SCOPES for s in granted):
            granted.append("User.Read")
        scope = " ".join(granted)
        lifetime = self.state.scenario.token_lifetime
        common = {
            "iss": f"{request.base_url}/{tenant.id}/v2.0",
            "tid": tenant.id,
            "oid": user["id"],
            "name": user["displayName"],
            "preferred_username": user["userPrincipalName"],
        }
        access = {
            **common,
            "aud": GRAPH_AUDIENCE,
            "sub": user["id"],
            "upn": user["userPrincipalName"],
            "appid": app.app_id,
            "azp": app.app_id,
            "app_displayname": app.name,
            "scp": scope,
            "idtyp": "user",
        }
        payload: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": scope,
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": self.tokens.issue(access, lifetime),
        }
        if "openid" in code.scope:
            identity = {
                **common,
                "aud": app.app_id,
                # Entra's subject is pairwise: stable per user and app, unlike oid.
                "sub": _pairwise(user["id"], app.app_id),
                "email": user["mail"],
                **({"nonce": code.nonce} if code.nonce else {}),
                **({"roles": roles} if roles else {}),
                **({"wids": wids} if wids else {}),
            }
            payload["id_token"] = self.tokens.issue(identity, lifetime)
        if form.get("client_info") == "1":
            info = {"uid": user["id"], "utid": tenant.id}
            payload["client_info"] = _b64url(dumps(info))
        return payload

    def _authenticate(
        self, request: Request, form: dict[str, str], tenant: TenantState, *, required: bool
    ) -> _Client | None:
        """The calling app, proven by a secret or a certificate-signed assertion."""
        client_id = form.get("client_id", "")
        secret = form.get("client_secret")
        basic = request.header("authorization")
        if basic.lower().startswith("basic "):
            try:
                raw = base64.b64decode(basic[6:], validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise OAuthError(
                    401, "invalid_client", 7000215, "Invalid client secret provided."
                ) from None
            user, _, password = raw.partition(":")
            client_id, secret = unquote_plus(user) or client_id, unquote_plus(password)
        app = self.state.applications.get(client_id.lower())
        if app is None:
            raise _app_not_found(client_id, tenant)
        if form.get("client_assertion_type") == _ASSERTION_TYPE:
            self._check_assertion(request, form.get("client_assertion", ""), app, tenant)
            return _Client(app, "2")
        if secret:
            _check_secret(app, secret)
            return _Client(app, "1")
        if required or app.secrets or app.certificates:
            raise OAuthError(
                401 if required else 400,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' "
                "or 'client_secret'.",
            )
        return None

    def _check_assertion(
        self, request: Request, assertion: str, app: Application, tenant: TenantState
    ) -> None:
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.InvalidTokenError as exc:
            raise OAuthError(
                401, "invalid_client", 50027, "JWT token is invalid or malformed."
            ) from exc
        cert = _registered_certificate(app, header)
        if cert is None:
            raise OAuthError(
                401,
                "invalid_client",
                700027,
                "The certificate with identifier used to sign the client assertion is not "
                f"registered on application. [Reason - The key was not found., Thumbprint of "
                f"key used by client: '{header.get('x5t#S256') or header.get('x5t')}']",
            )
        if cert.not_valid_after_utc < dt.datetime.now(dt.UTC):
            raise OAuthError(
                401, "invalid_client", 700027, "Client assertion contains an expired key."
            )
        endpoints = [
            f"{request.base_url}/{segment}/oauth2/v2.0/token"
            for segment in (tenant.id, tenant.domain, request.params["tenant"])
        ]
        try:
            claims = jwt.decode(
                assertion,
                cert.public_key(),
                algorithms=["RS256", "PS256"],
                audience=endpoints,
                issuer=app.app_id,
                leeway=300,
                options={"require": ["exp", "aud", "iss", "sub", "jti"]},
            )
        except jwt.InvalidSignatureError as exc:
            raise OAuthError(
                401, "invalid_client", 700027, "Client assertion failed signature validation."
            ) from exc
        except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError) as exc:
            raise OAuthError(
                401,
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range.",
            ) from exc
        except jwt.InvalidTokenError as exc:
            raise OAuthError(
                401, "invalid_client", 50027, f"JWT token is invalid or malformed: {exc}."
            ) from exc
        if claims["sub"] != app.app_id:
            raise OAuthError(
                401,
                "invalid_client",
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            )

    # -- sign-in ---------------------------------------------------------------------

    def _page(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def wrapped(request: Request) -> Response:
            try:
                return handler(request)
            except PageError as exc:
                text = f"AADSTS{exc.code}: {exc.message}"
                return html_response(
                    400, "Sign in: something went wrong", f"<p>{html.escape(text)}</p>"
                )

        return wrapped

    def authorize(self, request: Request) -> Response:
        params = {**request.query, **request.form()}
        tenants = self._tenants_for(request.params["tenant"])
        app = self._registered_app(params.get("client_id", ""), params.get("redirect_uri", ""))
        mode = params.get("response_mode", "query")
        if "code" not in params.get("response_type", "").split():
            return _back(params, mode, {"error": "unsupported_response_type"})
        if request.method == "GET":
            return self._choose_user_page(app, tenants, params)
        tenant, user = self._chosen_user(tenants, params.get("user", ""))
        code = secrets.token_urlsafe(48)
        with self.state.lock:
            self.state.codes[code] = AuthCode(
                client_id=app.app_id,
                tenant_id=tenant.id,
                user_id=user.id,
                redirect_uri=params["redirect_uri"],
                scope=tuple(_short_scope(s) for s in params.get("scope", "openid").split()),
                nonce=params.get("nonce"),
                code_challenge=params.get("code_challenge"),
                code_challenge_method=params.get("code_challenge_method", "plain"),
                expires=time.time() + _CODE_LIFETIME,
            )
        return _back(params, mode, {"code": code, "session_state": str(uuid.uuid4())})

    def _choose_user_page(
        self, app: Application, tenants: list[TenantState], params: dict[str, str]
    ) -> Response:
        sections = []
        with self.state.lock:
            for tenant in tenants:
                buttons = "".join(
                    f"<button name='user' value='{html.escape(u.id)}'>"
                    f"{_user_label(u)}{_roles_note(tenant, u, app)}</button>"
                    for u in tenant.users
                )
                sections.append(f"<h2>{html.escape(tenant.name)}</h2>{buttons}")
        body = (
            f"<p>Sign in to <strong>{html.escape(app.name)}</strong> as:</p>"
            f"<form method='post'>{''.join(sections)}</form>"
        )
        return html_response(200, "Sign in: Entra ID emulator", body)

    def logout(self, request: Request) -> Response:
        target = request.query.get("post_logout_redirect_uri")
        if target:
            return redirect(target)
        return html_response(200, "Signed out", "<p>You have signed out.</p>")

    # -- admin consent ---------------------------------------------------------------

    def admin_consent(self, request: Request) -> Response:
        params = {**request.query, **request.form()}
        tenants = self._tenants_for(request.params["tenant"])
        app = self._registered_app(params.get("client_id", ""), params.get("redirect_uri", ""))
        v2 = "/v2.0/" in request.path
        grants = self._requested(app, params.get("scope", "") if v2 else "")
        if request.method == "GET":
            return self._consent_page(app, tenants, grants)
        back: dict[str, str] = {}
        if params.get("decision") != "accept":
            back = {
                "error": "access_denied",
                "error_subcode": "cancel",
                "error_description": "AADSTS65004: User declined to consent to access the app.",
            }
        else:
            tenant, user = self._chosen_user(tenants, params.get("user", ""))
            if not self._is_tenant_admin(tenant, user):
                back = {
                    "error": "access_denied",
                    "error_description": "AADSTS90094: Granting tenant-wide consent needs an "
                    "administrator of the tenant.",
                }
            else:
                self.state.consent(tenant, app, grants, user)
                back = {"tenant": tenant.id, "admin_consent": "True"}
                if v2:
                    back["scope"] = params.get("scope", "")
        if "state" in params:
            back["state"] = params["state"]
        return redirect(add_params(params["redirect_uri"], back))

    def _requested(self, app: Application, scope: str) -> list[Grant]:
        """v1 and `.default` consent grant what the app registration requires; v2 may
        name permissions explicitly, as `{resource}/{permission}`."""
        if not scope or all(s.endswith("/.default") for s in scope.split()):
            return list(app.requires)
        grants = []
        for item in scope.split():
            resource_ref, _, value = item.rpartition("/")
            resource = next(
                (
                    r
                    for r in self.state.scenario.resources.values()
                    if resource_ref.lower()
                    in (r.app_id, *(u.lower().rstrip("/") for u in r.identifier_uris))
                ),
                None,
            )
            kind = None
            if resource is not None and any(p.value == value for p in resource.app_roles):
                kind = "application"
            elif resource is not None and any(p.value == value for p in resource.scopes):
                kind = "delegated"
            if resource is None or kind is None:
                raise PageError(
                    70011,
                    f"The provided value for the input parameter 'scope' is not valid: {item}.",
                )
            grants.append(Grant(kind, resource.app_id, (value,), value, ()))
        return grants

    def _consent_page(
        self, app: Application, tenants: list[TenantState], grants: Iterable[Grant]
    ) -> Response:
        resources = self.state.scenario.resources
        items = "".join(
            f"<li>{html.escape(value)} ({grant.type}, "
            f"{html.escape(resources[grant.resource].name)})</li>"
            for grant in grants
            for value in grant.values
        )
        sections = []
        with self.state.lock:
            for tenant in tenants:
                buttons = "".join(
                    f"<button name='user' value='{html.escape(u.id)}'>Accept as {_user_label(u)}"
                    f"{' (administrator)' if self._is_tenant_admin(tenant, u) else ''}</button>"
                    for u in tenant.users
                )
                sections.append(f"<h2>{html.escape(tenant.name)}</h2>{buttons}")
        body = (
            f"<p><strong>{html.escape(app.name)}</strong> asks for these permissions in your "
            f"organization:</p><ul>{items}</ul>"
            f"<form method='post'><input type='hidden' name='decision' value='accept'>"
            f"{''.join(sections)}</form>"
            "<form method='post'><button name='decision' value='decline'>Cancel</button></form>"
        )
        return html_response(200, "Permissions requested: Entra ID emulator", body)

    # -- shared helpers ----------------------------------------------------------------

    def _tenants_for(self, segment: str) -> list[TenantState]:
        if segment.lower() in _ANY_TENANT:
            return list(self.state.tenants.values())
        tenant = self.state.tenant(segment)
        if tenant is None:
            raise PageError(90002, f"Tenant '{segment}' not found.")
        return [tenant]

    def _registered_app(self, client_id: str, redirect_uri: str) -> Application:
        app = self.state.applications.get(client_id.lower())
        if app is None:
            raise PageError(700016, f"Application with identifier '{client_id}' was not found.")
        if not redirect_uri or (
            app.redirect_uris
            and not any(_redirect_matches(uri, redirect_uri) for uri in app.redirect_uris)
        ):
            raise PageError(
                50011,
                f"The redirect URI '{redirect_uri}' specified in the request does not match "
                f"the redirect URIs configured for the application '{app.app_id}'.",
            )
        return app

    def _chosen_user(self, tenants: list[TenantState], key: str) -> tuple[TenantState, Entity]:
        with self.state.lock:
            for tenant in tenants:
                user = tenant.users.get(key) or tenant.user_by_upn.get(key.lower())
                if user is not None:
                    return tenant, user
        raise PageError(50034, f"The user account {key!r} does not exist in the directory.")

    def _is_tenant_admin(self, tenant: TenantState, user: Entity) -> bool:
        spec = next(t for t in self.state.scenario.tenants if t.id == tenant.id)
        return any(u.id == user.id and u.tenant_admin for u in spec.users)


def _user_label(user: Entity) -> str:
    name, upn = user.data["displayName"], user.data["userPrincipalName"]
    return f"{html.escape(name)} &lt;{html.escape(upn)}&gt;"


def _roles_note(tenant: TenantState, user: Entity, app: Application) -> str:
    client_sp = tenant.sp_by_app_id.get(app.app_id)
    roles = tenant.role_values(user.id, client_sp.id) if client_sp else []
    return f" ({html.escape(', '.join(roles))})" if roles else ""


def _back(params: dict[str, str], mode: str, values: dict[str, str]) -> Response:
    """Returns the authorization response to the app, as its response_mode asks."""
    if "state" in params:
        values = {**values, "state": params["state"]}
    target = params["redirect_uri"]
    if mode == "form_post":
        fields = "".join(
            f"<input type='hidden' name='{html.escape(k)}' value='{html.escape(v)}'>"
            for k, v in values.items()
        )
        body = (
            f"<form method='post' action='{html.escape(target)}'>{fields}"
            "<button>Continue</button></form>"
            "<script>document.forms[0].submit()</script>"
        )
        return html_response(200, "Signing in", body)
    return redirect(add_params(target, values, "#" if mode == "fragment" else "?"))


def _redirect_matches(registered: str, given: str) -> bool:
    """Entra matches redirect URIs exactly, except that it ignores the port of an http
    loopback URI, so that a local app may listen on whatever port is free (RFC 8252, 7.3)."""
    if registered == given:
        return True
    mine, theirs = urlsplit(registered), urlsplit(given)
    return (
        mine.scheme == theirs.scheme == "http"
        and mine.hostname in _LOOPBACK_HOSTS
        and mine.hostname == theirs.hostname
        and (mine.path, mine.query) == (theirs.path, theirs.query)
    )


def _short_scope(scope: str) -> str:
    """`https://graph.microsoft.com/User.Read` -> `User.Read`; Graph is the default."""
    for prefix in (f"{GRAPH_AUDIENCE}/", f"{GRAPH_APP_ID}/"):
        if scope.lower().startswith(prefix.lower()):
            return scope[len(prefix) :]
    return scope


def _check_secret(app: Application, given: str) -> None:
    now = dt.datetime.now(dt.UTC)
    for secret in app.secrets:
        if hmac.compare_digest(secret.value.encode(), given.encode()):
            if secret.expires is not None and secret.expires < now:
                raise OAuthError(
                    401,
                    "invalid_client",
                    7000222,
                    f"The provided client secret keys for app '{app.app_id}' are expired. "
                    "Visit the Azure portal to create new keys for your app.",
                )
            return
    raise OAuthError(
        401,
        "invalid_client",
        7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the "
        f"client secret value, not the client secret ID, for a secret added to app "
        f"'{app.app_id}'.",
    )


def _registered_certificate(app: Application, header: dict[str, Any]) -> x509.Certificate | None:
    # Thumbprints are base64url; some clients (MSAL among them) keep the "=" padding.
    sha256 = str(header.get("x5t#S256", "")).rstrip("=")
    sha1 = str(header.get("x5t", "")).rstrip("=")
    for credential in app.certificates:
        cert = credential.cert
        if sha256 == thumbprint(cert, hashes.SHA256()) or sha1 == thumbprint(cert, hashes.SHA1()):
            return cert
    return None


def _resource_sp(tenant: TenantState, reference: str) -> Entity | None:
    """A resource by appId or by one of its names (`https://graph.microsoft.com`)."""
    wanted = reference.lower().rstrip("/")
    if wanted in tenant.sp_by_app_id:
        return tenant.sp_by_app_id[wanted]
    for sp in tenant.service_principals:
        names = [n.lower().rstrip("/") for n in sp.data["servicePrincipalNames"]]
        if wanted == sp.data["appId"] or wanted in names:
            return sp
    return None


def _client_sp(tenant: TenantState, app: Application) -> Entity:
    client_sp = tenant.sp_by_app_id.get(app.app_id)
    if client_sp is None:
        raise _app_not_found(app.app_id, tenant)
    return client_sp


def _audience(resource: Entity) -> str:
    names = [n for n in resource.data["servicePrincipalNames"] if n.startswith("https://")]
    return names[0].rstrip("/") if names else resource.data["appId"]


def _app_not_found(client_id: str, tenant: TenantState) -> OAuthError:
    return OAuthError(
        400,
        "unauthorized_client",
        700016,
        f"Application with identifier '{client_id}' was not found in the directory "
        f"'{tenant.name}'. This can happen if the application has not been installed by the "
        "administrator of the tenant or consented to by any user in the tenant.",
    )


def _tenant_not_found(segment: str) -> OAuthError:
    return OAuthError(
        400,
        "invalid_tenant",
        90002,
        f"Tenant '{segment}' not found. Check to make sure you have the correct tenant ID "
        "and are signing into the correct cloud.",
    )


def _oauth_error(request: Request, exc: OAuthError) -> Response:
    now = dt.datetime.now(dt.UTC)
    trace, correlation = str(uuid.uuid4()), request.header("client-request-id") or str(uuid.uuid4())
    stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
    description = (
        f"AADSTS{exc.code}: {exc.message} Trace ID: {trace} Correlation ID: {correlation} "
        f"Timestamp: {stamp}"
    )
    return json_response(
        exc.status,
        {
            "error": exc.error,
            "error_description": description,
            "error_codes": [exc.code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"{request.base_url}/error?code={exc.code}",
        },
    )


def _pkce_ok(code: AuthCode, verifier: str) -> bool:
    if code.code_challenge_method == "S256":
        expected = _b64url(hashlib.sha256(verifier.encode()).digest())
    else:
        expected = verifier
    return hmac.compare_digest(expected, code.code_challenge or "")


def _pairwise(user_id: str, app_id: str) -> str:
    return _b64url(hashlib.sha256(f"{user_id}/{app_id}".encode()).digest()[:32])


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
