"""Delta query state tokens: where a round of change tracking stands, sealed and opaque.

A round either pages through the collection as it is (`sync`, the first round) or
through the change log from `start` to `end`. Tokens are bound to this process (a
restarted emulator answers 410 Gone, resyncRequired, as Graph does for a lost sync state),
to the state's delta generation (`/_emulator/delta/expire`, scenario loads: 410 as well)
and expire with age (400 syncStateNotFound, as Graph answers a token older than 7 days).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import zlib
from dataclasses import asdict, dataclass
from typing import Any

_KEY = secrets.token_bytes(32)
_MAC_BYTES = 10


@dataclass(frozen=True)
class DeltaState:
    collection: str  # "servicePrincipals" | "oauth2PermissionGrants"
    sync: bool  # the first round: the collection itself, by creation order
    after: int  # sync: the last object's seq served; else: changes served this round
    start: int  # change log position the next round starts from
    end: int | None  # the log position this round ends at (None: not started yet)
    issued: float  # emulator clock at the round's start (a deltaLink: when it was issued)
    generation: int
    fields: tuple[str, ...] | None  # $select (None: every field)
    ids: tuple[str, ...] | None  # $filter=id eq ... (None: every object)
    top: int


def encode(state: DeltaState) -> str:
    raw = zlib.compress(json.dumps(asdict(state), separators=(",", ":")).encode())
    mac = hmac.new(_KEY, raw, hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(mac + raw).rstrip(b"=").decode()


def decode(token: str) -> DeltaState | None:
    """The state a token carries, or None if this emulator did not issue it."""
    try:
        blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        mac, raw = blob[:_MAC_BYTES], blob[_MAC_BYTES:]
        if not hmac.compare_digest(mac, hmac.new(_KEY, raw, hashlib.sha256).digest()[:_MAC_BYTES]):
            return None
        data: dict[str, Any] = json.loads(zlib.decompress(raw))
    except (binascii.Error, ValueError, zlib.error):
        return None
    for key in ("fields", "ids"):
        if data.get(key) is not None:
            data[key] = tuple(data[key])
    return DeltaState(**data)
