"""Reading the catalog's inputs: Microsoft's permissions reference, EntraOps' tier
classification, the starter catalog and the bundled snapshot. Everything here parses and
checks; nothing writes. A problem is a CatalogImportError naming the file, raised before
permissions.catalog writes anything.
"""

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar
from urllib.parse import urlsplit

import yaml
from django.db import models

from permissions.models import (
    MICROSOFT_GRAPH_APP_ID,
    Permission,
    PermissionApiCall,
    PermissionKind,
    Tier,
)
from permissions.sources import SourceError, load_json

SNAPSHOT_FORMAT = "permission-portal catalog snapshot 1"
SNAPSHOT_COLUMNS = ("kind", "value", "id", "admin_consent", "privilege_level", "tier")

Scheme = PermissionApiCall.Scheme
APPLICATION = PermissionKind.APPLICATION.value
DELEGATED = PermissionKind.DELEGATED.value

# Both delegated schemes (work or school, personal account) are one delegated permission.
_SCHEME_KIND = {
    Scheme.APPLICATION.value: APPLICATION,
    Scheme.DELEGATED_WORK.value: DELEGATED,
    Scheme.DELEGATED_PERSONAL.value: DELEGATED,
}
T = TypeVar("T")
Key = tuple[str, str]  # (kind, value)
CallKey = tuple[str, str, str]  # (scheme, method, path)


class CatalogImportError(Exception):
    """An input is missing or malformed; the message is one line naming the file."""


@dataclass
class Described:
    """What one run's inputs say about one permission; a field they don't mention is absent."""

    kind: str
    value: str
    fields: dict[str, Any] = field(default_factory=dict)
    # Written only where the catalog has no value yet.
    gaps: dict[str, Any] = field(default_factory=dict)
    # None: no input of this run lists API calls for this permission.
    api_calls: dict[CallKey, bool] | None = None


@dataclass
class Tiers:
    kind: str
    by_id: dict[uuid.UUID, str] = field(default_factory=dict)
    by_value: dict[str, str] = field(default_factory=dict)


# (resource appId, resource name, its permissions), as the starter and the snapshot list them.
StarterResources = list[tuple[uuid.UUID, str, list[Described]]]


class Malformed(Exception):
    """A problem in an input, reported without the file name, which the caller adds."""


# --- reading inputs ---------------------------------------------------------------------


def parse_input(
    location: str,
    parser: Callable[[object], T],
    loader: Callable[[str], object] = load_json,
) -> T:
    name = PurePosixPath(urlsplit(location).path).name or location
    try:
        data = loader(location)
    except SourceError as exc:
        raise CatalogImportError(str(exc)) from None
    try:
        return parser(data)
    except Malformed as exc:
        raise CatalogImportError(f"{name}: {exc}") from None


