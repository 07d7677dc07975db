"""HTTP-agnostic request/response types and a small router.

The server, `$batch` and the tests all go through `Request` -> handler -> `Response`, so
an inner batch request is handled exactly like a top-level one.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode


@dataclass(slots=True)
class Request:
    method: str
    path: str  # percent-decoded, without the query string
    query: dict[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    base_url: str  # e.g. https://127.0.0.1:8443, used to build absolute links
    params: dict[str, str] = field(default_factory=dict)  # filled in by the router

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json"
    drop: bool = False  # close the connection without answering (a fault)


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def json_response(
    status: int, payload: Any, headers: list[tuple[str, str]] | None = None
) -> Response:
    return Response(status, dumps(payload), headers or [])


def html_response(status: int, title: str, body_html: str) -> Response:
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:42rem;margin:2rem auto}"
        "button{display:block;margin:.4rem 0;padding:.5rem;width:100%;text-align:left}"
        "</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body_html}</body></html>"
    )
    return Response(status, page.encode(), content_type="text/html; charset=utf-8")


def redirect(location: str) -> Response:
    return Response(302, b"", [("Location", location)], content_type="text/plain")


def add_params(url: str, params: Mapping[str, str], separator: str = "?") -> str:
    """Appends params to a redirect URI that may already carry a query."""
    joiner = "&" if separator == "?" and "?" in url else separator
    return f"{url}{joiner}{urlencode(params)}"


Handler = Callable[[Request], Response]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    template: str  # e.g. "/v1.0/servicePrincipals/{id}": the request counters' key
    pattern: re.Pattern[str]
    handler: Handler


class Router:
    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(
        self, method: str, template: str, handler: Handler, *, ignore_case: bool = False
    ) -> None:
        regex = ""
        for literal, name in re.findall(r"([^{]*)(?:\{(\w+)\})?", template):
            regex += re.escape(literal)
            if name:
                regex += f"(?P<{name}>[^/']+)"
        flags = re.IGNORECASE if ignore_case else 0
        self._routes.append(Route(method, template, re.compile(f"{regex}/?", flags), handler))

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """Returns (route, params, path_exists): path_exists tells 405 from 404."""
        path_exists = False
        for route in self._routes:
            found = route.pattern.fullmatch(path)
            if found is None:
                continue
            if route.method == method:
                return route, found.groupdict(), True
            path_exists = True
        return None, {}, path_exists
