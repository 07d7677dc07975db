"""Signing the tokens Entra issues, and checking them where Graph receives them."""

from __future__ import annotations

import base64
import secrets
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from emulator.pki import Pki
from emulator.state import State

GRAPH_AUDIENCE = "https://graph.microsoft.com"
GRAPH_AUDIENCES = (GRAPH_AUDIENCE, f"{GRAPH_AUDIENCE}/", "00000003-0000-0000-c000-000000000000")
# Emulator-only claim: the token generation a token belongs to, so that "expire tokens"
# can invalidate every token issued so far while new ones keep working.
GENERATION_CLAIM = "xms_emu_gen"
_CACHE_LIMIT = 4096


class TokenError(Exception):
    """Why a bearer token was refused; the message is the one Graph sends."""


class Tokens:
    def __init__(self, pki: Pki, state: State) -> None:
        self._pki = pki
        self._state = state
        self._public_key = pki.signing_key.public_key()
        # Checking an RS256 signature costs more than serving a cached page does.
        self._verified: dict[str, dict[str, Any]] = {}

    def issue(self, claims: dict[str, Any], lifetime: int) -> str:
        now = int(time.time())
        payload = {
            **claims,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "uti": secrets.token_urlsafe(16),
            "ver": "2.0",
            GENERATION_CLAIM: self._state.token_generation,
        }
        headers = {"typ": "JWT", "kid": self._pki.kid, "x5t": self._pki.kid}
        return jwt.encode(payload, self._pki.signing_key, algorithm="RS256", headers=headers)

    def verify(self, token: str) -> dict[str, Any]:
        claims = self._verified.get(token)
        if claims is None:
            try:
                claims = jwt.decode(
                    token,
                    self._public_key,
                    algorithms=["RS256"],
                    audience=GRAPH_AUDIENCES,
                    options={"require": ["exp", "iat", "tid", GENERATION_CLAIM]},
                )
            except jwt.ExpiredSignatureError as exc:
                raise TokenError("Access token has expired or is not yet valid.") from exc
            except jwt.InvalidAudienceError as exc:
                raise TokenError("Access token validation failure. Invalid audience.") from exc
            except jwt.InvalidTokenError as exc:
                raise TokenError("Access token validation failure.") from exc
            if len(self._verified) >= _CACHE_LIMIT:
                self._verified.clear()
            self._verified[token] = claims
        if claims["exp"] <= time.time() or claims[GENERATION_CLAIM] != self._state.token_generation:
            raise TokenError("Access token has expired or is not yet valid.")
        return claims

    def peek(self, token: str) -> dict[str, Any] | None:
        """A valid token's claims, or None."""
        try:
            return self.verify(token)
        except TokenError:
            return None

    def jwks(self, issuer: str) -> dict[str, Any]:
        numbers = self._public_key.public_numbers()
        der = self._pki.signing_cert.public_bytes(serialization.Encoding.DER)
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "kid": self._pki.kid,
                    "x5t": self._pki.kid,
                    "n": _b64_int(numbers.n),
                    "e": _b64_int(numbers.e),
                    "x5c": [base64.b64encode(der).decode()],
                    "issuer": issuer,
                }
            ]
        }


def _b64_int(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
