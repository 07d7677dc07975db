"""Digests tell of catalog changes to the permissions a tenant holds."""

import pytest

from digests.services import digest_send
from permissions.models import MICROSOFT_GRAPH_APP_ID, CatalogChange, Permission
from tests.digests.helpers import CONTROL_PLANE, grant
from tests.factories import PermissionFactory

pytestmark = pytest.mark.django_db


def change(
    value: str, action: str = "changed", *, renamed_from: str = "", **details: list
) -> CatalogChange:
    """A change of `value` (its name after the change) as a catalog import records it."""
    permission = Permission.objects.filter(value=value).first() or PermissionFactory(value=value)
    if renamed_from:
        details["value"] = [renamed_from, value]
    return CatalogChange.objects.create(
        permission=permission,
        resource_app_id=MICROSOFT_GRAPH_APP_ID,
        kind="application",
        value=value,
        action=action,
        details=details,
        source="reference",
    )


def test_a_digest_tells_which_held_permissions_the_catalog_re_tiered_renamed_or_removed(
    story, mailoutbox, settings
):
    settings.PORTAL_URL = "https://portal.example"
    grant(story.rooms, "Mail.Read", story.second)
    digest_send(subscription_id=story.subscription.pk, period="daily-1")
    # The tenant holds Device.Read.All, Mail.Read and the ControlPlane permission (sync 2).
    retiered = change("Device.Read.All", tier=["UserAccess", "ControlPlane"])
    change(CONTROL_PLANE, action="removed")
    change("Mail.Read.Everything", renamed_from="Mail.Read")
    change("Chat.Read.All", tier=["", "ManagementPlane"])  # not held
    change("Device.Read.All", description=["Old.", "New."])  # texts only

    assert digest_send(subscription_id=story.subscription.pk, period="daily-2") == "sent"

    message = mailoutbox[1]
    assert message.subject == "[Permission Portal] Contoso: 3 changed in the catalog"
    title = "The catalog re-tiered, renamed or removed 3 permissions this tenant holds"
    for body in (message.body, message.alternatives[0][0]):
        assert title in body
        assert "re-tiered from User access to Control plane" in body
        assert "removed from Microsoft" in body
        assert "renamed from Mail.Read" in body
        assert f"https://portal.example/catalog/{retiered.permission_id}/" in body
        assert "Chat.Read.All" not in body
    for line in (
        "- Device.Read.All (application): re-tiered from User access to Control plane",
        "- Mail.Read.Everything (application): renamed from Mail.Read",
        f"- {CONTROL_PLANE} (application): removed from Microsoft's reference",
    ):
        assert line in message.body


def test_catalog_changes_are_told_once(story, mailoutbox):
    change("Device.Read.All", tier=["UserAccess", "ControlPlane"])
    digest_send(subscription_id=story.subscription.pk, period="daily-1")
    assert "re-tiered from User access to Control plane" in mailoutbox[0].body

    assert digest_send(subscription_id=story.subscription.pk, period="daily-2") == "nothing to say"
