"""The portal's own permissions, for templates: ``{% load portal_app %}`` then
``{% portal_permissions "write" as names %}`` (or ``"read"``)."""

from django import template

from tenants.portal_app import READ_PERMISSIONS, WRITE_PERMISSIONS

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
