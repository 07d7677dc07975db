"""The PostgreSQL database a benchmark runs in (its name starts with _, so the runner
does not take it for a benchmark)."""

from urllib.parse import urlsplit


def database_ensure(url: str) -> None:
    """Creates the database named in ``url`` if the server does not have it yet."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    server = parts._replace(path="/postgres").geturl()
    with psycopg.connect(server, autocommit=True) as connection:
        found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if found.fetchone() is None:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
