"""Sign-in with Entra: the whole flow against the emulator, and the id token verifier."""

import copy
import json
import logging
import time
from base64 import urlsafe_b64encode
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
import yaml
from allauth.socialaccount.models import SocialAccount
from allauth.socialaccount.providers.oauth2.client import OAuth2Client
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import Client
from django.urls import reverse

from emulator import Emulator
from emulator.scenario import SCENARIOS_DIR
from portal.auth import IdTokenError, verify_id_token
from portal.models import User
from portal.views import AccessNotice, access_notice
from tenants.access import Role, role_in, visible_tenants
from tenants.models import Tenant
from tests.ids import CONTOSO, FABRIKAM, NORTHWIND, PORTAL_APP
from tests.portal.helpers import CALLBACK, PORTAL_HOST, sign_in, sign_in_at_entra


@pytest.fixture
def tenants(contoso, fabrikam):
    """Contoso and Fabrikam are onboarded; Northwind is not."""
    return {"Contoso": contoso, "Fabrikam": fabrikam}


@pytest.fixture
def portal(settings, tenants) -> Client:
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    return Client(HTTP_HOST=PORTAL_HOST)


def signed_in_user(portal: Client) -> User | None:
    user_id = portal.session.get("_auth_user_id")
    return User.objects.get(pk=user_id) if user_id else None


def _tenant(tenant_id: str) -> Tenant:
    return Tenant.objects.get(tenant_id=tenant_id)


def object_id(emu: Emulator, tenant: str, upn: str) -> str:
    return next(u["id"] for u in emu.state(tenant)["users"] if u["userPrincipalName"] == upn)


# -- the flow ------------------------------------------------------------------------------


