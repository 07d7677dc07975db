"""The verdict engine: why does each granted permission exist?

Pure functions over plain values, no ORM, so the rules can be read and tested as a table.
Callers (the report, the tenant pages) load manifests, feature switches, grants and the
catalog's API-call map, then ask this module for the verdicts.

Rules (see DESIGN.md):

* needed       a feature of the application that is enabled in the tenant lists the grant
* unused       only features that are disabled in the tenant list it: a revoke candidate
* unexplained  no feature lists it (or the application has no manifest)
* missing      an enabled feature lists a permission that is not granted
* narrower     a suggestion on a needed grant; see :meth:`CallIndex.narrower_than`
* justified    a grant an admin of the tenant recorded a reason to keep is needed, until
               that reason expires; see :func:`apply_justification`
"""

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum

# A candidate must allow at most this share of the granted permission's calls to count
# as clearly less broad, not merely a sibling of about the same size.
NARROWER_MAX_SIZE_SHARE = 0.5
READ_METHODS = frozenset({"GET"})

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_PLACEHOLDER = re.compile(r"\{[^}]*\}")
_VERSION_PREFIX = re.compile(r"^/(v1\.0|beta)(?=/)")


class Verdict(StrEnum):
    NEEDED = "needed"
    UNUSED = "unused"
    UNEXPLAINED = "unexplained"


@dataclass(frozen=True)
class PermissionKey:
    """A permission as (resource appId, kind, value).

    Equality ignores case: Entra treats permission values case-insensitively, and a
    manifest writing ``user.read`` means ``User.Read``.
    """

    resource_app_id: str
    kind: str
    value: str

    def _identity(self) -> tuple[str, str, str]:
        return (self.resource_app_id.lower(), self.kind, self.value.casefold())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PermissionKey) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    def __str__(self) -> str:
        return f"{self.value} ({self.kind})"


@dataclass(frozen=True)
class Need:
    """One manifest requirement: a feature needs a permission to make some API calls."""

    feature_key: str
    permission: PermissionKey
    api_calls: tuple[str, ...] = ()


@dataclass(frozen=True)
class JustificationNote:
    """An admin's reason for keeping a grant: who said so, and until when."""

    reason: str
    by: str
    # The last day the reason counts; None: it never expires.
    expires: date | None

    def in_force(self, today: date) -> bool:
        return self.expires is None or today <= self.expires


@dataclass(frozen=True)
class GrantFinding:
    permission: PermissionKey
    verdict: Verdict
    # needed: the enabled features that list it; unused: the disabled ones; else empty.
    features: tuple[str, ...]
    narrower: PermissionKey | None = None
    # The justification in force for the grant, whatever its verdict; None when there is
    # none or it has expired.
    justification: JustificationNote | None = None


@dataclass(frozen=True)
class MissingFinding:
    permission: PermissionKey
    features: tuple[str, ...]


@dataclass(frozen=True)
class Evaluation:
    grants: tuple[GrantFinding, ...]
    missing: tuple[MissingFinding, ...]


def normalize_api_call(call: str) -> tuple[str, str]:
    """``"GET /Groups/{group-id}/members?$top=5"`` -> ``("GET", "/groups/{}/members")``.

    Ids in any form (a ``{placeholder}`` of any name, a GUID, a user principal name) become
    ``{}``, so a manifest's call matches the reference's path template.
    """
    method, _, path = call.strip().partition(" ")
    path = path.strip().split("?", 1)[0].lower().rstrip("/") or "/"
    path = _VERSION_PREFIX.sub("", path)
    path = _PLACEHOLDER.sub("{}", path).replace("'", "")
    segments = ["{}" if _GUID.match(s) or "@" in s else s for s in path.split("/")]
    return method.upper(), "/".join(segments)


@dataclass(frozen=True)
class PermissionScope:
    """What one permission allows: its API calls (normalized) and privilege level."""

    permission: PermissionKey
    privilege_level: int | None
    calls: frozenset[tuple[str, str]]


@dataclass
class CallIndex:
    """The catalog's API-call map, for narrower suggestions."""

    scopes: dict[PermissionKey, PermissionScope] = field(default_factory=dict)

    @classmethod
    def build(cls, scopes: Iterable[PermissionScope]) -> "CallIndex":
        return cls({scope.permission: scope for scope in scopes})

    def narrower_than(
        self, permission: PermissionKey, declared_calls: Collection[str]
    ) -> PermissionKey | None:
        """A less broad permission of the same resource and kind that allows every call.

        A candidate qualifies when it

        1. allows every declared call,
        2. has a privilege level no higher than the granted permission's (both known), and
        3. is clearly less broad: either its calls are a strict subset of the granted
           permission's (the read-only sibling of a read-write permission), or it allows
           at most half as many calls and every call it allows beyond the granted
           permission's is a read. Microsoft's reference is incomplete in places (it lists
           reading the organization's branding under Organization.Read.All only, not under
           Directory.Read.All), so extra reads are tolerated; extra writes never are, so
           a write permission that happens to list the same read is never offered in
           place of a read one.

        Microsoft's own ``least=`` marks are not used: they are wrong too often (they
        name DeviceManagementServiceConfig.Read.All for ``GET /organization``).
        Of several candidates, the one allowing fewest calls wins, then the lower
        privilege, then the name, so the answer is stable.
        """
        granted = self.scopes.get(permission)
        if granted is None or granted.privilege_level is None or not declared_calls:
            return None
        needed = {normalize_api_call(call) for call in declared_calls}
        if not needed <= granted.calls:
            # The grant itself does not allow what is declared: the reference and the
            # manifest disagree, and nothing sound can be suggested.
            return None
        candidates = [
            scope
            for scope in self.scopes.values()
            if _is_narrower(scope, granted=granted, needed=needed)
        ]
        if not candidates:
            return None
        best = min(
            candidates,
            key=lambda s: (len(s.calls), s.privilege_level, s.permission.value.casefold()),
        )
        return best.permission


