"""The risk score, as a table: each row of the rule, its ceilings, the levels' edges, and
unknown evidence, which never adds a point."""

import random
import re
from pathlib import Path

import pytest

from permissions.models import MICROSOFT_INTUNE_APP_ID as INTUNE
from permissions.risk import (
    HeldPermission,
    Ownership,
    RiskEvidence,
    RiskLevel,
    assess,
    level_of,
    rule_table,
)

README = Path(__file__).resolve().parents[2] / "README.md"

CP = "ControlPlane"
MP = "ManagementPlane"
UA = "UserAccess"


def app(value: str, tier: str = "", level: int | None = None, **kwargs) -> HeldPermission:
    return HeldPermission(value, "application", tier, level, **kwargs)


def delegated(value: str, tier: str = "", level: int | None = None) -> HeldPermission:
    return HeldPermission(value, "delegated", tier, level)


def many(n: int, tier: str, kind: str = "application") -> tuple[HeldPermission, ...]:
    return tuple(HeldPermission(f"Perm{i}.Read.All", kind, tier, 3) for i in range(n))


# Everything known and nothing wrong: the baseline every case below changes.
CLEAN = dict(
    ownership=Ownership.OWN,
    multi_tenant=False,
    publisher_verified=True,
    inactive=False,
    credentials_on_service_principal=False,
    has_owner=True,
)


def known(**changes) -> RiskEvidence:
    return RiskEvidence(**{**CLEAN, **changes})


