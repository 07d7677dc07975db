"""The one table of Entra's error codes: token errors (sync, revoke, health page) and the
admin consent page's errors (onboarding)."""

import pytest

from tenants.entra_errors import (
    ENTRA_ERRORS,
    UNKNOWN_CONSENT_ERROR,
    UNKNOWN_TOKEN_ERROR,
    consent_advice,
    first_code,
    token_advice,
    token_fix,
)
from tenants.graph import _token_error
from tenants.onboarding import consent_refused


def test_each_code_is_in_the_table_once_under_its_own_name():
    assert all(code == error.code for code, error in ENTRA_ERRORS.items())
    assert all(error.token or error.consent for error in ENTRA_ERRORS.values())
    # A short fix for the error message goes with the health page's advice, and back.
    assert all(bool(error.token_fix) == bool(error.token) for error in ENTRA_ERRORS.values())


def test_first_code_finds_the_code_anywhere_in_the_text():
    assert first_code("Entra refused a token: AADSTS7000222: expired; AADSTS1") == "AADSTS7000222"
    assert first_code("no code here") == ""


@pytest.mark.parametrize(
    ("codes", "description"),
    [([7000222], ""), ([], "AADSTS7000222: The provided client secret keys are expired.")],
    ids=["from MSAL's error codes", "from the description"],
)
def test_a_token_error_gets_its_fix_from_either_field_of_msals_answer(codes, description):
    assert token_fix(codes=codes, description=description).startswith(
        "the portal's client secret has expired"
    )


def test_an_unknown_token_error_has_no_fix_and_the_generic_advice():
    assert token_fix(codes=[50000], description="AADSTS50000: something else") == ""
    assert token_advice("AADSTS50000") == UNKNOWN_TOKEN_ERROR
    # A consent page's code is no token problem the health page knows.
    assert token_advice("AADSTS65004") == UNKNOWN_TOKEN_ERROR


def test_only_a_missing_service_principal_is_fixed_by_connecting_again():
    reconnect = {code for code, e in ENTRA_ERRORS.items() if e.token and e.token.reconnect}
    assert reconnect == {"AADSTS700016"}


def test_a_code_known_in_both_places_has_advice_for_each():
    unknown_tenant = ENTRA_ERRORS["AADSTS90002"]
    assert token_advice("AADSTS90002") == unknown_tenant.token
    assert consent_advice(code="AADSTS90002", error="invalid_request") == unknown_tenant.consent
    assert unknown_tenant.token != unknown_tenant.consent


def test_a_declined_consent_without_a_code_is_still_called_declined():
    declined = consent_advice(code="", error="access_denied")
    assert declined == ENTRA_ERRORS["AADSTS65004"].consent
    assert consent_advice(code="", error="server_error") == UNKNOWN_CONSENT_ERROR
    # A token error's code on the consent page: nothing specific to say.
    assert consent_advice(code="AADSTS7000222", error="server_error") == UNKNOWN_CONSENT_ERROR


def test_the_graph_client_and_the_consent_callback_both_answer_from_the_table():
    error = _token_error(
        "contoso",
        {
            "error": "invalid_client",
            "error_codes": [700016],
            "error_description": "AADSTS700016: x",
        },
    )
    assert str(error).endswith(f"(fix: {ENTRA_ERRORS['AADSTS700016'].token_fix})")
    assert not error.retryable

    refused = consent_refused(
        {"error": "access_denied", "error_description": "AADSTS90094: needs an admin"}
    )
    advice = ENTRA_ERRORS["AADSTS90094"].consent
    assert (refused.code, refused.happened, refused.todo) == (
        "AADSTS90094",
        advice.problem,
        advice.fix,
    )
