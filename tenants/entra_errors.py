"""Entra's error codes (``AADSTS...``) that someone can act on, and what to do about each.

One table for the two places Entra answers the portal with an error: a token request (a
sync's or a revoke's; ``tenants.graph`` puts the short fix into the error's message, the
health page shows the problem and the fix) and the admin consent page's redirect back to
the portal (``tenants.onboarding`` says what happened and what to do). A code can occur in
both, with advice that fits each.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass

AADSTS_CODE = re.compile(r"AADSTS\d+")


@dataclass(frozen=True)
class Advice:
    """What went wrong, in words for the person who fixes it, and the fix."""

    problem: str
    fix: str
    # The fix is connecting the tenant again (admin consent).
    reconnect: bool = False


@dataclass(frozen=True)
class EntraError:
    code: str
    # When Entra refuses the portal a token: the fix in one line, for the error message
    # a sync or revoke records, and the health page's longer advice.
    token_fix: str = ""
    token: Advice | None = None
    # When Entra's admin consent page comes back with it.
    consent: Advice | None = None


ASK_A_GLOBAL_ADMIN = (
    "Ask a Global Administrator (or Privileged Role Administrator) of the tenant to connect it"
)

DECLINED = Advice(
    "Consent was declined: someone chose Cancel on Microsoft's consent page, so nothing was "
    "granted.",
    f"{ASK_A_GLOBAL_ADMIN}, and to choose Accept.",
)

ENTRA_ERRORS = {
    error.code: error
    for error in (
        EntraError(
            "AADSTS7000222",
            token_fix="the portal's client secret has expired: create a new secret and set "
            "PORTAL_CLIENT_SECRET",
            token=Advice(
                "The portal's client secret has expired.",
                "Create a new client secret on the Permission Portal app registration, set it "
                "as PORTAL_CLIENT_SECRET (or PORTAL_CLIENT_SECRET_FILE), restart the portal, "
                "then sync.",
            ),
        ),
        EntraError(
            "AADSTS7000215",
            token_fix="the client secret is wrong: check PORTAL_CLIENT_SECRET",
            token=Advice(
                "The portal's client secret is wrong.",
                "Set PORTAL_CLIENT_SECRET to the secret's value (not its id) from the "
                "Permission Portal app registration, restart the portal, then sync.",
            ),
        ),
        EntraError(
            "AADSTS700016",
            token_fix="the portal's app is not known in this tenant: onboard it by admin consent",
            token=Advice(
                "The portal's app is not in this tenant: its admin consent was never given, or "
                "its enterprise application was deleted.",
                "Connect the tenant again: a Global Administrator grants admin consent.",
                reconnect=True,
            ),
        ),
        EntraError(
            "AADSTS90002",
            token_fix="the tenant does not exist: check the tenant id",
            token=Advice(
                "Entra does not know this tenant.",
                "Check the tenant id; a tenant that was deleted can be removed from the portal.",
            ),
            consent=Advice(
                "Entra does not know the tenant that was asked for.",
                "Check the tenant id or domain, then try again.",
            ),
        ),
        EntraError(
            "AADSTS700027",
            token_fix="the certificate is not registered on the app: upload it in Entra",
            token=Advice(
                "The portal's certificate is not registered on its app.",
                "Upload the certificate in PORTAL_CLIENT_CERTIFICATE to the Permission Portal "
                "app registration (Certificates & secrets), or set the certificate that is "
                "registered.",
            ),
        ),
        EntraError("AADSTS65004", consent=DECLINED),
        EntraError(
            "AADSTS90094",
            consent=Advice(
                "The account that signed in may not grant consent for the whole organization.",
                f"{ASK_A_GLOBAL_ADMIN}, or sign in as one and try again.",
            ),
        ),
        EntraError(
            "AADSTS50020",
            consent=Advice(
                "The account that signed in does not belong to the tenant being connected.",
                "Sign in with an administrator account of that tenant and try again.",
            ),
        ),
        EntraError(
            "AADSTS50105",
            consent=Advice(
                "The account that signed in is not assigned to the Permission Portal application.",
                "Ask a Global Administrator of the tenant to connect it.",
            ),
        ),
    )
}

UNKNOWN_TOKEN_ERROR = Advice(
    "Entra refused the portal a token for this tenant.",
    "Look up the AADSTS code in the error at https://login.microsoftonline.com/error and "
    "fix what it names; then sync.",
)
UNKNOWN_CONSENT_ERROR = Advice(
    "Entra did not grant consent.",
    "Try again; if it fails again, give the portal's operator the error below.",
)
# The OAuth error of a consent page left with Cancel, whether or not it names a code.
CONSENT_DECLINED = "access_denied"


def first_code(text: str) -> str:
    """The first AADSTS code in ``text``, or ""."""
    found = AADSTS_CODE.search(text)
    return found.group(0) if found else ""


def token_fix(*, codes: Iterable[int], description: str) -> str:
    """The one-line fix for a refused token request, from MSAL's ``error_codes`` (numbers
    without the prefix) or the codes in its description; "" for an unknown error."""
    named = {f"AADSTS{code}" for code in codes}
    return next(
        (
            error.token_fix
            for error in ENTRA_ERRORS.values()
            if error.token_fix and (error.code in named or error.code in description)
        ),
        "",
    )


def token_advice(code: str) -> Advice:
    """The health page's advice for a token error with this code."""
    error = ENTRA_ERRORS.get(code)
    return error.token if error and error.token else UNKNOWN_TOKEN_ERROR


def consent_advice(*, code: str, error: str) -> Advice:
    """What happened and what to do, for Entra's consent redirect with ``error`` and the
    code found in its description."""
    known = ENTRA_ERRORS.get(code)
    if known and known.consent:
        return known.consent
    if error == CONSENT_DECLINED:
        return DECLINED
    return UNKNOWN_CONSENT_ERROR
