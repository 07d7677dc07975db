"""The web server's application: gunicorn's, and runserver's through WSGI_APPLICATION."""

import os

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
application = get_wsgi_application()

# Sign-in limits and lockouts count in the cache. In one process's memory every gunicorn
# worker would count on its own and forget at each restart: 40 forged attempts would pass.
# Only the web server needs the shared cache, so only it refuses (`manage.py check` and the
# Celery processes read the same settings without serving anyone).
_PER_PROCESS_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
}
if not settings.DEBUG and settings.CACHES["default"]["BACKEND"] in _PER_PROCESS_CACHES:
    raise ImproperlyConfigured(
        "CACHE_URL must point at Redis when DEBUG is off: in each process's own memory, "
        "sign-in limits and lockouts do not hold"
    )