def _is_narrower(
    candidate: PermissionScope, *, granted: PermissionScope, needed: set[tuple[str, str]]
) -> bool:
    same_family = (
        candidate.permission != granted.permission
        and candidate.permission.kind == granted.permission.kind
        and candidate.permission.resource_app_id.lower()
        == granted.permission.resource_app_id.lower()
    )
    if not same_family or not needed <= candidate.calls:
        return False
    if candidate.privilege_level is None or granted.privilege_level is None:
        return False
    if candidate.privilege_level > granted.privilege_level:
        return False
    if candidate.calls < granted.calls:
        return True
    outside = candidate.calls - granted.calls
    clearly_smaller = len(candidate.calls) <= NARROWER_MAX_SIZE_SHARE * len(granted.calls)
    return clearly_smaller and all(method in READ_METHODS for method, _ in outside)


def evaluate(
    *,
    needs: Iterable[Need],
    enabled_features: Collection[str],
    granted: Iterable[PermissionKey],
    call_index: CallIndex | None = None,
) -> Evaluation:
    """Verdicts for every granted permission of one application in one tenant.

    ``needs`` is empty for an application without a manifest: everything it holds is
    then unexplained. Grants come back in the order given; missing ones in manifest order.
    """
    listed_by: dict[PermissionKey, list[Need]] = {}
    for need in needs:
        listed_by.setdefault(need.permission, []).append(need)

    granted_keys = list(dict.fromkeys(granted))
    findings = tuple(
        _grant_finding(key, listed_by.get(key, []), enabled_features, call_index)
        for key in granted_keys
    )
    granted_set = set(granted_keys)
    missing = tuple(
        MissingFinding(permission=key, features=enabled)
        for key, key_needs in listed_by.items()
        if key not in granted_set
        and (enabled := _feature_keys(key_needs, enabled_features, enabled=True))
    )
    return Evaluation(grants=findings, missing=missing)


def _grant_finding(
    key: PermissionKey,
    key_needs: list[Need],
    enabled_features: Collection[str],
    call_index: CallIndex | None,
) -> GrantFinding:
    if not key_needs:
        return GrantFinding(permission=key, verdict=Verdict.UNEXPLAINED, features=())
    enabled = _feature_keys(key_needs, enabled_features, enabled=True)
    if not enabled:
        disabled = _feature_keys(key_needs, enabled_features, enabled=False)
        return GrantFinding(permission=key, verdict=Verdict.UNUSED, features=disabled)
    narrower = None
    enabled_needs = [need for need in key_needs if need.feature_key in enabled_features]
    # Only when every enabled feature says which calls it makes can a narrower permission
    # be known to serve them all.
    if call_index is not None and all(need.api_calls for need in enabled_needs):
        calls = {call for need in enabled_needs for call in need.api_calls}
        narrower = call_index.narrower_than(key, calls)
    return GrantFinding(permission=key, verdict=Verdict.NEEDED, features=enabled, narrower=narrower)


def _feature_keys(
    key_needs: list[Need], enabled_features: Collection[str], *, enabled: bool
) -> tuple[str, ...]:
    keys = (
        need.feature_key for need in key_needs if (need.feature_key in enabled_features) == enabled
    )
    return tuple(dict.fromkeys(keys))


def apply_justification(
    finding: GrantFinding, justification: JustificationNote | None, *, today: date
) -> GrantFinding:
    """The finding of one grant once an admin's justification for it counts.

    Justifications name a grant with its consent type while :func:`evaluate` answers per
    permission, so callers apply them per grant entry. One in force makes an unused or
    unexplained grant needed, with the justification as its reason and no features (none
    that is enabled lists it); a needed grant keeps its features and carries the
    justification too. An expired one counts for nothing: the grant is what the manifest
    makes it, which is how its owner gets asked to review it.
    """
    if justification is None or not justification.in_force(today):
        return finding
    if finding.verdict == Verdict.NEEDED:
        return replace(finding, justification=justification)
    return replace(finding, verdict=Verdict.NEEDED, features=(), justification=justification)
