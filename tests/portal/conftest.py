"""Fixtures for the portal's own tests: a superuser for the Django admin's sign-in, and a
browser at the emulator's Entra pages."""

from collections.abc import Iterator

import pytest
import requests

from tests.factories import UserFactory
from tests.portal.helpers import ROOT_PASSWORD


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # Django's real hasher takes most of a second per attempt; the sign-in tests make hundreds.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def root():
    """A superuser who signs in to the Django admin with ROOT_PASSWORD."""
    user = UserFactory(username="root", is_staff=True, is_superuser=True)
    user.set_password(ROOT_PASSWORD)
    user.save()
    return user


@pytest.fixture
def browser(emu) -> Iterator[requests.Session]:
    """What the user's browser does at the emulator's sign-in page."""
    with requests.Session() as session:
        session.verify = str(emu.ca_path)
        session.trust_env = False
        yield session
