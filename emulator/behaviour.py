"""Switches that make the emulator behave like Graph where Graph is imperfect, and its clock.

Every switch is off by default. A scenario sets them under `behaviour:`, tests change
them at run time (`PUT`/`PATCH /_emulator/behaviour`, `Emulator.set_behaviour`). The
clock is the emulator's own: it runs with the wall clock and tests move it forward
(`POST /_emulator/clock`), so a lag of minutes passes in no time. Token lifetimes stay on
the wall clock (clients check `exp` against theirs); everything below uses this one.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

# Directory objects' delta tokens expire after 7 days (delta-query-overview.md, "Token duration").
DEFAULT_DELTA_TOKEN_MAX_AGE = 7 * 24 * 3600
COUNT_MODES = ("ignore", "error")
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class Clock:
    """Wall-clock seconds plus an offset that only grows (tests advance it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> float:
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            raise ValueError("advance: expected seconds, 0 or more")
        with self._lock:
            self._offset += float(seconds)
            return self._offset

    @property
    def offset(self) -> float:
        return self._offset

    def reset(self) -> None:
        with self._lock:
            self._offset = 0.0


@dataclass(frozen=True)
class ReplicationLag:
    """Seconds during which reads still show the state before a write."""

    collections: float = 0.0  # listings (and delta rounds)
    by_id: float = 0.0  # GET .../{id}

    @property
    def active(self) -> bool:
        return self.collections > 0 or self.by_id > 0


@dataclass(frozen=True)
class IncompleteGrants:
    """Which grants the plain `GET /oauth2PermissionGrants` listing leaves out."""

    fraction: float = 0.0  # of all grants, chosen by a seeded hash of the grant id
    grants: tuple[str, ...] = ()  # grant ids
    clients: tuple[str, ...] = ()  # client appIds or service principal object ids
    seed: int = 0

    @property
    def active(self) -> bool:
        return bool(self.fraction or self.grants or self.clients)

    def omits(self, grant: dict[str, Any], client_app_id: str | None) -> bool:
        if grant["id"] in self.grants:
            return True
        if grant["clientId"] in self.clients or (client_app_id or "") in self.clients:
            return True
        if self.fraction <= 0:
            return False
        digest = hashlib.sha256(f"{self.seed}/{grant['id']}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.fraction


@dataclass(frozen=True)
class Throttling:
    """A request budget per app and tenant, as Graph's identity service keeps one."""

    limit: int = 0  # requests per window; 0 = no budget kept
    window_seconds: float = 10.0
    report_above: float = 0.8  # x-ms-throttle-limit-percentage appears above this share
    enforce: bool = False  # answer 429 once the budget is spent
    fractional_retry_after: bool = False  # "1.5" rather than "2" in Retry-After

    @property
    def active(self) -> bool:
        return self.limit > 0


@dataclass(frozen=True)
class Behaviour:
    replication_lag: ReplicationLag = field(default_factory=ReplicationLag)
    incomplete_grants: IncompleteGrants = field(default_factory=IncompleteGrants)
    vanished_principals: tuple[str, ...] = ()  # appIds or object ids: listed, then 404
    token_role_lag: float = 0.0  # seconds a new (or removed) app role stays out of (in) tokens
    # Seconds before an audit event written now is returned (Entra's reporting latency).
    audit_latency: float = 0.0
    strict_filters: bool = False  # Graph's own $filter rules on app role assignments
    count_without_header: str = "ignore"  # `$count=true` without ConsistencyLevel: or "error"
    delta_token_max_age: float = DEFAULT_DELTA_TOKEN_MAX_AGE
    throttling: Throttling = field(default_factory=Throttling)

    @classmethod
    def from_dict(cls, data: Any, base: Behaviour | None = None) -> Behaviour:
        """Validates switches given as JSON/YAML; keys left out keep `base`'s values.
        Raises ValueError naming the bad key."""
        if not isinstance(data, dict):
            raise ValueError("expected a mapping of switches")
        current = base or cls()
        _known(data, {f.name for f in fields(cls)}, "")
        changes: dict[str, Any] = {}
        if "replication_lag" in data:
            value = data["replication_lag"]
            if _is_number(value):  # one number: both kinds of read
                value = {"collections": value, "by_id": value}
            changes["replication_lag"] = _section(
                ReplicationLag, value, "replication_lag", current.replication_lag
            )
        if "incomplete_grants" in data:
            changes["incomplete_grants"] = _section(
                IncompleteGrants, data["incomplete_grants"], "incomplete_grants",
                current.incomplete_grants,
            )  # fmt: skip
            if not 0 <= changes["incomplete_grants"].fraction <= 1:
                raise ValueError("incomplete_grants.fraction: must be between 0 and 1")
        if "throttling" in data:
            changes["throttling"] = _section(
                Throttling, data["throttling"], "throttling", current.throttling
            )
            if changes["throttling"].window_seconds <= 0:
                raise ValueError("throttling.window_seconds: must be more than 0")
        if "vanished_principals" in data:
            changes["vanished_principals"] = _strings(
                data["vanished_principals"], "vanished_principals"
            )
        for name in ("token_role_lag", "delta_token_max_age", "audit_latency"):
            if name in data:
                changes[name] = _seconds(data[name], name)
        if "strict_filters" in data:
            changes["strict_filters"] = _flag(data["strict_filters"], "strict_filters")
        if "count_without_header" in data:
            if data["count_without_header"] not in COUNT_MODES:
                raise ValueError("count_without_header: expected 'ignore' or 'error'")
            changes["count_without_header"] = data["count_without_header"]
        return replace(current, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def retry_after_text(seconds: float, fractional: bool) -> str:
    """Graph has sent fractional seconds ("2.542", microsoft/dotnet#955), though RFC 9110
    allows only whole ones."""
    if fractional:
        return f"{max(seconds, 0.1):.1f}"
    return str(max(math.ceil(seconds), 1))


def _section(cls: Any, value: Any, where: str, current: Any) -> Any:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a mapping")
    _known(value, {f.name for f in fields(cls)}, where)
    changes: dict[str, Any] = {}
    for item in fields(cls):
        if item.name not in value:
            continue
        key, raw = f"{where}.{item.name}", value[item.name]
        default = getattr(cls(), item.name)
        if isinstance(default, bool):
            changes[item.name] = _flag(raw, key)
        elif isinstance(default, tuple):
            changes[item.name] = _strings(raw, key)
        elif isinstance(default, int) and not isinstance(default, float):
            if not isinstance(raw, int) or isinstance(raw, bool) or raw < 0:
                raise ValueError(f"{key}: expected a whole number, 0 or more")
            changes[item.name] = raw
        else:
            changes[item.name] = _seconds(raw, key)
    return replace(current, **changes)


def _known(data: dict, names: set[str], where: str) -> None:
    for key in data:
        if key not in names:
            raise ValueError(f"{where + '.' if where else ''}{key}: unknown switch")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _seconds(value: Any, key: str) -> float:
    if not _is_number(value) or value < 0 or not math.isfinite(value):
        raise ValueError(f"{key}: expected a number, 0 or more")
    return float(value)


def _flag(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{key}: expected true or false")
    return value


def _strings(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{key}: expected a list of ids")
    # GUIDs compare without case; grant and assignment ids are base64url and keep theirs.
    return tuple(v.lower() if _GUID.fullmatch(v.lower()) else v for v in value)
