"""The portal's own app, for templates: ``{% load portal_app %}`` then
``{% portal_permissions "write" as names %}`` (or ``"read"``),
``{% portal_grant_of service_principal grant.slot as own %}`` and
``{% if sp.app_id|is_portal_app %}``."""

from uuid import UUID

from django import template

from tenants.models import ServicePrincipal
from tenants.portal_app import READ_PERMISSIONS, WRITE_PERMISSIONS
from tenants.portal_app import is_portal_app as _is_portal_app
from tenants.revokes.guard import portal_grant
from tenants.slots import GrantSlot

register = template.Library()

_BY_MODE = {"read": READ_PERMISSIONS, "write": WRITE_PERMISSIONS}


@register.simple_tag
def portal_permissions(mode: str) -> tuple[str, ...]:
    """What read mode (connecting a tenant) or revoke mode needs, by name."""
    try:
        return _BY_MODE[mode]
    except KeyError:
        # A typo in a template must not quietly show an empty list.
        raise template.TemplateSyntaxError(
            f"portal_permissions: {mode!r} is not read or write"
        ) from None


@register.simple_tag
def portal_grant_of(client: ServicePrincipal, slot: GrantSlot) -> str:
    """ "read" or "write" when ``slot`` is one of the portal's own permissions held by its
    own service principal (never revoked, or only after typing its name), else ""."""
    return portal_grant(client, slot) or ""


@register.filter
def is_portal_app(app_id: UUID | str) -> bool:
    """Whether an appId is the portal's own application (PORTAL_CLIENT_ID)."""
    return _is_portal_app(app_id)
