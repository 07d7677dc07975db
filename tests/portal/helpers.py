"""Signing in through the emulator's Entra pages, as a browser would (tests/portal/test_sso.py
and the audit trail's sign-in events)."""

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests
from django.test import Client
from django.urls import reverse

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse

# The address of `make run`: the redirect URI the demo's app registration lists.
PORTAL_HOST = "127.0.0.1:8000"
CALLBACK = f"http://{PORTAL_HOST}/accounts/microsoft/login/callback/"


def sign_in_at_entra(browser: requests.Session, authorize_url: str, upn: str) -> str:
    """Picks ``upn`` on the emulator's sign-in page; returns where Entra sends the browser."""
    page = browser.get(authorize_url)
    assert page.status_code == 200, page.text
    assert "<form method='post'>" in page.text and upn in page.text
    answer = browser.post(authorize_url, data={"user": upn}, allow_redirects=False)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def sign_in(portal: Client, browser: requests.Session, upn: str, **form: str) -> "TestResponse":
    """The whole sign-in: the portal's button, Entra's page, the portal's callback."""
    start = portal.post(reverse("microsoft_login"), form)
    assert start.status_code == 302
    back = urlsplit(sign_in_at_entra(browser, start["Location"], upn))
    assert f"{back.scheme}://{back.netloc}{back.path}" == CALLBACK
    return portal.get(f"{back.path}?{back.query}")


# The password of the ``root`` superuser fixture (tests/portal/conftest.py).
ROOT_PASSWORD = "correct horse battery staple"
