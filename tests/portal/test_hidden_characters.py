"""Strings from Graph are hostile (issue 12, item 7): control, bidi and zero-width
characters are neutralised in e-mail subjects and text bodies and flagged on pages."""

import pytest
from django.template import Context, Template

from portal.text import HIDDEN_MARK, has_hidden_characters, plain

# The emulator's Woodgrove app with control characters in its name (emulator/scenarios/demo.yaml).
WOODGROVE_BOT = "Reporting\x00Bot\t(v2)\n\x07\x1b[31mred\x1b[0m \u202etxt.exe"


@pytest.mark.parametrize(
    "name",
    [
        "Microsoft Graph\u202e txt.exe",  # right-to-left override
        "Graph\u2066isolated\u2069",  # bidi isolates
        "Gra\u200bph",  # zero-width space
        "Gra\u200dph",  # zero-width joiner
        "\ufeffGraph",  # byte order mark
        "Graph\x00",  # NUL
        "Graph\x1b[31m",  # ANSI escape
        "Graph\r\nBcc: evil@example.com",
        "Graph\u2028Bcc: evil@example.com",  # Unicode line separator
        "Graph\x85",  # NEL
        "\u3164",  # a Hangul filler: a name that looks blank
        "Graph\U000e0041\U000e0042",  # tag characters: text no one sees
        "Graph\ud800",  # a lone surrogate, which no e-mail can encode
    ],
)
def test_a_name_with_hidden_characters_is_flagged_and_made_plain(name):
    shown = plain(name)

    assert has_hidden_characters(name)
    assert not has_hidden_characters(shown)
    assert "\n" not in shown and "\r" not in shown
    shown.encode("utf-8")  # a lone surrogate would raise here


def test_line_breaks_become_spaces_and_the_rest_a_visible_mark():
    assert plain("Graph\r\nBcc: evil@example.com") == "Graph  Bcc: evil@example.com"
    assert plain("Microsoft Graph\u202e txt.exe") == f"Microsoft Graph{HIDDEN_MARK} txt.exe"
    assert plain(WOODGROVE_BOT) == (
        f"Reporting{HIDDEN_MARK}Bot (v2) {HIDDEN_MARK}{HIDDEN_MARK}[31mred{HIDDEN_MARK}[0m "
        f"{HIDDEN_MARK}txt.exe"
    )


@pytest.mark.parametrize(
    "name", ["Microsoft Graph", "Contoso Ltd.", "Müller & Söhne", "東京 アプリ", "שלום", "Café ☕"]
)
def test_ordinary_names_in_any_script_pass_unchanged(name):
    assert not has_hidden_characters(name)
    assert plain(name) == name


def render(template: str, **context: object) -> str:
    return Template("{% load graph_text %}" + template).render(Context(context))


def test_pages_show_a_warning_badge_beside_a_name_with_hidden_characters():
    flagged = render("{{ name|flagged }}", name="Microsoft Graph\u202e txt.exe")
    clean = render("{{ name|flagged }}", name="Microsoft Graph")

    assert "name contains hidden characters" in flagged
    assert "\u202e" not in flagged and f"Microsoft Graph{HIDDEN_MARK} txt.exe" in flagged
    assert clean == "Microsoft Graph"


def test_the_badge_escapes_the_name_it_shows():
    shown = render("{{ name|flagged }}", name="<script>alert(1)</script>\u200b")

    assert "<script>" not in shown and "&lt;script&gt;" in shown


def test_plain_in_templates_is_for_titles_and_text_bodies():
    assert render("{{ name|plain }}", name="a\nb\u202ec") == f"a b{HIDDEN_MARK}c"
    assert render("{{ name|plain }}", name=None) == "None"
