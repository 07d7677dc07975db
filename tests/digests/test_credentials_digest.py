"""The digest's section of credentials expired or expiring soon (tenants.facts)."""

import uuid
from datetime import timedelta

import pytest
from django.template.loader import render_to_string
from django.utils import timezone

from digests.content import digest_build
from tenants.models import Credential
from tests.factories import ServicePrincipalFactory

pytestmark = pytest.mark.django_db


def credential(sp, name: str, days: float, *, on_application: bool = False) -> Credential:
    return Credential.objects.create(
        tenant=sp.tenant,
        service_principal=sp,
        kind=Credential.Kind.SECRET,
        key_id=uuid.uuid4(),
        display_name=name,
        end_at=timezone.now() + timedelta(days=days),
        on_application=on_application,
    )


def build(story):
    return digest_build(
        tenant=story.tenant,
        floor=story.subscription.starts_after_run,
        up_to_run=story.failed.pk,
        previous_findings=None,
        since=story.subscription.started_at,
    )


def test_expired_and_soon_expiring_credentials_are_in_the_digest(story, settings):
    settings.CREDENTIAL_WARNING_DAYS = 30
    credential(story.rooms, "soon", 20)
    credential(story.rooms, "gone", -30, on_application=True)
    credential(story.rooms, "later", 45)
    other_tenant = ServicePrincipalFactory(display_name="Elsewhere")
    credential(other_tenant, "not-ours", 5)

    digest = build(story)

    assert [(i.application, i.text, i.note) for i in digest.credentials] == [
        ("Rooms monitor", "Secret gone", "expired 30 days ago"),
        ("Rooms monitor", "Secret soon", "expires in 20 days, on the service principal"),
    ]
    text = render_to_string("email/digest.txt", {"digest": digest})
    assert "Credentials expired or expiring within 30 days" in text
    assert "- Secret soon (Rooms monitor): expires in 20 days, on the service principal" in text
    html = render_to_string("email/digest.html", {"digest": digest})
    assert "Secret gone" in html and "later" not in html


def test_the_warning_window_is_a_setting(story, settings):
    credential(story.rooms, "soon", 20)
    settings.CREDENTIAL_WARNING_DAYS = 10
    assert build(story).credentials == []