def test_signing_in_starts_at_entra_with_pkce_and_the_openid_scopes(emu, portal):
    start = portal.post(reverse("microsoft_login"))

    url = urlsplit(start["Location"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == (
        f"{emu.url}/organizations/oauth2/v2.0/authorize"
    )
    query = {name: values[0] for name, values in parse_qs(url.query).items()}
    assert query["client_id"] == PORTAL_APP
    assert query["redirect_uri"] == CALLBACK
    assert query["code_challenge_method"] == "S256" and query["code_challenge"]
    assert set(query["scope"].split()) == {"openid", "profile", "email", "User.Read"}


def test_alice_signs_in_as_an_admin_of_contoso(emu, portal, browser):
    done = sign_in(portal, browser, "alice@contoso.onmicrosoft.com")

    assert done.status_code == 302 and done["Location"] == "/"
    alice = signed_in_user(portal)
    assert alice is not None
    assert alice.entra_tenant_id == CONTOSO
    assert alice.entra_object_id == object_id(emu, CONTOSO, "alice@contoso.onmicrosoft.com")
    assert alice.entra_roles == ["Portal.Admin"]
    assert alice.username == "alice@contoso.onmicrosoft.com"
    assert alice.email == "alice@contoso.onmicrosoft.com"
    assert alice.get_full_name() == "Alice Anders"
    assert not alice.has_usable_password()
    assert role_in(alice, _tenant(CONTOSO)) == Role.ADMIN
    assert access_notice(alice) is None


def test_the_header_shows_who_is_signed_in_with_tenant_role_and_a_sign_out_button(
    emu, portal, browser
):
    sign_in(portal, browser, "alice@contoso.onmicrosoft.com")

    page = portal.get(reverse("account_logout")).content.decode()
    assert "Alice Anders" in page and "Contoso" in page and ">Admin<" in page
    assert f'<form method="post" action="{reverse("account_logout")}">' in page


def test_bob_signs_in_as_a_reader(emu, portal, browser):
    sign_in(portal, browser, "bob@contoso.onmicrosoft.com")

    bob = signed_in_user(portal)
    assert bob.entra_roles == ["Portal.Reader"]
    assert role_in(bob, _tenant(CONTOSO)) == Role.READER
    assert list(visible_tenants(bob)) == [_tenant(CONTOSO)]


def test_oscar_the_operator_sees_every_tenant(emu, portal, browser):
    done = sign_in(portal, browser, "oscar@contoso.onmicrosoft.com")

    oscar = signed_in_user(portal)
    assert oscar.entra_roles == ["Portal.Operator"]
    assert set(visible_tenants(oscar)) == {_tenant(CONTOSO), _tenant(FABRIKAM)}
    assert done["Location"] == "/"


def test_charlie_is_an_admin_of_fabrikam_only(emu, portal, browser):
    sign_in(portal, browser, "charlie@fabrikam.onmicrosoft.com")

    charlie = signed_in_user(portal)
    assert charlie.entra_tenant_id == FABRIKAM
    assert list(visible_tenants(charlie)) == [_tenant(FABRIKAM)]
    assert role_in(charlie, _tenant(CONTOSO)) is None


def test_a_user_without_a_portal_role_is_told_how_to_get_access(emu, portal, browser):
    done = sign_in(portal, browser, "erin@contoso.onmicrosoft.com")

    assert done["Location"] == reverse("access")
    erin = signed_in_user(portal)
    assert erin.entra_roles == []
    assert access_notice(erin) == AccessNotice.NO_ROLE
    page = portal.get(done["Location"]).content.decode()
    assert "You have no role in the Permission Portal yet" in page
    assert "Portal.Admin" in page and "Portal.Reader" in page
    assert "Permission Portal</strong> enterprise application" in page


def test_a_user_of_a_tenant_not_onboarded_is_told_how_to_onboard_it(emu, portal, browser):
    done = sign_in(portal, browser, "nina@northwind.onmicrosoft.com")

    assert done["Location"] == reverse("access")
    nina = signed_in_user(portal)
    assert nina.entra_tenant_id == NORTHWIND
    assert not visible_tenants(nina).exists()
    page = portal.get(done["Location"]).content.decode()
    assert "Your tenant isn't connected yet" in page
    assert f"manage.py add_tenant {NORTHWIND}" in page


def test_roles_are_read_again_at_every_sign_in(emu, portal, browser):
    sign_in(portal, browser, "bob@contoso.onmicrosoft.com")
    bob = signed_in_user(portal)
    assert bob.entra_roles == ["Portal.Reader"]

    # An Entra admin makes bob an admin of the portal.
    scenario = yaml.safe_load((SCENARIOS_DIR / "demo.yaml").read_text())
    contoso = next(t for t in scenario["tenants"] if t["id"] == CONTOSO)
    next(u for u in contoso["users"] if u["upn"].startswith("bob@"))["roles"] = ["Portal.Admin"]
    emu.load(scenario)
    portal.post(reverse("account_logout"))
    sign_in(portal, browser, "bob@contoso.onmicrosoft.com")

    again = signed_in_user(portal)
    assert again.pk == bob.pk
    assert again.entra_roles == ["Portal.Admin"]
    assert role_in(again, _tenant(CONTOSO)) == Role.ADMIN
    assert User.objects.filter(entra_object_id=bob.entra_object_id).count() == 1


def test_the_page_asked_for_is_where_sign_in_ends(emu, portal, browser):
    login_page = portal.get(reverse("account_login"), {"next": "/catalog/"}).content.decode()
    assert '<input type="hidden" name="next" value="/catalog/">' in login_page

    done = sign_in(portal, browser, "alice@contoso.onmicrosoft.com", next="/catalog/")

    assert done["Location"] == "/catalog/"


def test_pages_that_need_a_user_send_visitors_to_the_sign_in_page(db, client):
    response = client.get(reverse("access"))

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('account_login')}?next={reverse('access')}"


def test_sign_in_works_with_a_certificate_instead_of_a_secret(emu, portal, browser, settings):
    credentials = emu.credentials(PORTAL_APP)
    providers = copy.deepcopy(settings.SOCIALACCOUNT_PROVIDERS)
    app = providers["microsoft"]["APPS"][0]
    app["secret"] = ""
    app["settings"]["certificate"] = credentials.certificate_path.read_text()
    app["settings"]["private_key"] = credentials.private_key_path.read_text()
    settings.SOCIALACCOUNT_PROVIDERS = providers

    sign_in(portal, browser, "alice@contoso.onmicrosoft.com")

    assert signed_in_user(portal).entra_roles == ["Portal.Admin"]


def test_a_tampered_id_token_signs_no_one_in(emu, portal, browser, monkeypatch, caplog):
    redeem = OAuth2Client.get_access_token

    def tampering(self, *args, **kwargs) -> dict[str, Any]:
        tokens = redeem(self, *args, **kwargs)
        header, payload, signature = tokens["id_token"].split(".")
        claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
        claims["roles"] = ["Portal.Admin"]
        forged = urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        return {**tokens, "id_token": f"{header}.{forged}.{signature}"}

    monkeypatch.setattr(OAuth2Client, "get_access_token", tampering)
    caplog.set_level(logging.WARNING, logger="portal.auth")

    done = sign_in(portal, browser, "erin@contoso.onmicrosoft.com")

    assert done.status_code == 401
    assert "Sign-in failed" in done.content.decode()
    assert signed_in_user(portal) is None
    assert not User.objects.exists()
    assert "Signature verification failed" in caplog.text


def test_connecting_a_second_account_to_a_user_is_refused(emu, portal, browser):
    sign_in(portal, browser, "alice@contoso.onmicrosoft.com")
    alice = signed_in_user(portal)

    done = sign_in(portal, browser, "charlie@fabrikam.onmicrosoft.com", process="connect")

    assert done.status_code == 401
    alice.refresh_from_db()
    assert alice.entra_tenant_id == CONTOSO
    assert SocialAccount.objects.filter(user=alice).count() == 1


def test_admin_sign_ins_are_logged_without_tokens(emu, portal, browser, caplog):
    caplog.set_level(logging.INFO)

    sign_in(portal, browser, "bob@contoso.onmicrosoft.com")
    assert "Portal admin signed in" not in caplog.text
    portal.post(reverse("account_logout"))
    sign_in(portal, browser, "alice@contoso.onmicrosoft.com")

    alice = signed_in_user(portal)
    lines = [r.getMessage() for r in caplog.records if r.name == "portal.auth"]
    assert lines == [
        f"Portal admin signed in: alice@contoso.onmicrosoft.com (object "
        f"{alice.entra_object_id}) of tenant {CONTOSO}"
    ]
    assert "eyJ" not in caplog.text  # no JWT, id token or access token
    assert "emulator-portal-secret" not in caplog.text


@pytest.mark.django_db(transaction=True)
def test_sign_in_over_http_returns_to_a_server_on_any_loopback_port(
    emu, live_server, browser, contoso
):
    with requests.Session() as user_agent:
        user_agent.trust_env = False
        login = user_agent.get(f"{live_server.url}/accounts/login/")
        token = login.cookies["csrftoken"]
        start = user_agent.post(
            f"{live_server.url}/accounts/microsoft/login/",
            data={"csrfmiddlewaretoken": token},
            allow_redirects=False,
        )
        back = sign_in_at_entra(browser, start.headers["Location"], "alice@contoso.onmicrosoft.com")
        assert back.startswith(f"{live_server.url}/accounts/microsoft/login/callback/?")
        done = user_agent.get(back, allow_redirects=False)
        assert done.status_code == 302, done.text

        page = user_agent.get(f"{live_server.url}/accounts/logout/")
    assert "Alice Anders" in page.text and "Contoso" in page.text
    assert User.objects.get().entra_roles == ["Portal.Admin"]


# -- no local accounts; Django admin for superusers -------------------------------------------


def test_the_sign_in_page_offers_microsoft_only(db, client):
    page = client.get(reverse("account_login")).content.decode()

    assert "Sign in with Microsoft" in page
    assert f'<form method="post" action="{reverse("microsoft_login")}">' in page
    assert 'type="password"' not in page


@pytest.mark.parametrize(
    "url", ["/accounts/signup/", "/accounts/3rdparty/signup/", "/accounts/password/reset/"]
)
def test_there_is_no_local_sign_up_or_password(db, client, url):
    assert client.get(url).status_code == 404
    assert client.post(url, {"username": "mallory", "password1": "x" * 20}).status_code == 404


def test_a_password_does_not_sign_in_at_the_portals_sign_in_page(db, client):
    User.objects.create_user("mallory", password="correct horse battery staple")

    response = client.post(
        reverse("account_login"),
        {"login": "mallory", "password": "correct horse battery staple"},
    )

    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def test_django_admin_login_still_works_for_a_superuser(db, client):
    User.objects.create_superuser("root", "root@example.com", "correct horse battery staple")

    response = client.post(
        reverse("admin:login"),
        {"username": "root", "password": "correct horse battery staple", "next": "/admin/"},
    )

    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_signing_out_needs_a_post(emu, portal, browser):
    sign_in(portal, browser, "alice@contoso.onmicrosoft.com")

    assert portal.get(reverse("account_logout")).status_code == 200
    assert signed_in_user(portal) is not None
    portal.post(reverse("account_logout"))
    assert signed_in_user(portal) is None


# -- who is told what -------------------------------------------------------------------------


def test_operators_and_superusers_get_no_access_notice(tenants, oscar):
    root = User.objects.create(username="root", is_superuser=True)
    stranger = User.objects.create(
        username="sam", entra_tenant_id=FABRIKAM, entra_roles=["Portal.Operator"]
    )

    assert access_notice(oscar) is None
    assert access_notice(root) is None
    # Portal.Operator counts only in the operator tenant.
    assert access_notice(stranger) == AccessNotice.NO_ROLE


# -- the id token verifier ----------------------------------------------------------------------

LOGIN = "https://login.example"


class KeysSession:
    """Stands in for the portal's session: serves one JWKS, records what was asked."""

    def __init__(self, *keys: rsa.RSAPrivateKey) -> None:
        self.jwks = {
            "keys": [
                {**jwt.algorithms.RSAAlgorithm.to_jwk(k.public_key(), as_dict=True), "kid": "k1"}
                for k in keys
            ]
        }
        self.urls: list[str] = []

    def get(self, url: str) -> "KeysSession":
        self.urls.append(url)
        return self

    status_code = 200

    def json(self) -> dict[str, Any]:
        return self.jwks


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def id_token(key: rsa.RSAPrivateKey, **changes: Any) -> str:
    now = int(time.time())
    claims = {
        "aud": PORTAL_APP,
        "iss": f"{LOGIN}/{CONTOSO}/v2.0",
        "tid": CONTOSO,
        "oid": "5d9a3c1e-0000-4000-8000-000000000001",
        "roles": ["Portal.Reader"],
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        **changes,
    }
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})


