"""How risky is an application in a tenant: one documented score, a level and its reasons.

Pure: plain values in, plain values out, no database, so the rule reads and tests as a
table (README, "Risk"). Callers gather the evidence the portal holds about an
application in a tenant (what it holds, the verdicts, who publishes it, sign-ins,
credentials, owners) and ask :func:`assess` for the answer.

The rule, each row adding points:

* what it holds, each permission once whatever the number of its grants: control plane
  weighs most and has no ceiling; management plane and user access have ceilings, so that
  an app with fifty harmless scopes does not outrank one with a control-plane role.
  Permissions EntraOps does not tier are rated by Microsoft's privilege level (4 or 5 as
  management plane, 1 to 3 as user access);
* unused and unexplained grants (revoke candidates), with ceilings;
* third-party, multi-tenant, an unverified publisher (third-party only);
* inactive, credentials placed on the service principal, no owner.

Evidence the portal does not have (``None``, an unknown publisher, a permission with
neither tier nor privilege level) adds nothing and is listed in ``unknown`` instead: an
unknown never raises the score by itself.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

MICROSOFT_GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"


class RiskLevel(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """For sorting, most urgent first: critical 0 ... low 3."""
        return list(RiskLevel)[::-1].index(self)


class Ownership(StrEnum):
    """Whose application it is, as the tenant sees it."""

    OWN = "own"  # registered in this tenant
    THIRD_PARTY = "third_party"  # registered in another organization
    MICROSOFT = "microsoft"  # Microsoft's first-party apps
    MANAGED_IDENTITY = "managed_identity"
    UNKNOWN = "unknown"


# Kinds of permission, as PermissionKind spells them.
APPLICATION = "application"
DELEGATED = "delegated"
# EntraOps' tiers, as permissions.models.Tier spells them ("" = not tiered).
CONTROL_PLANE = "ControlPlane"
MANAGEMENT_PLANE = "ManagementPlane"
USER_ACCESS = "UserAccess"

# Points per permission held, by kind; a ceiling per row (None: none).
CONTROL_PLANE_POINTS = {APPLICATION: 40, DELEGATED: 20}
MANAGEMENT_PLANE_POINTS = {APPLICATION: 10, DELEGATED: 4}
MANAGEMENT_PLANE_CAP = 30
USER_ACCESS_POINTS = {APPLICATION: 2, DELEGATED: 1}
USER_ACCESS_CAP = 10
# A permission without a tier counts as management plane from this privilege level on,
# and as user access below it.
UNTIERED_MANAGEMENT_FROM_LEVEL = 4
UNUSED_POINTS = 2
UNUSED_CAP = 10
UNEXPLAINED_POINTS = 2
UNEXPLAINED_CAP = 10
THIRD_PARTY_POINTS = 5
MULTI_TENANT_POINTS = 3
UNVERIFIED_PUBLISHER_POINTS = 5
INACTIVE_POINTS = 10
SP_CREDENTIALS_POINTS = 10
NO_OWNER_POINTS = 5

# The lowest score of each level, most severe first; below the last: low.
LEVEL_FLOORS: tuple[tuple[RiskLevel, int], ...] = (
    (RiskLevel.CRITICAL, 70),
    (RiskLevel.HIGH, 40),
    (RiskLevel.MEDIUM, 15),
)
INACTIVE_DAYS = 90
# Reasons name this many permissions, then count the rest.
NAMED_IN_REASON = 3


@dataclass(frozen=True)
class HeldPermission:
    """A permission the application holds: its catalog facts, where the catalog has them."""

    value: str
    kind: str  # application | delegated
    tier: str = ""  # ControlPlane | ManagementPlane | UserAccess | "" (not tiered, or unknown)
    privilege_level: int | None = None  # Microsoft's, 1 (lowest) to 5
    resource_app_id: str = MICROSOFT_GRAPH_APP_ID

    @property
    def identity(self) -> tuple[str, str, str]:
        # Entra compares permission values case-insensitively.
        return (self.resource_app_id.lower(), self.kind, self.value.casefold())

    @property
    def label(self) -> str:
        return f"{self.value} ({self.kind})"


@dataclass(frozen=True)
class RiskEvidence:
    """What the portal knows about one application in one tenant; None = not known."""

    permissions: tuple[HeldPermission, ...] = ()
    unused: int = 0
    unexplained: int = 0
    ownership: Ownership = Ownership.UNKNOWN
    # Other organizations' users can sign in to it (its sign-in audience).
    multi_tenant: bool | None = None
    publisher_verified: bool | None = None
    # No sign-in on record within ``inactive_days``.
    inactive: bool | None = None
    inactive_days: int = INACTIVE_DAYS
    # Secrets or certificates placed on the service principal itself, not on its app
    # registration: a way in that the app's owners may not even see.
    credentials_on_service_principal: bool | None = None
    has_owner: bool | None = None


@dataclass(frozen=True)
class RiskReason:
    points: int
    text: str


@dataclass(frozen=True)
class RiskAssessment:
    score: int
    level: RiskLevel
    # Each row of the rule that added points, in the rule's order.
    reasons: tuple[RiskReason, ...]
    # What the portal could not know, in words ("sign-in activity"): it added nothing.
    unknown: tuple[str, ...]


def level_of(score: int) -> RiskLevel:
    for level, floor in LEVEL_FLOORS:
        if score >= floor:
            return level
    return RiskLevel.LOW


def assess(evidence: RiskEvidence) -> RiskAssessment:
    """The application's score, level, reasons and unknowns; the same evidence in any
    order gives the same answer."""
    reasons: list[RiskReason] = []
    unknown: list[str] = []
    held = _distinct(evidence.permissions)

    control, management, user_access, unrated = _by_weight(held)
    _add(reasons, _per_permission("control-plane", control, CONTROL_PLANE_POINTS, cap=None))
    _add(
        reasons,
        _per_permission(
            "management-plane", management, MANAGEMENT_PLANE_POINTS, cap=MANAGEMENT_PLANE_CAP
        ),
    )
    _add(
        reasons,
        _per_permission("user-access", user_access, USER_ACCESS_POINTS, cap=USER_ACCESS_CAP),
    )
    if unrated:
        unknown.append(
            f"the weight of {_count(len(unrated), 'permission')} the catalog has no tier or "
            f"privilege level for: {_names(unrated)}"
        )

    _add(reasons, _counted(evidence.unused, "unused grant", UNUSED_POINTS, UNUSED_CAP))
    _add(
        reasons,
        _counted(evidence.unexplained, "unexplained grant", UNEXPLAINED_POINTS, UNEXPLAINED_CAP),
    )

    ownership = evidence.ownership
    # Microsoft's own apps and managed identities are part of the platform: publisher,
    # audience and owners say nothing about them.
    platform = ownership in (Ownership.MICROSOFT, Ownership.MANAGED_IDENTITY)
    if ownership == Ownership.UNKNOWN:
        unknown.append("who publishes it (third-party, publisher verification)")
    if ownership == Ownership.THIRD_PARTY:
        reasons.append(
            RiskReason(THIRD_PARTY_POINTS, "third-party: registered in another organization")
        )
    if not platform:
        _fact(
            reasons,
            unknown,
            evidence.multi_tenant,
            RiskReason(MULTI_TENANT_POINTS, "multi-tenant: other organizations' users can sign in"),
            "sign-in audience (multi-tenant)",
        )
    if ownership == Ownership.THIRD_PARTY:
        _fact(
            reasons,
            unknown,
            None if evidence.publisher_verified is None else not evidence.publisher_verified,
            RiskReason(UNVERIFIED_PUBLISHER_POINTS, "publisher not verified"),
            "publisher verification",
        )
    _fact(
        reasons,
        unknown,
        evidence.inactive,
        RiskReason(
            INACTIVE_POINTS,
            f"inactive: no sign-in on record in the last {evidence.inactive_days} days",
        ),
        "sign-in activity (inactive or not)",
    )
    if ownership != Ownership.MANAGED_IDENTITY:
        # A managed identity's certificate is Azure's to keep, not a credential anyone placed.
        _fact(
            reasons,
            unknown,
            evidence.credentials_on_service_principal,
            RiskReason(SP_CREDENTIALS_POINTS, "credentials placed on the service principal"),
            "credentials on the service principal",
        )
    if not platform:
        _fact(
            reasons,
            unknown,
            None if evidence.has_owner is None else not evidence.has_owner,
            RiskReason(NO_OWNER_POINTS, "no owner: nobody answers for it"),
            "owners",
        )

    score = sum(reason.points for reason in reasons)
    return RiskAssessment(
        score=score, level=level_of(score), reasons=tuple(reasons), unknown=tuple(unknown)
    )


def _distinct(permissions: Iterable[HeldPermission]) -> list[HeldPermission]:
    """Each permission once (an admin consent and user consents of one scope are one
    permission), sorted, so that reasons name them in a stable order."""
    by_identity: dict[tuple[str, str, str], HeldPermission] = {}
    for permission in permissions:
        # Should one permission come with different facts, keep the heavier, stably.
        current = by_identity.get(permission.identity)
        if current is None or _sort_key(permission) < _sort_key(current):
            by_identity[permission.identity] = permission
    return sorted(by_identity.values(), key=lambda p: (p.value.casefold(), p.kind, p.identity))


def _sort_key(permission: HeldPermission) -> tuple[int, int, str]:
    order = {CONTROL_PLANE: 0, MANAGEMENT_PLANE: 1, USER_ACCESS: 2}
    return (
        order.get(permission.tier, 3),
        -(permission.privilege_level or 0),
        permission.value,
    )


def _by_weight(
    held: Sequence[HeldPermission],
) -> tuple[list[HeldPermission], list[HeldPermission], list[HeldPermission], list[HeldPermission]]:
    control, management, user_access, unrated = [], [], [], []
    for permission in held:
        if permission.kind not in (APPLICATION, DELEGATED):
            unrated.append(permission)
        elif permission.tier == CONTROL_PLANE:
            control.append(permission)
        elif permission.tier == MANAGEMENT_PLANE:
            management.append(permission)
        elif permission.tier == USER_ACCESS:
            user_access.append(permission)
        elif permission.privilege_level is None:
            unrated.append(permission)
        elif permission.privilege_level >= UNTIERED_MANAGEMENT_FROM_LEVEL:
            management.append(permission)
        else:
            user_access.append(permission)
    return control, management, user_access, unrated


def _per_permission(
    tier: str, held: Sequence[HeldPermission], points: dict[str, int], *, cap: int | None
) -> RiskReason | None:
    if not held:
        return None
    total = sum(points[permission.kind] for permission in held)
    capped = total if cap is None else min(total, cap)
    ceiling = f", at most {cap}" if cap is not None and total > cap else ""
    return RiskReason(capped, f"{_count(len(held), tier + ' permission')}{ceiling}: {_names(held)}")


def _counted(number: int, noun: str, points: int, cap: int) -> RiskReason | None:
    if number <= 0:
        return None
    total = number * points
    ceiling = f", at most {cap}" if total > cap else ""
    return RiskReason(min(total, cap), f"{_count(number, noun)} (revoke candidates){ceiling}")


def _fact(
    reasons: list[RiskReason],
    unknown: list[str],
    present: bool | None,
    reason: RiskReason,
    unknown_text: str,
) -> None:
    if present is None:
        unknown.append(unknown_text)
    elif present:
        reasons.append(reason)


def _add(reasons: list[RiskReason], reason: RiskReason | None) -> None:
    if reason is not None:
        reasons.append(reason)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _names(held: Sequence[HeldPermission]) -> str:
    named = ", ".join(permission.label for permission in held[:NAMED_IN_REASON])
    rest = len(held) - NAMED_IN_REASON
    return f"{named} and {rest} more" if rest > 0 else named


def rule_table() -> list[tuple[str, str]]:
    """The rule as the README's table shows it: (evidence, points); a test holds the two
    to each other."""

    def each(points: dict[str, int]) -> str:
        return f"{points[APPLICATION]} each (application), {points[DELEGATED]} (delegated)"

    return [
        ("a control-plane permission", each(CONTROL_PLANE_POINTS)),
        (
            "a management-plane permission, or one without a tier at Microsoft's privilege "
            f"level {UNTIERED_MANAGEMENT_FROM_LEVEL} or above",
            f"{each(MANAGEMENT_PLANE_POINTS)}; at most {MANAGEMENT_PLANE_CAP}",
        ),
        (
            "a user-access permission, or one without a tier below privilege level "
            f"{UNTIERED_MANAGEMENT_FROM_LEVEL}",
            f"{each(USER_ACCESS_POINTS)}; at most {USER_ACCESS_CAP}",
        ),
        ("an unused grant", f"{UNUSED_POINTS} each; at most {UNUSED_CAP}"),
        ("an unexplained grant", f"{UNEXPLAINED_POINTS} each; at most {UNEXPLAINED_CAP}"),
        ("third-party (registered in another organization)", str(THIRD_PARTY_POINTS)),
        ("multi-tenant (not Microsoft's, not a managed identity)", str(MULTI_TENANT_POINTS)),
        ("publisher not verified (third-party only)", str(UNVERIFIED_PUBLISHER_POINTS)),
        (f"inactive: no sign-in in {INACTIVE_DAYS} days", str(INACTIVE_POINTS)),
        (
            "credentials placed on the service principal (not a managed identity)",
            str(SP_CREDENTIALS_POINTS),
        ),
        ("no owner (not Microsoft's, not a managed identity)", str(NO_OWNER_POINTS)),
    ]