@pytest.mark.parametrize(
    ("evidence", "score", "level"),
    [
        pytest.param(known(), 0, RiskLevel.LOW, id="nothing-held"),
        # What it holds.
        pytest.param(
            known(permissions=(app("RoleManagement.ReadWrite.Directory", CP),)),
            40,
            RiskLevel.HIGH,
            id="one-control-plane-application",
        ),
        pytest.param(
            known(permissions=(delegated("Directory.AccessAsUser.All", CP),)),
            20,
            RiskLevel.MEDIUM,
            id="one-control-plane-delegated",
        ),
        pytest.param(
            known(permissions=many(3, CP)),
            120,
            RiskLevel.CRITICAL,
            id="control-plane-has-no-ceiling",
        ),
        pytest.param(
            known(permissions=(app("Mail.Read", MP),)), 10, RiskLevel.LOW, id="one-management-plane"
        ),
        pytest.param(
            known(permissions=(delegated("Mail.Read", MP),)),
            4,
            RiskLevel.LOW,
            id="management-plane-delegated",
        ),
        pytest.param(
            known(permissions=many(3, MP)),
            30,
            RiskLevel.MEDIUM,
            id="management-plane-at-its-ceiling",
        ),
        pytest.param(
            known(permissions=many(9, MP)),
            30,
            RiskLevel.MEDIUM,
            id="management-plane-above-its-ceiling",
        ),
        pytest.param(
            known(permissions=(app("User.Read.All", UA),)), 2, RiskLevel.LOW, id="one-user-access"
        ),
        pytest.param(
            known(permissions=many(40, UA, "delegated")),
            10,
            RiskLevel.LOW,
            id="user-access-ceiling",
        ),
        pytest.param(
            known(permissions=(app("Odd.All", "", 4),)),
            10,
            RiskLevel.LOW,
            id="untiered-level-4-as-management",
        ),
        pytest.param(
            known(permissions=(app("Odd.All", "", 5),)),
            10,
            RiskLevel.LOW,
            id="untiered-level-5-as-management",
        ),
        pytest.param(
            known(permissions=(app("Odd.All", "", 3),)),
            2,
            RiskLevel.LOW,
            id="untiered-level-3-as-user-access",
        ),
        pytest.param(
            known(permissions=(app("Odd.All"),)), 0, RiskLevel.LOW, id="unrated-adds-nothing"
        ),
        # Verdicts.
        pytest.param(known(unused=1), 2, RiskLevel.LOW, id="one-unused"),
        pytest.param(known(unused=5), 10, RiskLevel.LOW, id="unused-at-ceiling"),
        pytest.param(known(unused=50), 10, RiskLevel.LOW, id="unused-above-ceiling"),
        pytest.param(known(unexplained=6), 10, RiskLevel.LOW, id="unexplained-above-ceiling"),
        # Who it is.
        pytest.param(
            known(ownership=Ownership.THIRD_PARTY, multi_tenant=True),
            8,
            RiskLevel.LOW,
            id="third-party-verified",
        ),
        pytest.param(
            known(ownership=Ownership.THIRD_PARTY, multi_tenant=True, publisher_verified=False),
            13,
            RiskLevel.LOW,
            id="third-party-unverified",
        ),
        pytest.param(
            known(publisher_verified=False), 0, RiskLevel.LOW, id="own-app-unverified-is-normal"
        ),
        pytest.param(known(multi_tenant=True), 3, RiskLevel.LOW, id="own-multi-tenant-app"),
        pytest.param(
            known(
                ownership=Ownership.MICROSOFT,
                multi_tenant=True,
                publisher_verified=False,
                has_owner=False,
            ),
            0,
            RiskLevel.LOW,
            id="microsoft-first-party",
        ),
        pytest.param(
            known(
                ownership=Ownership.MANAGED_IDENTITY,
                credentials_on_service_principal=True,
                has_owner=False,
            ),
            0,
            RiskLevel.LOW,
            id="managed-identity",
        ),
        pytest.param(
            known(ownership=Ownership.MICROSOFT, credentials_on_service_principal=True),
            10,
            RiskLevel.LOW,
            id="credentials-on-a-microsoft-app-count",
        ),
        # Evidence.
        pytest.param(known(inactive=True), 10, RiskLevel.LOW, id="inactive"),
        pytest.param(
            known(credentials_on_service_principal=True),
            10,
            RiskLevel.LOW,
            id="credentials-on-the-sp",
        ),
        pytest.param(known(has_owner=False), 5, RiskLevel.LOW, id="no-owner"),
        # The levels' edges.
        pytest.param(
            known(
                ownership=Ownership.THIRD_PARTY,
                multi_tenant=True,
                publisher_verified=False,
                permissions=(delegated("User.Read", UA),),
            ),
            14,
            RiskLevel.LOW,
            id="14-low",
        ),
        pytest.param(
            known(
                ownership=Ownership.THIRD_PARTY,
                multi_tenant=True,
                publisher_verified=False,
                permissions=(app("User.Read.All", UA),),
            ),
            15,
            RiskLevel.MEDIUM,
            id="15-medium",
        ),
        pytest.param(
            known(permissions=many(3, MP), has_owner=False, unused=2),
            39,
            RiskLevel.MEDIUM,
            id="39-medium",
        ),
        pytest.param(
            known(permissions=many(4, MP), inactive=True), 40, RiskLevel.HIGH, id="40-high"
        ),
        pytest.param(
            known(
                permissions=(app("AppRoleAssignment.ReadWrite.All", CP),),
                inactive=True,
                credentials_on_service_principal=True,
                has_owner=False,
                unexplained=2,
            ),
            69,
            RiskLevel.HIGH,
            id="69-high",
        ),
        pytest.param(
            known(permissions=(app("AppRoleAssignment.ReadWrite.All", CP), *many(3, MP))),
            70,
            RiskLevel.CRITICAL,
            id="70-critical",
        ),
    ],
)
def test_the_score_follows_the_table(evidence, score, level):
    result = assess(evidence)

    assert (result.score, result.level) == (score, level)
    assert result.score == sum(reason.points for reason in result.reasons)
    assert all(reason.points > 0 for reason in result.reasons)
    # Everything else was known: only a permission the catalog cannot rate is unknown.
    assert all(text.startswith("the weight of") for text in result.unknown)


@pytest.mark.parametrize(
    ("score", "level"),
    [
        (0, "low"),
        (14, "low"),
        (15, "medium"),
        (39, "medium"),
        (40, "high"),
        (69, "high"),
        (70, "critical"),
        (500, "critical"),
    ],
)
def test_levels_start_at_their_floor(score, level):
    assert level_of(score) == level


def test_unknown_evidence_adds_nothing_and_is_listed():
    result = assess(RiskEvidence(permissions=(app("Odd.All"),)))

    assert result.score == 0
    assert result.reasons == ()
    assert result.unknown == (
        "the weight of 1 permission the catalog has no tier or privilege level for: Odd.All (application)",
        "who publishes it (third-party, publisher verification)",
        "sign-in audience (multi-tenant)",
        "sign-in activity (inactive or not)",
        "credentials on the service principal",
        "owners",
    )


