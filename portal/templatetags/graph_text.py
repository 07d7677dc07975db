"""Names from Graph in templates: ``{% load graph_text %}``, then ``{{ name|flagged }}``
where a page shows one, ``{{ name|plain }}`` in titles, attributes and e-mails."""

from django import template
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString

from portal.text import HIDDEN_MARK, has_hidden_characters
from portal.text import plain as plain_text

register = template.Library()

HIDDEN_CHARACTERS_BADGE = "name contains hidden characters"


@register.filter
def plain(value: object) -> object:
    """The text on one line, hidden characters made visible (portal.text.plain)."""
    return plain_text(value) if isinstance(value, str) else value


@register.filter
def flagged(value: object) -> SafeString:
    """The text, escaped and made plain, with a warning badge when it hid characters: as
    Graph sent it, or as the sync stored it (hidden characters already made marks)."""
    if not isinstance(value, str):
        return conditional_escape(str(value))
    if not has_hidden_characters(value) and HIDDEN_MARK not in value:
        return conditional_escape(value)
    return format_html(
        '{} <span class="tag is-warning is-light hidden-characters" title="{}">{}</span>',
        plain_text(value),
        "Control, bidi or zero-width characters are shown as \ufffd",
        HIDDEN_CHARACTERS_BADGE,
    )
