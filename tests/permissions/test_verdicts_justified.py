"""Justified grants, as a table: the engine's verdict, a justification (in force, expiring
today, expired, never expiring, none), and the verdict that comes out."""

from datetime import date

import pytest

from permissions.verdicts import (
    GrantFinding,
    JustificationNote,
    Need,
    PermissionKey,
    Verdict,
    apply_justification,
    evaluate,
)

GRAPH = "00000003-0000-0000-c000-000000000000"
SITES = PermissionKey(GRAPH, "application", "Sites.Read.All")
GROUPS = PermissionKey(GRAPH, "application", "Group.ReadBasic.All")
TODAY = date(2026, 12, 1)


def note(expires: date | None) -> JustificationNote:
    return JustificationNote(
        reason="The intranet search indexes every site.", by="alice", expires=expires
    )


IN_FORCE = note(date(2027, 6, 30))
LAST_DAY = note(TODAY)
EXPIRED = note(date(2026, 11, 30))
NEVER = note(None)

UNUSED = GrantFinding(SITES, Verdict.UNUSED, features=("search",))
UNEXPLAINED = GrantFinding(SITES, Verdict.UNEXPLAINED, features=())
NEEDED = GrantFinding(SITES, Verdict.NEEDED, features=("search",), narrower=GROUPS)

TABLE = [
    # finding,    justification, verdict,           features,     justification kept
    (UNEXPLAINED, IN_FORCE, Verdict.NEEDED, (), IN_FORCE),
    (UNUSED, IN_FORCE, Verdict.NEEDED, (), IN_FORCE),
    (UNEXPLAINED, LAST_DAY, Verdict.NEEDED, (), LAST_DAY),
    (UNEXPLAINED, NEVER, Verdict.NEEDED, (), NEVER),
    (UNEXPLAINED, EXPIRED, Verdict.UNEXPLAINED, (), None),
    (UNUSED, EXPIRED, Verdict.UNUSED, ("search",), None),
    (UNEXPLAINED, None, Verdict.UNEXPLAINED, (), None),
    (NEEDED, IN_FORCE, Verdict.NEEDED, ("search",), IN_FORCE),
    (NEEDED, EXPIRED, Verdict.NEEDED, ("search",), None),
]


@pytest.mark.parametrize(("finding", "justification", "verdict", "features", "kept"), TABLE)
def test_a_justification_in_force_makes_a_grant_needed_and_an_expired_one_counts_for_nothing(
    finding, justification, verdict, features, kept
):
    result = apply_justification(finding, justification, today=TODAY)

    assert (result.verdict, result.features, result.justification) == (verdict, features, kept)
    assert result.permission == SITES


def test_a_justified_grant_keeps_the_narrower_suggestion_its_features_earned():
    assert apply_justification(NEEDED, IN_FORCE, today=TODAY).narrower == GROUPS


def test_an_unexplained_grant_kept_by_a_justification_suggests_no_narrower_permission():
    # No feature declares API calls for it, so nothing narrower can be known.
    assert apply_justification(UNEXPLAINED, IN_FORCE, today=TODAY).narrower is None


def test_the_engine_itself_still_judges_by_the_manifest_alone():
    # Justifications are per grant entry (consent type); evaluate answers per permission.
    evaluation = evaluate(needs=[Need("search", SITES)], enabled_features=set(), granted=[SITES])

    assert evaluation.grants[0].verdict == Verdict.UNUSED
    assert evaluation.grants[0].justification is None


def test_a_justification_is_in_force_up_to_and_including_its_last_day():
    assert LAST_DAY.in_force(TODAY)
    assert not LAST_DAY.in_force(date(2026, 12, 2))
    assert NEVER.in_force(date(2100, 1, 1))
