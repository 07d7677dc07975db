"""Faults on demand, and request counters.

A rule matches requests by method and a path regex and fires on every Nth match, after
the first `after` matches, at most `times` times, or with a seeded probability. When it
fires it answers with an error status (429 with Retry-After, 503, ...), delays the
answer, drops the connection, or expires every token issued so far.
"""

from __future__ import annotations

import random
import re
import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

_MAX_DELAY_MS = 60_000  # the emulator stays bounded even when a test asks for a lot


@dataclass
class Effect:
    status: int | None = None
    retry_after: float | None = None
    delay_ms: int = 0
    drop: bool = False
    expire_tokens: bool = False


@dataclass
class FaultRule:
    path: str = ""
    method: str | None = None
    status: int | None = None
    retry_after: float | None = None  # seconds; 1.5 is sent as "1.5", as Graph has done
    delay_ms: int = 0
    drop: bool = False
    expire_tokens: bool = False
    every: int = 1
    after: int = 0
    times: int | None = None
    probability: float | None = None
    seed: int = 0
    _pattern: re.Pattern[str] = field(init=False, repr=False)
    _random: random.Random = field(init=False, repr=False)
    _matched: int = field(default=0, init=False, repr=False)
    _fired: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        self._pattern = re.compile(self.path, re.IGNORECASE)
        self._random = random.Random(self.seed)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        """Validates a rule given as JSON/YAML; raises ValueError naming the bad key."""
        fields = {name for name in cls.__dataclass_fields__ if not name.startswith("_")}
        for key in data:
            if key not in fields:
                raise ValueError(f"{key}: unknown key")
        _check(data, "path", str)
        _check(data, "method", str)
        _check(data, "status", int, 400, 599)
        _check(data, "retry_after", (int, float), 0, 3600)
        _check(data, "delay_ms", int, 0, _MAX_DELAY_MS)
        _check(data, "drop", bool)
        _check(data, "expire_tokens", bool)
        _check(data, "every", int, 1, 1_000_000)
        _check(data, "after", int, 0, 1_000_000)
        _check(data, "times", int, 1, 1_000_000)
        _check(data, "probability", (int, float), 0, 1)
        _check(data, "seed", int)
        effects = [k for k in ("status", "delay_ms", "drop", "expire_tokens") if data.get(k)]
        if not effects:
            raise ValueError("give an effect: status, delay_ms, drop or expire_tokens")
        if data.get("drop") and data.get("status"):
            raise ValueError("drop: a dropped connection has no status")
        if "retry_after" in data and not data.get("status"):
            raise ValueError("retry_after: needs a status")
        try:
            rule = cls(**data)
        except re.error as exc:
            raise ValueError(f"path: not a regular expression ({exc})") from exc
        if rule.method:
            rule.method = rule.method.upper()
        return rule

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        return {**data, "matched": self._matched, "fired": self._fired}

    def fires(self, method: str, path: str) -> bool:
        if self.method and self.method != method:
            return False
        if not self._pattern.search(path):
            return False
        self._matched += 1
        if self._matched <= self.after or (self._matched - self.after) % self.every:
            return False
        if self.times is not None and self._fired >= self.times:
            return False
        if self.probability is not None and self._random.random() >= self.probability:
            return False
        self._fired += 1
        return True


def _check(
    data: dict[str, Any], key: str, kind: Any, low: float | None = None, high: float | None = None
) -> None:
    if key not in data or data[key] is None:
        return
    value = data[key]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ValueError(f"{key}: wrong type {type(value).__name__}")
    if low is not None and high is not None and not low <= value <= high:
        raise ValueError(f"{key}: must be between {low} and {high}")


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def set(self, rules: list[dict[str, Any]]) -> None:
        parsed = [FaultRule.from_dict(rule) for rule in rules]  # all or nothing
        with self._lock:
            self._rules = parsed

    def add(self, rules: list[dict[str, Any]]) -> None:
        parsed = [FaultRule.from_dict(rule) for rule in rules]
        with self._lock:
            self._rules.extend(parsed)

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.to_dict() for rule in self._rules]

    def decide(self, method: str, path: str, *, can_drop: bool = True) -> Effect | None:
        """The combined effect of the rules that fire for this request, if any."""
        effect = None
        with self._lock:
            for rule in self._rules:
                if rule.drop and not can_drop:
                    continue
                if not rule.fires(method, path):
                    continue
                effect = effect or Effect()
                effect.delay_ms += rule.delay_ms
                effect.drop |= rule.drop
                effect.expire_tokens |= rule.expire_tokens
                if rule.status and effect.status is None:
                    effect.status, effect.retry_after = rule.status, rule.retry_after
        if effect:
            effect.delay_ms = min(effect.delay_ms, _MAX_DELAY_MS)
        return effect


# The query strings kept for tests to read (the latest ones): bounded, since a benchmark
# sends hundreds of thousands of requests.
_QUERIES_KEPT = 5000


class Counters:
    """Requests received, counted before any fault: per "METHOD /path/{template}" and per
    "METHOD /the/path/as/requested" (to count what touched one object); and the latest
    requests' query parameters (to check what a client asked for, e.g. its $filter)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._paths: Counter[str] = Counter()
        self._queries: deque[tuple[str, dict[str, str]]] = deque(maxlen=_QUERIES_KEPT)

    def add(self, key: str, path: str | None = None, query: dict[str, str] | None = None) -> None:
        with self._lock:
            self._counts[key] += 1
            if path is not None:
                self._paths[path] += 1
                self._queries.append((path, dict(query or {})))

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total": sum(self._counts.values()),
                "requests": dict(self._counts),
                "paths": dict(self._paths),
            }

    def matching(self, pattern: str, method: str | None = None) -> int:
        """Requests whose path matches a regular expression (searched, ignoring case)."""
        found = re.compile(pattern, re.IGNORECASE)
        with self._lock:
            return sum(
                count
                for key, count in self._paths.items()
                if (method is None or key.split(" ", 1)[0] == method.upper())
                and found.search(key.split(" ", 1)[1])
            )

    def queries(self, pattern: str, method: str | None = None) -> list[dict[str, str]]:
        """The query parameters of the latest requests whose path matches, oldest first."""
        found = re.compile(pattern, re.IGNORECASE)
        with self._lock:
            return [
                dict(query)
                for key, query in self._queries
                if (method is None or key.split(" ", 1)[0] == method.upper())
                and found.search(key.split(" ", 1)[1])
            ]

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._paths.clear()
            self._queries.clear()
