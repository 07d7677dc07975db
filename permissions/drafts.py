"""A draft manifest for an application, from the permissions it holds: to send to its vendor.

Pure: the caller (tenants/drafts.py) reads the grants and the catalog; this module groups
the permissions into placeholder features and writes the YAML. The draft is a valid
manifest (``import_manifest`` reads it as it is, a test holds it to that) whose names,
descriptions and reasons say ``TODO``: plainly placeholders, never empty, since the
format refuses empty texts.

Names come from Graph (an application's display name, its publisher, a resource's name, a
permission's value) and are hostile: they reach the YAML only as values given to the safe
dumper, never pasted into text, and the header comment holds no value from outside.
"""

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from django.db import models
from django.utils.text import slugify

from permissions.manifests import (
    HTTP_METHODS,
    MICROSOFT_GRAPH,
    FeatureSpec,
    ManifestSpec,
    RequirementSpec,
    manifest_dump,
    one_line,
)
from permissions.models import Application, Feature, PermissionKind, Requirement

# Calls per permission taken from the catalog; the vendor keeps those the feature makes.
DRAFT_API_CALLS = 10
# Delegated scopes of OpenID Connect sign-in: one feature, not four of one scope each.
SIGN_IN_SCOPES = ("openid", "profile", "email", "offline_access")

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# Longest family name a feature's placeholder name repeats.
_LABEL_LENGTH = 80


@dataclass(frozen=True)
class HeldPermission:
    """A permission the application holds, with what the catalog says about it."""

    resource_app_id: uuid.UUID
    kind: PermissionKind
    # The permission's value; for an app role its resource does not publish, its id.
    value: str
    # The resource's display name, for the keys of features of APIs other than Graph.
    resource_name: str = ""
    # "METHOD /path", from the catalog; at most DRAFT_API_CALLS are used.
    api_calls: tuple[str, ...] = ()

    @property
    def identity(self) -> tuple[uuid.UUID, str, str]:
        return (self.resource_app_id, self.kind.value, self.value.casefold())

    @property
    def unpublished(self) -> bool:
        """An app role the resource does not publish: the grant knows only its id."""
        return self.kind == PermissionKind.APPLICATION and bool(_GUID.fullmatch(self.value))


@dataclass(frozen=True)
class Draft:
    text: str
    drafted_features: int
    left_out: int


def manifest_draft(
    *,
    app_id: uuid.UUID,
    name: str,
    publisher: str,
    held: Sequence[HeldPermission],
    existing: ManifestSpec | None,
    drafted_on: date,
) -> Draft:
    """The draft: the features of ``existing`` (the portal's manifest of the application,
    if any) as they are, then one placeholder feature per group of the held permissions
    that none of them lists. Importing the draft as it is removes nothing."""
    listed = {
        (req.resource_app_id, req.kind.value, req.permission.casefold())
        for feature in (existing.features if existing else ())
        for req in feature.requirements
    }
    unique: dict[tuple[uuid.UUID, str, str], HeldPermission] = {}
    left_out = 0
    for permission in held:
        if permission.identity in listed or permission.identity in unique:
            continue
        if not _writable(permission.value):
            # A value the format cannot hold (a space, too long): no manifest can name it.
            left_out += 1
            continue
        unique[permission.identity] = permission
    taken = {feature.key.casefold() for feature in (existing.features if existing else ())}
    drafted = [_feature(group, taken) for group in _groups(sorted(unique.values(), key=_order))]
    spec = ManifestSpec(
        app_id=app_id,
        name=(existing.name if existing else _text(name, _max(Application, "name")))
        or f"Application {app_id}",
        publisher=existing.publisher
        if existing
        else _text(publisher, _max(Application, "publisher")),
        docs_url=existing.docs_url if existing else "",
        features=(*(existing.features if existing else ()), *drafted),
    )
    header = _header(
        drafted_on=drafted_on, kept=len(existing.features) if existing else 0, left_out=left_out
    )
    return Draft(
        text=header + manifest_dump(spec=spec), drafted_features=len(drafted), left_out=left_out
    )


def _writable(value: str) -> bool:
    """Whether the format can name the permission: the parser refuses an empty value, a
    space (scopes are space-separated) and one longer than the column."""
    limit = _max(Requirement, "permission_value") or 200
    return bool(value) and len(value) <= limit and value == one_line(value) and " " not in value


def _order(permission: HeldPermission) -> tuple:
    return (
        permission.resource_app_id != MICROSOFT_GRAPH,
        permission.resource_name.casefold(),
        str(permission.resource_app_id),
        _family(permission)[0],
        permission.kind.value,
        permission.value.casefold(),
    )


