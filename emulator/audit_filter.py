"""`$filter` on directoryAudits, as directoryaudit.md lists it: activityDateTime (eq, ge,
le, and gt/lt), activityDisplayName (eq, startswith), category, result, loggedByService,
correlationId and id (eq), initiatedBy/user/{id,displayName,userPrincipalName} and
initiatedBy/app/{appId,displayName} (eq; startswith on userPrincipalName), and
targetResources/any(t: t/id eq '...') (or t/displayName); joined by and, or, parentheses.

DateTimeOffset values are unquoted (`activityDateTime ge 2026-11-01T00:00:00Z`), as OData
has them; a quoted one is an error, as a type mismatch is on Graph.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from emulator.state import GraphError

Match = Callable[[dict[str, Any]], bool]
_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')"
    r"|(?P<moment>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))"
    r"|(?P<guid>[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\b)"
    r"|(?P<word>[A-Za-z_][\w]*(?:/[A-Za-z_]\w*)*)"
    r"|(?P<punct>[(),:]))"
)
_STRINGS = {
    "activitydisplayname": ("activityDisplayName",),
    "category": ("category",),
    "result": ("result",),
    "loggedbyservice": ("loggedByService",),
    "correlationid": ("correlationId",),
    "id": ("id",),
    "initiatedby/user/id": ("initiatedBy", "user", "id"),
    "initiatedby/user/displayname": ("initiatedBy", "user", "displayName"),
    "initiatedby/user/userprincipalname": ("initiatedBy", "user", "userPrincipalName"),
    "initiatedby/app/appid": ("initiatedBy", "app", "appId"),
    "initiatedby/app/displayname": ("initiatedBy", "app", "displayName"),
}
_STARTSWITH = {"activitydisplayname", "initiatedby/user/userprincipalname"}
_TARGET_FIELDS = {"id": "id", "displayname": "displayName"}
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "eq": lambda a, b: a == b,
    "ge": lambda a, b: a >= b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "lt": lambda a, b: a < b,
}


def parse(text: str) -> Match:
    tokens = _tokens(text)
    parser = _Parser(tokens)
    match = parser.or_expression()
    if parser.tokens:
        raise _error(f"unexpected '{parser.tokens[0][1]}'")
    return match


def _tokens(text: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        token = _TOKEN.match(text, position)
        if token is None or token.end() == position:
            if text[position:].strip():
                raise _error(f"unexpected text at '{text[position:]}'")
            break
        position = token.end()
        kind = token.lastgroup or ""
        found.append((kind, token.group(kind)))
    return found


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens

    def take(self, kind: str, value: str | None = None) -> str:
        if not self.tokens:
            raise _error("the clause ends too early")
        found_kind, found = self.tokens.pop(0)
        if found_kind != kind or (value is not None and found.lower() != value):
            raise _error(f"expected {value or kind}, found '{found}'")
        return found

    def peek_word(self, value: str) -> bool:
        return (
            bool(self.tokens) and self.tokens[0][0] == "word" and self.tokens[0][1].lower() == value
        )

    def or_expression(self) -> Match:
        parts = [self.and_expression()]
        while self.peek_word("or"):
            self.tokens.pop(0)
            parts.append(self.and_expression())
        return parts[0] if len(parts) == 1 else (lambda e: any(p(e) for p in parts))

    def and_expression(self) -> Match:
        parts = [self.atom()]
        while self.peek_word("and"):
            self.tokens.pop(0)
            parts.append(self.atom())
        return parts[0] if len(parts) == 1 else (lambda e: all(p(e) for p in parts))

    def atom(self) -> Match:
        if self.tokens and self.tokens[0] == ("punct", "("):
            self.tokens.pop(0)
            inner = self.or_expression()
            self.take("punct", ")")
            return inner
        word = self.take("word")
        lowered = word.lower()
        if lowered == "startswith":
            self.take("punct", "(")
            name = self.take("word").lower()
            if name not in _STARTSWITH:
                raise _unsupported(name)
            self.take("punct", ",")
            prefix = _string(self.take("string")).casefold()
            self.take("punct", ")")
            path = _STRINGS[name]
            return lambda e: str(_dig(e, path) or "").casefold().startswith(prefix)
        if lowered == "targetresources/any":
            return self.any_target()
        operator = self.take("word").lower()
        if lowered == "activitydatetime":
            if operator not in _COMPARE:
                raise _error(f"the operator '{operator}' is not supported on activityDateTime")
            if not self.tokens or self.tokens[0][0] != "moment":
                raise _error("activityDateTime takes a DateTimeOffset, unquoted")
            bound = _moment(self.take("moment"))
            compare = _COMPARE[operator]
            return lambda e: compare(_moment(e["activityDateTime"]), bound)
        if lowered not in _STRINGS:
            raise _unsupported(word)
        if operator != "eq":
            raise _error(f"the operator '{operator}' is not supported on {word}")
        value = self.literal()
        path = _STRINGS[lowered]
        return lambda e: str(_dig(e, path) or "").casefold() == value

    def any_target(self) -> Match:
        self.take("punct", "(")
        variable = self.take("word").lower()
        self.take("punct", ":")
        property_path = self.take("word").lower()
        prefix, _, name = property_path.partition("/")
        if prefix != variable or name not in _TARGET_FIELDS:
            raise _unsupported(f"targetResources/{name or property_path}")
        self.take("word", "eq")
        value = self.literal()
        self.take("punct", ")")
        field = _TARGET_FIELDS[name]
        return lambda e: any(
            str(t.get(field) or "").casefold() == value for t in e["targetResources"]
        )

    def literal(self) -> str:
        if not self.tokens or self.tokens[0][0] not in ("string", "guid"):
            raise _error("expected a quoted value")
        kind, raw = self.tokens.pop(0)
        return (_string(raw) if kind == "string" else raw).casefold()


def _string(raw: str) -> str:
    return raw[1:-1].replace("''", "'")


def _moment(text: str) -> float:
    # Python parses at most 6 decimals; Entra writes 7.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
    return dt.datetime.fromisoformat(text).timestamp()


def _dig(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = data
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _unsupported(name: str) -> GraphError:
    return GraphError(
        400,
        "Request_UnsupportedQuery",
        f"Unsupported or invalid query filter clause specified for property '{name}' of "
        "resource 'directoryAudit'.",
    )


def _error(detail: str) -> GraphError:
    return GraphError(400, "BadRequest", f"Invalid filter clause: {detail}.")
