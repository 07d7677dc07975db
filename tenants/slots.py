"""The grant slot: one grant as revoke requests name it.

A slot is a permission (resource appId, kind, value) and the consent type it is granted
with; together with the tenant and the client it names exactly what a revoke request
takes away. Every place that asks "is this the same grant?" (the application page, the
revoke form, the ``revoke`` command, the sync's re-grant check) compares slots, so the
question has one answer.
"""

from dataclasses import dataclass
from typing import Self
from uuid import UUID

from permissions.verdicts import PermissionKey
from tenants.models import Grant, RevokeRequest


@dataclass(frozen=True, eq=False)
class GrantSlot:
    """(resource appId, kind, value, consent), the value compared ignoring case.

    Entra treats permission values case-insensitively, so ``mail.read`` and ``Mail.Read``
    are the same slot; the value keeps the spelling it was given, for display and for the
    request's row. The resource appId is kept as the canonical (lowercase) GUID text.
    """

    resource_app_id: str
    kind: str
    value: str
    consent: str

    def __post_init__(self) -> None:
        # A UUID, or a GUID in capitals, names the same resource.
        object.__setattr__(self, "resource_app_id", str(self.resource_app_id).lower())

    @classmethod
    def of(cls, permission: PermissionKey, consent: str) -> Self:
        return cls(permission.resource_app_id, permission.kind, permission.value, consent)

    @classmethod
    def from_grant(cls, grant: Grant) -> Self:
        # An app role the resource does not publish is named by its id, as in the report.
        value = grant.value or str(grant.permission_id)
        return cls(str(grant.resource_app_id), grant.kind, value, grant.consent)

    @classmethod
    def from_request(cls, revoke: RevokeRequest) -> Self:
        return cls(str(revoke.resource_app_id), revoke.kind, revoke.value, revoke.consent)

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What equality compares."""
        return (self.resource_app_id, self.kind, self.value.casefold(), self.consent)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GrantSlot) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    @property
    def permission(self) -> PermissionKey:
        return PermissionKey(self.resource_app_id, self.kind, self.value)

    def fields(self) -> dict[str, str]:
        """The revoke request's fields that name the slot, for ``filter()`` and ``create()``."""
        return {
            "resource_app_id": self.resource_app_id,
            "kind": self.kind,
            "value": self.value,
            "consent": self.consent,
        }

    @property
    def token(self) -> str:
        """The slot as one form value (a checkbox's), read back by :meth:`from_token`.
        The value goes last: permission values hold no spaces, but nothing else may follow."""
        return f"{self.resource_app_id} {self.kind} {self.consent} {self.value}"

    @classmethod
    def from_token(cls, token: str) -> Self:
        """The slot a :attr:`token` names; ValueError for anything else."""
        parts = token.split(" ", 3)
        if len(parts) != 4 or not all(parts):
            raise ValueError(f"{token!r} does not name a grant")
        resource, kind, consent, value = parts
        return cls(str(UUID(resource)), kind, value, consent)

    def __str__(self) -> str:
        return f"{self.value} ({self.kind}, {self.consent} consent)"