def _family(permission: HeldPermission) -> tuple[str, str]:
    """(what groups it, as words): ``Device.Read.All`` -> ("device", "Device.*")."""
    if permission.unpublished:
        return "app-roles", "the app roles its resource does not publish"
    if permission.kind == PermissionKind.DELEGATED and permission.value.lower() in SIGN_IN_SCOPES:
        return "sign-in", "sign-in"
    head, dot, _ = permission.value.partition(".")
    label = f"{head}.*" if dot else head
    if len(label) > _LABEL_LENGTH:
        label = label[: _LABEL_LENGTH - 3] + "..."
    return head.casefold(), label


def _groups(held: list[HeldPermission]) -> list[list[HeldPermission]]:
    groups: dict[tuple[uuid.UUID, str], list[HeldPermission]] = {}
    for permission in held:
        groups.setdefault((permission.resource_app_id, _family(permission)[0]), []).append(
            permission
        )
    return list(groups.values())


def _feature(group: list[HeldPermission], taken: set[str]) -> FeatureSpec:
    first = group[0]
    family, label = _family(first)
    if family == "sign-in":
        label = "sign-in (" + ", ".join(permission.value for permission in group) + ")"
    key = _unique_key(_key(first), taken)
    return FeatureSpec(
        key=key,
        name=f"TODO: name the feature that uses {label}",
        description=(
            "TODO: what this feature does for the customer, in a sentence or two, and what "
            f"stops working without {label}."
        ),
        requirements=tuple(_requirement(permission) for permission in group),
    )


def _key(permission: HeldPermission) -> str:
    family, _ = _family(permission)
    if family not in ("app-roles", "sign-in"):
        # DeviceManagementConfiguration -> device-management-configuration
        family = slugify(_CAMEL.sub("-", permission.value.partition(".")[0]))
    family = family or "permissions"
    if permission.resource_app_id == MICROSOFT_GRAPH:
        return family
    resource = slugify(permission.resource_name)[:40].strip("-_") or (
        f"resource-{str(permission.resource_app_id)[:8]}"
    )
    return f"{resource}-{family}"


def _unique_key(key: str, taken: set[str]) -> str:
    limit = _max(Feature, "key") or 100
    base = key[: limit - 4].strip("-_") or "permissions"
    candidate, number = base, 1
    while candidate.casefold() in taken:
        number += 1
        candidate = f"{base}-{number}"
    taken.add(candidate.casefold())
    return candidate


def _requirement(permission: HeldPermission) -> RequirementSpec:
    if permission.unpublished:
        reason = (
            f"TODO: why does the application need the app role {permission.value}? Its "
            "resource does not publish the role, so the portal cannot name it."
        )
    else:
        reason = (
            f"TODO: why does the application need {permission.value} ({permission.kind.value})?"
        )
    return RequirementSpec(
        permission=permission.value,
        kind=permission.kind,
        resource_app_id=permission.resource_app_id,
        reason=reason,
        api_calls=_calls(permission.api_calls),
    )


def _calls(calls: Sequence[str]) -> tuple[str, ...]:
    kept: list[str] = []
    for call in calls:
        method, _, path = call.partition(" ")
        if (
            method in HTTP_METHODS
            and path.startswith("/")
            and not any(char.isspace() for char in path)
            and call not in kept
        ):
            kept.append(call)
        if len(kept) == DRAFT_API_CALLS:
            break
    return tuple(kept)


def _text(value: str, max_length: int | None) -> str:
    # One line: a newline in a display name would be a new line in every message.
    text = one_line(value)
    return text[:max_length].strip() if max_length else text


def _max(model: type[models.Model], field: str) -> int | None:
    column = model._meta.get_field(field)
    return column.max_length if isinstance(column, models.Field) else None


def _header(*, drafted_on: date, kept: int, left_out: int) -> str:
    lines = [
        "DRAFT manifest for the Permission Portal (the format of its import_manifest),",
        f"drafted on {drafted_on.isoformat()} from the permissions this application holds",
        "in one tenant.",
        "",
        'To the vendor: please replace every "TODO" below. Name each feature as your',
        "application names it, say in a sentence what it does, and split or merge the",
        "groups below to match your features. For each permission say why the feature",
        "needs it; under api_calls keep only the calls the feature makes, and add any",
        "that are missing. Remove permissions that no feature needs, and send the file",
        "back: the portal imports it as it is.",
        "",
        f"api_calls were filled in from Microsoft's permissions reference: up to {DRAFT_API_CALLS}",
        "calls per permission for which Microsoft names it the least privileged.",
    ]
    if kept:
        lines.append(
            f"The first {kept} feature(s) are the portal's current manifest, kept as they are."
        )
    if left_out:
        lines.append(
            f"{left_out} permission(s) held are left out: their names cannot be written "
            "in a manifest."
        )
    return "".join(f"# {line}\n" if line else "#\n" for line in lines) + "\n"