def verify(token: str, session: KeysSession) -> dict[str, Any]:
    return verify_id_token(
        token, client_id=PORTAL_APP, login_url=LOGIN, session=cast(requests.Session, session)
    )


def test_a_well_signed_id_token_verifies_against_its_tenants_keys(key):
    session = KeysSession(key)

    claims = verify(id_token(key), session)

    assert claims["roles"] == ["Portal.Reader"]
    assert session.urls == [f"{LOGIN}/{CONTOSO}/discovery/v2.0/keys"]


def test_a_tampered_id_token_is_rejected(key):
    header, _, signature = id_token(key).split(".")
    _, payload, _ = id_token(key, roles=["Portal.Admin"]).split(".")

    with pytest.raises(IdTokenError, match="Signature verification failed"):
        verify(f"{header}.{payload}.{signature}", KeysSession(key))


def test_an_unsigned_id_token_is_rejected(key):
    unsigned = jwt.encode(
        jwt.decode(id_token(key), options={"verify_signature": False}),
        None,
        algorithm="none",
        headers={"kid": "k1"},
    )

    with pytest.raises(IdTokenError):
        verify(unsigned, KeysSession(key))


def test_an_id_token_signed_by_another_key_is_rejected(key):
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    with pytest.raises(IdTokenError, match="Signature verification failed"):
        verify(id_token(impostor), KeysSession(key))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"aud": "11111111-2222-4333-8444-555555555555"}, "audience"),
        ({"iss": f"{LOGIN}/{FABRIKAM}/v2.0"}, "issuer"),
        ({"iss": f"https://evil.example/{CONTOSO}/v2.0"}, "issuer"),
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"tid": "../common"}, "no valid tenant"),
        ({"oid": None}, '"oid"'),
    ],
)
def test_an_id_token_for_someone_else_or_out_of_date_is_rejected(key, changes, reason):
    with pytest.raises(IdTokenError, match=f"(?i){reason}"):
        verify(id_token(key, **changes), KeysSession(key))
