"""The portal's icon: an SVG from its own static files, named by every page."""

from pathlib import Path

from django.conf import settings
from django.templatetags.static import static
from django.urls import reverse


def test_every_page_names_the_portals_own_icon(client, db):
    page = client.get(reverse("account_login")).content.decode()

    assert f'<link rel="icon" href="{static("favicon.svg")}" type="image/svg+xml">' in page
    icon = Path(settings.BASE_DIR, "static", "favicon.svg").read_text()
    assert icon.startswith("<svg") and "http://www.w3.org/2000/svg" in icon
    assert "href=" not in icon  # nothing it would load from elsewhere
