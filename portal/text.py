"""Strings from Graph, made safe to show: anyone can name an application, an API or an
organization, and Graph passes control, bidi and zero-width characters through.

In a subject, CR/LF inject headers (Django refuses them: "Header values can't contain
newlines"); in a text body they inject lines (a "Bcc:" line); a right-to-left override
shows ``Microsoft Graph\\u202e txt.exe`` as ``Microsoft Graph exe.txt``; a lone surrogate
makes an e-mail impossible to encode. :func:`plain` neutralises them for e-mails and
titles; pages show a name with :func:`plain` and a warning badge (the ``flagged`` filter
in ``portal/templatetags/graph_text.py``).
"""

import unicodedata

# Line and header breaks (and the tab): each becomes a space.
_BREAKS = frozenset("\t\n\v\f\r\x1c\x1d\x1e\x85\u2028\u2029")
# Control, format (bidi, zero-width, soft hyphen, tag characters), surrogate and line or
# paragraph separator characters: invisible, or not text at all.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# Letters that render as nothing: a name made of them looks blank.
_INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")
# What a hidden character becomes: visible, so a reader sees that something was there.
HIDDEN_MARK = "\ufffd"


def _is_hidden(char: str) -> bool:
    return unicodedata.category(char) in _HIDDEN_CATEGORIES or char in _INVISIBLE_LETTERS


def has_hidden_characters(value: str) -> bool:
    """Whether ``value`` holds a character that does not show as itself."""
    # isprintable() is False for every hidden category (and for a few harmless ones, such
    # as a no-break space): the common, clean name costs one C-level scan.
    if value.isprintable() and not _INVISIBLE_LETTERS.intersection(value):
        return False
    return any(_is_hidden(char) for char in value)


def plain(value: str) -> str:
    """``value`` on one line with every hidden character visible: line breaks and tabs
    become spaces, the others :data:`HIDDEN_MARK`."""
    if not has_hidden_characters(value):
        return value
    return "".join(
        (" " if char in _BREAKS else HIDDEN_MARK) if _is_hidden(char) else char for char in value
    )
