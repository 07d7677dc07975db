# The portal's one image: web (gunicorn), Celery worker and beat differ only in command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORTAL_VAR_DIR=/app/var \
    WEB_CONCURRENCY=3

WORKDIR /app
# The runtime lock pins every dependency the portal runs on, as requirements.lock does,
# without the development tools (pytest, Playwright, ruff, aiosmtpd, mypy); wheels exist
# for all of them (psycopg[binary]).
COPY requirements.runtime.lock ./
RUN pip install --requirement requirements.runtime.lock

COPY . .
# collectstatic imports the settings, which need a SECRET_KEY once DEBUG is off: a throwaway
# random one, for this build step only (the containers get theirs from .env).
RUN DEBUG=0 SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    python manage.py collectstatic --no-input -v 0 \
    && useradd --system --uid 1000 --home-dir /app portal \
    && mkdir -p /app/var && chown -R portal /app/var

USER portal
EXPOSE 8000
# gunicorn reads its number of processes from WEB_CONCURRENCY (2-4 per CPU is its advice).
# Proxies' X-Forwarded-Proto counts only through SECURE_PROXY_SSL_HEADER (settings).
CMD ["gunicorn", "portal.wsgi:application", "--bind", "0.0.0.0:8000", "--timeout", "60"]
