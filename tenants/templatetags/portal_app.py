"""The portal's own app, for templates: ``{% load portal_app %}`` then
``{% portal_permissions "write" as names %}`` (or ``"read"``), and
``{% if sp.app_id|is_portal_app %}``."""

from uuid import UUID

from django import template

from tenants.portal_app import READ_PERMISSIONS, WRITE_PERMISSIONS
from tenants.portal_app import is_portal_app as _is_portal_app

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


@register.filter
def is_portal_app(app_id: UUID | str) -> bool:
    """Whether an appId is the portal's own application (PORTAL_CLIENT_ID)."""
    return _is_portal_app(app_id)