@pytest.mark.parametrize(
    ("field", "listed"),
    [
        ("publisher_verified", "publisher verification"),
        ("multi_tenant", "sign-in audience (multi-tenant)"),
        ("inactive", "sign-in activity (inactive or not)"),
        ("has_owner", "owners"),
        ("credentials_on_service_principal", "credentials on the service principal"),
    ],
)
def test_each_unknown_is_said_as_such_and_scores_as_the_harmless_answer(field, listed):
    third_party = {"ownership": Ownership.THIRD_PARTY, "multi_tenant": True}
    harmless = assess(known(**{**third_party, field: CLEAN[field]}))

    result = assess(known(**{**third_party, field: None}))

    assert result.unknown == (listed,)
    assert result.score == harmless.score
    assert harmless.unknown == ()


def test_platform_apps_are_not_asked_about_publisher_audience_or_owners():
    for ownership in (Ownership.MICROSOFT, Ownership.MANAGED_IDENTITY):
        unknown = assess(RiskEvidence(ownership=ownership)).unknown

        assert not {"sign-in audience (multi-tenant)", "owners", "publisher verification"} & set(
            unknown
        )


def test_reasons_say_what_and_how_much_in_the_rules_order():
    evidence = known(
        permissions=(
            app("RoleManagement.ReadWrite.Directory", CP),
            *many(5, MP),
            delegated("User.Read", UA),
        ),
        unexplained=3,
        ownership=Ownership.THIRD_PARTY,
        multi_tenant=True,
        publisher_verified=False,
        inactive=True,
        credentials_on_service_principal=True,
        has_owner=False,
    )

    result = assess(evidence)

    assert [(r.points, r.text) for r in result.reasons] == [
        (40, "1 control-plane permission: RoleManagement.ReadWrite.Directory (application)"),
        (
            30,
            "5 management-plane permissions, at most 30: Perm0.Read.All (application), "
            "Perm1.Read.All (application), Perm2.Read.All (application) and 2 more",
        ),
        (1, "1 user-access permission: User.Read (delegated)"),
        (6, "3 unexplained grants (revoke candidates)"),
        (5, "third-party: registered in another organization"),
        (3, "multi-tenant: other organizations' users can sign in"),
        (5, "publisher not verified"),
        (10, "inactive: no sign-in on record in the last 90 days"),
        (10, "credentials placed on the service principal"),
        (5, "no owner: nobody answers for it"),
    ]
    assert (result.score, result.level) == (115, RiskLevel.CRITICAL)


def test_each_permission_counts_once_whatever_its_grants():
    # An admin consent and user consents of one scope, written in two cases.
    held = (delegated("Mail.Read", MP), delegated("mail.read", MP), delegated("Mail.Read", MP))

    assert assess(known(permissions=held)).score == 4


def test_the_same_value_on_two_resources_is_two_permissions():
    held = (app("Device.Read.All", MP), app("Device.Read.All", MP, resource_app_id=INTUNE))

    assert assess(known(permissions=held)).score == 20


def test_the_answer_does_not_depend_on_the_order_of_the_evidence():
    held = [
        app("RoleManagement.ReadWrite.Directory", CP),
        *many(6, MP),
        delegated("User.Read", UA),
        app("Odd.All"),
        app("Device.Read.All", "", 4),
    ]
    first = assess(known(permissions=tuple(held)))
    for seed in range(5):
        random.Random(seed).shuffle(held)

        assert assess(known(permissions=tuple(held))) == first


def test_levels_sort_most_urgent_first():
    assert sorted(RiskLevel, key=lambda level: level.rank) == [
        RiskLevel.CRITICAL,
        RiskLevel.HIGH,
        RiskLevel.MEDIUM,
        RiskLevel.LOW,
    ]


def test_the_readme_documents_the_rule_the_code_applies():
    text = README.read_text()
    section = text.split("\n## Risk\n", 1)[1].split("\n## ", 1)[0]
    rows = [
        tuple(cell.strip() for cell in line.strip("|").split("|"))
        for line in section.splitlines()
        if line.startswith("|") and not re.match(r"\|\s*-", line)
    ]

    assert rows[0] == ("evidence", "points")
    assert rows[1 : 1 + len(rule_table())] == rule_table()
    assert "critical from 70, high from 40, medium from 15" in " ".join(section.split())
