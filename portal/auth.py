"""Sign-in with Microsoft Entra ID, through django-allauth's ``microsoft`` provider.

allauth's provider redeems the code and reads ``/me``, but ignores the id token, and the id
token is the only place where Entra says which tenant the user signed in from (``tid``) and
which of the portal's app roles they hold there (``roles``), and which directory roles
(``wids``: only when the app registration's ``groupMembershipClaims`` is ``DirectoryRole``
or ``All``). So the callback here runs
allauth's flow with :class:`EntraOAuth2Adapter`, which verifies the id token (signature
against the tenant's published keys, audience, issuer, expiry) before anything is trusted.
The adapters then copy ``tid``, ``oid``, ``roles`` and the portal roles ``wids`` gives onto
the user at every sign-in: roles are changed in Entra, and the portal follows.

Who may then see what is decided in ``tenants/access.py``.
"""

import functools
import logging
import time
import uuid
from base64 import urlsafe_b64encode
from dataclasses import dataclass
from typing import Any

import jwt
import requests
from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount import app_settings as socialaccount_settings
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter, get_adapter
from allauth.socialaccount.models import SocialApp, SocialLogin, SocialToken
from allauth.socialaccount.providers.base import AuthProcess, ProviderException
from allauth.socialaccount.providers.microsoft.views import MicrosoftGraphOAuth2Adapter
from allauth.socialaccount.providers.oauth2.client import OAuth2Client
from allauth.socialaccount.providers.oauth2.views import OAuth2CallbackView
from allauth.utils import get_request_param
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.urls import reverse

from portal.models import User
from portal.signins import VIA_ENTRA, sign_in_failed
from portal.views import access_notice
from tenants.access import PORTAL_ADMIN, directory_portal_roles, home_tenant
from tenants.audit import audit_record
from tenants.graph import new_session
from tenants.models import AuditEvent

logger = logging.getLogger(__name__)

# Where the verified claims travel from the callback to the adapters, on the social account.
CLAIMS_KEY = "id_token_claims"
# Clocks drift; Entra's own libraries allow five minutes.
CLOCK_SKEW = 300
_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_ENTRA_FIELDS = ["entra_tenant_id", "entra_object_id", "entra_roles", "directory_roles"]


class IdTokenError(ProviderException):
    """The id token is missing or cannot be trusted; the sign-in fails."""


@dataclass(frozen=True)
class EntraIdentity:
    """Who signed in, from a verified id token."""

    tenant_id: str
    object_id: str
    roles: tuple[str, ...]
    # Directory role template ids (wids), only where the app registration asks for them.
    directory_roles: tuple[str, ...]
    username: str
    email: str

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> "EntraIdentity":
        username = str(claims.get("preferred_username") or claims["oid"])
        return cls(
            tenant_id=str(claims["tid"]).lower(),
            object_id=str(claims["oid"]).lower(),
            roles=tuple(str(role) for role in claims.get("roles") or ()),
            directory_roles=tuple(str(role) for role in claims.get("wids") or ()),
            username=username,
            email=str(claims.get("email") or ""),
        )


def verify_id_token(
    id_token: str, *, client_id: str, login_url: str, session: requests.Session
) -> dict[str, Any]:
    """The id token's claims, once its signature, audience, issuer and lifetime check out.

    Users of any organization sign in, so the tenant comes from the token itself; it is
    only trusted once the token verifies against that tenant's keys and issuer.
    """
    try:
        unverified = jwt.decode(id_token, options={"verify_signature": False})
        key_id = jwt.get_unverified_header(id_token).get("kid")
    except jwt.InvalidTokenError as exc:
        raise IdTokenError(f"The id token is malformed: {exc}") from exc
    try:
        # A GUID, so that a crafted tid cannot point the key lookup at another URL.
        tenant_id = str(uuid.UUID(str(unverified.get("tid"))))
    except ValueError as exc:
        raise IdTokenError("The id token names no valid tenant (tid)") from exc
    signing_key = _signing_key(login_url, tenant_id, key_id, session)
    try:
        return jwt.decode(
            id_token,
            signing_key,
            algorithms=["RS256"],
            audience=client_id,
            issuer=f"{login_url}/{tenant_id}/v2.0",
            leeway=CLOCK_SKEW,
            options={"require": ["exp", "iat", "iss", "aud", "tid", "oid"]},
        )
    except jwt.InvalidTokenError as exc:
        raise IdTokenError(f"The id token was rejected: {exc}") from exc


def _signing_key(
    login_url: str, tenant_id: str, key_id: str | None, session: requests.Session
) -> jwt.PyJWK:
    response = session.get(f"{login_url}/{tenant_id}/discovery/v2.0/keys")
    if response.status_code != 200:
        raise IdTokenError(
            f"Entra's signing keys for tenant {tenant_id}: HTTP {response.status_code}"
        )
    try:
        keys = jwt.PyJWKSet.from_dict(response.json())
        return keys[str(key_id)]
    except (ValueError, KeyError, jwt.PyJWKSetError) as exc:
        raise IdTokenError(
            f"The id token is signed with a key tenant {tenant_id} does not publish"
        ) from exc


