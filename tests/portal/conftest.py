"""Fixtures for the portal's own tests: a superuser for the Django admin's sign-in."""

import pytest

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
