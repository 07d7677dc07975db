"""``/healthz``: can this process reach the database and the Celery broker?

Public (load balancers and ``docker compose`` call it without signing in), so it says
only "ok" or "unavailable" per part: no host names, versions or error texts. The reason
goes to the log.
"""

import logging
import os

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from portal.celery import app as celery_app

logger = logging.getLogger(__name__)

# A health check that hangs is worse than one that fails: the orchestrator's own timeout
# would hide which part is down.
BROKER_TIMEOUT = 3


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": database_ok(), "broker": broker_ok()}
    return JsonResponse(
        {part: "ok" if ok else "unavailable" for part, ok in checks.items()},
        status=200 if all(checks.values()) else 503,
    )


def database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        logger.warning("Health check: the database is unavailable", exc_info=True)
        return False
    return True


def broker_ok() -> bool:
    if celery_app.conf.broker_url.startswith("filesystem://"):
        # The embedded broker is a folder: fine as long as messages can be written there.
        folder = celery_app.conf.broker_transport_options.get("data_folder_in", "")
        ok = bool(folder) and os.access(folder, os.W_OK)
        if not ok:
            logger.warning("Health check: the broker folder %r is not writable", folder)
        return ok
    try:
        with celery_app.connection_for_write(connect_timeout=BROKER_TIMEOUT) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT)
    except Exception:  # any transport's failure means "unavailable"
        logger.warning("Health check: the broker is unavailable", exc_info=True)
        return False
    return True