def client_assertion(
    *, client_id: str, audience: str, certificate_pem: str, private_key_pem: str
) -> str:
    """A certificate-signed client assertion, Entra's alternative to a client secret."""
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    thumbprint = urlsafe_b64encode(certificate.fingerprint(hashes.SHA1())).rstrip(b"=").decode()
    now = int(time.time())
    claims = {
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    return jwt.encode(claims, private_key_pem, algorithm="RS256", headers={"x5t": thumbprint})


class EntraOAuth2Adapter(MicrosoftGraphOAuth2Adapter):
    """allauth's Microsoft adapter, plus a verified id token and certificate credentials."""

    def get_access_token_data(
        self,
        request: HttpRequest,
        app: SocialApp,
        client: OAuth2Client,
        pkce_code_verifier: str | None = None,
    ) -> dict[str, Any]:
        certificate = app.settings.get("certificate")
        private_key = app.settings.get("private_key")
        if not (certificate and private_key):
            return super().get_access_token_data(request, app, client, pkce_code_verifier)
        client.consumer_secret = ""  # an empty secret is left out of the request
        assertion = client_assertion(
            client_id=app.client_id,
            audience=self.access_token_url,
            certificate_pem=certificate,
            private_key_pem=private_key,
        )
        data = client.get_access_token(
            get_request_param(request, "code"),
            pkce_code_verifier=pkce_code_verifier,
            extra_data={"client_assertion_type": _ASSERTION_TYPE, "client_assertion": assertion},
        )
        self.did_fetch_access_token = True
        return data

    def complete_login(
        self, request: HttpRequest, app: SocialApp, token: SocialToken, **kwargs: Any
    ) -> SocialLogin:
        id_token = (kwargs.get("response") or {}).get("id_token")
        if not id_token:
            raise IdTokenError("Entra sent no id token: the sign-in must ask for openid")
        with get_adapter().get_requests_session() as session:
            claims = verify_id_token(
                id_token,
                client_id=app.client_id,
                login_url=app.settings["login_url"],
                session=session,
            )
        login = super().complete_login(request, app, token, **kwargs)
        # /me answers for the access token's user; both tokens came in one response, but
        # a mismatch would attach one person's roles to another's account.
        if login.account.uid.lower() != str(claims["oid"]).lower():
            raise IdTokenError("The id token and Graph's /me name different users")
        login.account.extra_data[CLAIMS_KEY] = {
            name: claims[name]
            for name in ("tid", "oid", "roles", "wids", "preferred_username", "email")
            if name in claims
        }
        return login


entra_callback = OAuth2CallbackView.adapter_view(EntraOAuth2Adapter)


def identity_of(sociallogin: SocialLogin) -> EntraIdentity:
    claims = sociallogin.account.extra_data.get(CLAIMS_KEY)
    if not claims:
        # Only entra_callback completes a Microsoft login; anything else is refused.
        raise PermissionDenied("This sign-in did not come with a verified id token")
    return EntraIdentity.from_claims(claims)


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def get_requests_session(self) -> requests.Session:
        # The portal's session: GRAPH_CA_BUNDLE (the emulator's CA, a proxy's), no proxy
        # or CA bundle from the environment.
        session = new_session()
        session.request = functools.partial(  # type: ignore[method-assign]
            session.request, timeout=socialaccount_settings.REQUESTS_TIMEOUT
        )
        return session

    def is_open_for_signup(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        # Anyone Entra vouches for gets a user; what they see depends on tid and roles.
        return True

    def is_auto_signup_allowed(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        # Never allauth's sign-up form: every field comes from Entra.
        return True

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        if sociallogin.state.get("process") == AuthProcess.CONNECT:
            # One Entra account is one portal user; linking a second would let it act
            # under the first one's name.
            raise PermissionDenied("Connecting another account is not supported")
        identity = identity_of(sociallogin)
        user = sociallogin.user
        if not sociallogin.is_existing:
            # A readable username; allauth picks another if it is taken.
            user.username = identity.username
        user.entra_tenant_id = identity.tenant_id
        user.entra_object_id = identity.object_id
        user.entra_roles = list(identity.roles)
        # From the same token as tid: roles in the tenant signed in to, and only there.
        user.directory_roles = (
            directory_portal_roles(identity.directory_roles)
            if settings.ENTRA_DIRECTORY_ROLES
            else []
        )
        user.email = identity.email
        profile = sociallogin.account.extra_data  # Graph's /me
        user.first_name = str(profile.get("givenName") or "")[:150]
        user.last_name = str(profile.get("surname") or "")[:150]
        if sociallogin.is_existing:
            user.save(update_fields=[*_ENTRA_FIELDS, "email", "first_name", "last_name"])

    def on_authentication_error(
        self, request: HttpRequest, provider, error=None, exception=None, extra_context=None
    ) -> None:
        # The page says only that it failed; the reason (never a token) goes to the log
        # and the audit trail.
        reason = f"{error}: {exception}" if exception else str(error)
        sign_in_failed(request=request, username="", via=VIA_ENTRA, reason=reason)


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False  # no local accounts: people sign in with Entra

    def login(self, request: HttpRequest, user: User) -> None:
        super().login(request, user)
        if PORTAL_ADMIN in user.portal_roles:
            logger.info(
                "Portal admin signed in: %s (object %s) of tenant %s",
                user.username,
                user.entra_object_id,
                user.entra_tenant_id,
            )
            audit_record(
                action=AuditEvent.Action.ADMIN_SIGNED_IN,
                tenant=home_tenant(user),
                actor=user,
                target=user.username,
                details={"object_id": user.entra_object_id, "tenant_id": user.entra_tenant_id},
            )

    def get_login_redirect_url(self, request: HttpRequest) -> str:
        # Whoever cannot see anything yet is told why, and what to do about it.
        if access_notice(request.user):
            return reverse("access")
        return super().get_login_redirect_url(request)

    def get_signup_redirect_url(self, request: HttpRequest) -> str:
        # A first sign-in creates the user: the same place as any other sign-in.
        return self.get_login_redirect_url(request)