def load_yaml(location: str) -> object:
    try:
        text = Path(location).read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError(f"{location}: cannot be read ({exc.strerror})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SourceError(f"{location}: not YAML{where}") from None


_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", bool: "true or false"}


def expect(value: object, kind: type[T], where: str) -> T:
    # bool is an int in Python; a JSON true is never a privilege level.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise Malformed(f"{where} is not {_TYPE_NAMES.get(kind, 'a number')}")
    return value


def get_field(
    obj: Mapping[str, Any], key: str, kind: type, where: str, *, required: bool = True
) -> Any:
    """obj[key] checked against kind; None when absent or null and not required."""
    inner = f"{where}.{key}" if where else f"'{key}'"
    if obj.get(key) is None:
        if required:
            raise Malformed(f"{where} has no '{key}'" if where else f"'{key}' is missing")
        return None
    return expect(obj[key], kind, inner)


def _clean(found: Any) -> Any:
    """Strip a text; a blank one says nothing (Microsoft's texts are sometimes "" or end in spaces)."""
    if isinstance(found, str):
        return found.strip() or None
    return found


def _guid(text: str, where: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise Malformed(f"{where} is not a GUID") from None


def _fits(text: str, model: type[models.Model], field_name: str, where: str) -> str:
    # SQLite would store an over-long value silently and PostgreSQL fail mid-import.
    column = model._meta.get_field(field_name)
    limit = column.max_length if isinstance(column, models.Field) else None
    if limit is not None and len(text) > limit:
        raise Malformed(f"{where} is longer than {limit} characters")
    return text


def parse_permissions(data: object) -> tuple[dict[Key, Described], int]:
    root = expect(data, dict, "the file")
    entries = get_field(root, "permissions", dict, "")
    described: dict[Key, Described] = {}
    skipped = 0
    for value, entry in entries.items():
        _fits(value, Permission, "value", value)
        entry = expect(entry, dict, value)
        if get_field(entry, "authorizationType", str, value) != "oAuth2":
            skipped += 1
            continue
        by_kind = _scheme_facts(value, get_field(entry, "schemes", dict, value))
        calls: dict[str, dict[CallKey, bool]] = {kind: {} for kind in by_kind}
        for index, path_set in enumerate(get_field(entry, "pathSets", list, value)):
            _add_path_set(calls, path_set, f"{value}.pathSets[{index}]")
        for kind, item in by_kind.items():
            item.api_calls = calls[kind]
            described[(kind, value)] = item
    return described, skipped


def _scheme_facts(value: str, schemes: Mapping[str, Any]) -> dict[str, Described]:
    by_kind: dict[str, Described] = {}
    # The delegated texts and levels come from the work-or-school scheme where there is one.
    for name in (Scheme.APPLICATION, Scheme.DELEGATED_WORK, Scheme.DELEGATED_PERSONAL):
        kind = _SCHEME_KIND[name]
        if name not in schemes or kind in by_kind:
            continue
        where = f"{value}.schemes.{name}"
        scheme = expect(schemes[name], dict, where)
        item = Described(kind=kind, value=value)
        for field_name, key, kind_of in (
            ("display_name", "adminDisplayName", str),
            ("description", "adminDescription", str),
            ("admin_consent_required", "requiresAdminConsent", bool),
            ("privilege_level", "privilegeLevel", int),
        ):
            found = _clean(get_field(scheme, key, kind_of, where, required=False))
            if found is not None:
                item.fields[field_name] = found
        level = item.fields.get("privilege_level")
        if level is not None and not 1 <= level <= 5:
            raise Malformed(f"{where}.privilegeLevel is not between 1 and 5")
        _fits(item.fields.get("display_name", ""), Permission, "display_name", where)
        by_kind[kind] = item
    return by_kind


def _add_path_set(calls: Mapping[str, dict[CallKey, bool]], path_set: object, where: str) -> None:
    path_set = expect(path_set, dict, where)
    scheme_keys = [
        expect(s, str, f"{where}.schemeKeys")
        for s in get_field(path_set, "schemeKeys", list, where)
    ]
    methods = [
        expect(m, str, f"{where}.methods") for m in get_field(path_set, "methods", list, where)
    ]
    for path, note in get_field(path_set, "paths", dict, where).items():
        _fits(path, PermissionApiCall, "path", f"{where} path {path}")
        least = _least_schemes(expect(note, str, f"{where}.paths['{path}']"))
        for scheme in scheme_keys:
            # A scheme the permission doesn't define (or a new one) has no row to attach to.
            kind_calls = calls.get(_SCHEME_KIND.get(scheme, ""))
            if kind_calls is None:
                continue
            for method in methods:
                key = (scheme, method.upper(), path.lower())
                # Paths differing only in case become one call; least if any copy says so.
                kind_calls[key] = kind_calls.get(key, False) or scheme in least


def _least_schemes(note: str) -> set[str]:
    """'least=DelegatedWork,Application;AlsoRequires=X' -> {'DelegatedWork', 'Application'}."""
    for part in note.split(";"):
        name, _, schemes = part.partition("=")
        if name.strip() == "least":
            return {s.strip() for s in schemes.split(",")}
    return set()


def parse_descriptions(data: object) -> dict[Key, Described]:
    root = expect(data, dict, "the file")
    described: dict[Key, Described] = {}
    for list_key, kind in (
        ("delegatedScopesList", DELEGATED),
        ("applicationScopesList", APPLICATION),
    ):
        for index, entry in enumerate(get_field(root, list_key, list, "")):
            where = f"{list_key}[{index}]"
            entry = expect(entry, dict, where)
            value = _fits(
                get_field(entry, "value", str, where), Permission, "value", f"{where}.value"
            )
            item = Described(kind=kind, value=value)
            item.fields["graph_id"] = _guid(get_field(entry, "id", str, where), f"{where}.id")
            enabled = get_field(entry, "isEnabled", bool, where, required=False)
            if enabled is not None:
                item.fields["enabled"] = enabled
            # Texts and the consent flag are what the permissions file describes better; see
            # _merge_descriptions. App roles often carry only the user-facing texts.
            for field_name, keys, kind_of in (
                ("display_name", ("adminConsentDisplayName", "consentDisplayName"), str),
                ("description", ("adminConsentDescription", "consentDescription"), str),
                ("admin_consent_required", ("isAdmin",), bool),
            ):
                found = _first(entry, keys, kind_of, where)
                if found is not None:
                    item.gaps[field_name] = found
            _fits(item.gaps.get("display_name", ""), Permission, "display_name", where)
            described[(kind, value)] = item
    return described


def _first(entry: Mapping[str, Any], keys: Sequence[str], kind: type, where: str) -> Any:
    for key in keys:
        found = _clean(get_field(entry, key, kind, where, required=False))
        if found is not None:
            return found
    return None


def merge_descriptions(
    listed: dict[Key, Described], extra: dict[Key, Described], *, permissions_given: bool
) -> dict[Key, Described]:
    """Add the descriptions file's ids and texts to what the permissions file said.

    With the permissions file in the same run, the descriptions' texts fill what it leaves
    out (and describe the permissions it doesn't list). Alone, they only fill empty fields,
    so that alternating partial runs don't flip texts back and forth.
    """
    merged = dict(listed)
    for key, item in extra.items():
        target = merged.setdefault(key, Described(kind=item.kind, value=item.value))
        target.fields.update(item.fields)
        if permissions_given:
            for name, found in item.gaps.items():
                target.fields.setdefault(name, found)
        else:
            target.gaps.update(item.gaps)
    return merged


def parse_classification(data: object) -> Tiers | None:
    items = expect(data, list, "the file")
    if not items:
        return None
    first = expect(items[0], dict, "[0]")
    if "AppRoleId" in first:
        tiers, id_key, name_key = Tiers(kind=APPLICATION), "AppRoleId", "AppRoleDisplayName"
    elif "ScopeId" in first:
        tiers, id_key, name_key = Tiers(kind=DELEGATED), "ScopeId", "ScopeDisplayName"
    else:
        raise Malformed("[0] has neither 'AppRoleId' nor 'ScopeId'")
    for index, entry in enumerate(items):
        where = f"[{index}]"
        entry = expect(entry, dict, where)
        app_id = get_field(entry, "AppId", str, where, required=False)
        if app_id is not None and app_id.lower() != MICROSOFT_GRAPH_APP_ID:
            continue
        tier = get_field(entry, "EAMTierLevelName", str, where)
        if tier not in Tier.values or tier == Tier.UNCLASSIFIED:
            raise Malformed(f"{where}.EAMTierLevelName '{tier}' is not a known tier")
        tiers.by_id[_guid(get_field(entry, id_key, str, where), f"{where}.{id_key}")] = tier
        display_name = get_field(entry, name_key, str, where, required=False)
        if display_name:
            tiers.by_value[display_name] = tier
    return tiers


def merge_tiers(parsed: Iterable[Tiers | None]) -> list[Tiers]:
    by_kind: dict[str, Tiers] = {}
    for tiers in parsed:
        if tiers is None:
            continue
        target = by_kind.setdefault(tiers.kind, Tiers(kind=tiers.kind))
        target.by_id.update(tiers.by_id)
        target.by_value.update(tiers.by_value)
    return list(by_kind.values())


_STARTER_KEYS = {"value", "kind", "id", "admin_consent", "privilege_level", "tier", "description"}


def parse_starter(data: object) -> StarterResources:
    return _resources(expect(data, dict, "the file"), _starter_permission)


def _resources(
    root: Mapping[str, Any], permission: Callable[[object, str], Described]
) -> StarterResources:
    """The ``resources`` list the starter and the snapshot share: an app id, a name, and
    permissions each read by ``permission``."""
    resources = []
    for index, entry in enumerate(get_field(root, "resources", list, "")):
        where = f"resources[{index}]"
        entry = expect(entry, dict, where)
        app_id = _guid(get_field(entry, "app_id", str, where), f"{where}.app_id")
        described = [
            permission(item, f"{where}.permissions[{number}]")
            for number, item in enumerate(get_field(entry, "permissions", list, where))
        ]
        resources.append((app_id, get_field(entry, "name", str, where), described))
    return resources


def _starter_permission(entry: object, where: str) -> Described:
    entry = expect(entry, dict, where)
    unknown = sorted(set(entry) - _STARTER_KEYS)
    if unknown:
        raise Malformed(f"{where} has an unknown key '{unknown[0]}'")
    kind = get_field(entry, "kind", str, where)
    if kind not in PermissionKind.values:
        raise Malformed(f"{where}.kind '{kind}' is neither application nor delegated")
    item = Described(kind=kind, value=get_field(entry, "value", str, where))
    item.fields["description"] = get_field(entry, "description", str, where)
    graph_id = get_field(entry, "id", str, where, required=False)
    if graph_id is not None:
        item.fields["graph_id"] = _guid(graph_id, f"{where}.id")
    for field_name, key, kind_of in (
        ("admin_consent_required", "admin_consent", bool),
        ("privilege_level", "privilege_level", int),
        ("tier", "tier", str),
    ):
        found = get_field(entry, key, kind_of, where, required=False)
        if found is not None:
            item.fields[field_name] = found
    if item.fields.get("tier", Tier.UNCLASSIFIED) not in Tier.values:
        raise Malformed(f"{where}.tier '{item.fields['tier']}' is not a known tier")
    return item


def parse_snapshot(data: object) -> StarterResources:
    """The snapshot build_catalog_snapshot writes: see permissions/snapshot.py."""
    root = expect(data, dict, "the file")
    if root.get("format") != SNAPSHOT_FORMAT:
        raise Malformed(f"'format' is not '{SNAPSHOT_FORMAT}'")
    if tuple(get_field(root, "columns", list, "")) != SNAPSHOT_COLUMNS:
        raise Malformed(f"'columns' is not {list(SNAPSHOT_COLUMNS)}")
    return _resources(root, _snapshot_row)


def _snapshot_row(row: object, where: str) -> Described:
    row = expect(row, list, where)
    if len(row) != len(SNAPSHOT_COLUMNS):
        raise Malformed(f"{where} has {len(row)} columns, not {len(SNAPSHOT_COLUMNS)}")
    kind, value, graph_id, consent, level, tier = row
    if kind not in PermissionKind.values:
        raise Malformed(f"{where} kind '{kind}' is neither application nor delegated")
    item = Described(kind=kind, value=_fits(expect(value, str, where), Permission, "value", where))
    if graph_id is not None:
        item.fields["graph_id"] = _guid(expect(graph_id, str, where), where)
    if consent is not None:
        item.fields["admin_consent_required"] = expect(consent, bool, where)
    if level is not None and not 1 <= expect(level, int, where) <= 5:
        raise Malformed(f"{where} privilege level is not between 1 and 5")
    if level is not None:
        item.fields["privilege_level"] = level
    if expect(tier, str, where) not in Tier.values:
        raise Malformed(f"{where} tier '{tier}' is not a known tier")
    item.fields["tier"] = tier
    return item


def merge_starter(snapshot: StarterResources, starter: StarterResources) -> StarterResources:
    """The starter file's rows with the snapshot's facts over them: the file adds our own
    texts and what the reference does not cover; a newer snapshot's facts win over the
    file's (a test keeps the two in agreement)."""
    merged: dict[uuid.UUID, tuple[str, dict[Key, Described]]] = {}
    for app_id, name, described in [*starter, *snapshot]:
        _, items = merged.setdefault(app_id, (name, {}))
        for item in described:
            known = items.get((item.kind, item.value))
            if known is None:
                items[(item.kind, item.value)] = item
            else:
                known.fields.update(item.fields)
    return [(app_id, name, list(items.values())) for app_id, (name, items) in merged.items()]
