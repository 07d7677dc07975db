"""Application manifests: read and validate the YAML format, import it, export it.

The format is a contract (DESIGN.md, "Manifest format"). Parsing walks PyYAML's node
tree instead of the plain values it would construct, because only the nodes remember
their line: every error names the file, the line and the key it is about, on one line.
Parsing builds frozen dataclasses and never touches the database; `manifest_import` and
`manifest_export` are the two functions that do.
"""

import codecs
import re
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, NoReturn

import yaml
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_slug
from django.db import models, transaction
from django.db.models import Prefetch, Q
from django.utils import timezone

from permissions.models import (
    MICROSOFT_GRAPH_APP_ID,
    Application,
    Feature,
    Permission,
    PermissionKind,
    Requirement,
)

# The manifests that ship with the portal (`make demo-data` imports them).
BUNDLED_MANIFESTS_DIR = Path(__file__).resolve().parent / "manifests"

MANIFEST_VERSION = 1
MICROSOFT_GRAPH = uuid.UUID(MICROSOFT_GRAPH_APP_ID)
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

# Keys in the documented order (export writes them in this order) and whether required.
_TOP_KEYS = (("manifest", True), ("application", True), ("features", True))
_APPLICATION_KEYS = (("app_id", True), ("name", True), ("publisher", False), ("docs_url", False))
_FEATURE_KEYS = (
    ("key", True),
    ("name", True),
    ("description", True),
    ("default_enabled", False),
    ("permissions", True),
)
_PERMISSION_KEYS = (
    ("permission", True),
    ("type", True),
    ("resource", False),
    ("reason", True),
    ("api_calls", False),
)

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_API_CALL = re.compile(rf"({'|'.join(HTTP_METHODS)}) /\S*")
_TAG = "tag:yaml.org,2002:"
_URL = URLValidator(schemes=["http", "https"])


class ManifestError(ValueError):
    """A manifest that cannot be read or is not valid; str() is one line for the user."""

    def __init__(self, source: str, line: int | None, message: str, key: str = "") -> None:
        self.source = source
        self.line = line
        self.key = key
        self.message = message
        where = f"{source}:{line}: " if line is not None else f"{source}: "
        if key:
            where += f"{key}: "
        # Values are quoted with repr(), so only PyYAML's own text could hold a newline;
        # the promise is one line per error.
        super().__init__(re.sub(r"\s*\n\s*", " ", f"{where}{message}"))


def one_line(text: str) -> str:
    """``text`` as one line of printable characters: control, format and separator
    characters (a newline, a bell, a right-to-left override) become spaces, runs of
    spaces one. For names from outside (Graph, an upload) that messages repeat."""
    spaced = "".join(" " if unicodedata.category(char)[0] in "CZ" else char for char in text)
    return re.sub(r"\s+", " ", spaced).strip()


@dataclass(frozen=True)
class RequirementSpec:
    permission: str
    kind: PermissionKind
    resource_app_id: uuid.UUID
    reason: str
    api_calls: tuple[str, ...] = ()


@dataclass(frozen=True)
class FeatureSpec:
    key: str
    name: str
    description: str
    requirements: tuple[RequirementSpec, ...]
    default_enabled: bool = True


@dataclass(frozen=True)
class ManifestSpec:
    app_id: uuid.UUID
    name: str
    features: tuple[FeatureSpec, ...]
    publisher: str = ""
    docs_url: str = ""


# --- reading ---------------------------------------------------------------------------


def manifest_read(*, path: Path) -> ManifestSpec:
    """Read and validate the manifest file at ``path``; errors name the path as given."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ManifestError(str(path), None, f"cannot read the file: {exc.strerror}") from exc
    return manifest_parse(data=data, source=str(path))


def manifest_parse(*, data: bytes, source: str) -> ManifestSpec:
    """Validate a manifest given as bytes; ``source`` names it in error messages."""
    text = _decode(data, source)
    root = _compose(text, source)
    return _Reader(source).manifest(root)


def _decode(data: bytes, source: str) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Windows tools save "Unicode" as UTF-16, which would otherwise look binary.
        raise ManifestError(source, 1, "not UTF-8 text (UTF-16); save the file as UTF-8")
    if b"\0" in data:
        line = data[: data.index(b"\0")].count(b"\n") + 1
        raise ManifestError(source, line, "binary file (NUL byte), not a YAML manifest")
    try:
        # utf-8-sig: editors on Windows like to start files with a byte order mark.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ManifestError(source, line, f"not UTF-8 text (byte 0x{data[exc.start]:02x})") from exc
    if not text.strip():
        raise ManifestError(source, 1, "empty file, expected a manifest")
    return text


def _compose(text: str, source: str) -> yaml.Node:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        detail = ", ".join(part for part in (exc.context, exc.problem) if part)
        raise ManifestError(source, line, f"not valid YAML: {detail}") from exc
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        raise ManifestError(
            source, line, f"not valid YAML: character U+{exc.character:04X} is not allowed"
        ) from exc
    if root is None:
        # Only comments: YAML's idea of an empty document.
        raise ManifestError(source, 1, "empty file, expected a manifest")
    return root


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _describe(node: yaml.Node) -> str:
    """What a value is, in words, for 'expected X, got Y' messages."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if not node.tag.startswith(_TAG):
        return f"a value tagged {node.tag}"
    name = node.tag.removeprefix(_TAG)
    if name == "null":
        return "nothing"
    words = {"int": "a number", "float": "a number", "bool": "true/false", "str": "text"}
    value = node.value if len(node.value) <= 40 else node.value[:37] + "..."
    return f"{words.get(name, 'a ' + name)} ({value!r})"


class _Reader:
    """Walks the node tree of one manifest, raising ManifestError at the first problem."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, node: yaml.Node, key: str, message: str) -> NoReturn:
        raise ManifestError(self.source, _line(node), message, key)

    # Shapes

    def fields(
        self, node: yaml.Node, path: str, schema: Sequence[tuple[str, bool]]
    ) -> dict[str, yaml.Node]:
        """The mapping's value nodes by key; unknown, repeated and missing keys are errors."""
        if not isinstance(node, yaml.MappingNode):
            expected = "a mapping" if path else "a mapping (manifest, application, features)"
            self.fail(node, path, f"expected {expected}, got {_describe(node)}")
        allowed = [key for key, _ in schema]
        found: dict[str, yaml.Node] = {}
        key_lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not (isinstance(key_node, yaml.ScalarNode) and key_node.tag == _TAG + "str"):
                self.fail(key_node, path, f"expected a key name, got {_describe(key_node)}")
            key = key_node.value
            key_path = _join(path, key)
            if key not in allowed:
                self.fail(key_node, key_path, f"unknown key; expected one of {', '.join(allowed)}")
            if key in found:
                self.fail(key_node, key_path, f"key given twice (first at line {key_lines[key]})")
            found[key] = value_node
            key_lines[key] = _line(key_node)
        for key, required in schema:
            if required and key not in found:
                self.fail(node, _join(path, key), "required key is missing")
        return found

    def items(self, node: yaml.Node, path: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, path, f"expected a list, got {_describe(node)}")
        return list(node.value)

    def text(self, node: yaml.Node, path: str, *, max_length: int | None = None) -> str:
        """A non-empty string, trimmed (block scalars end in a newline nobody means)."""
        if not (isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "str"):
            self.fail(node, path, f"expected text, got {_describe(node)}")
        value = node.value.strip()
        if not value:
            self.fail(node, path, "must not be empty")
        if max_length is not None and len(value) > max_length:
            self.fail(node, path, f"longer than {max_length} characters")
        return value

    def flag(self, node: yaml.Node, path: str) -> bool:
        if not (isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "bool"):
            self.fail(node, path, f"expected true or false, got {_describe(node)}")
        return yaml.SafeLoader.bool_values[node.value.lower()]

    def guid(self, node: yaml.Node, path: str) -> uuid.UUID:
        value = self.text(node, path)
        if not _GUID.fullmatch(value):
            self.fail(node, path, f"{value!r} is not a GUID (like {MICROSOFT_GRAPH_APP_ID})")
        return uuid.UUID(value)

    # The format

    def manifest(self, root: yaml.Node) -> ManifestSpec:
        # Another version of the format may differ in every other key: say that first.
        if isinstance(root, yaml.MappingNode):
            for key_node, value_node in root.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == "manifest":
                    self.version(value_node)
        top = self.fields(root, "", _TOP_KEYS)
        application = self.fields(top["application"], "application", _APPLICATION_KEYS)
        # Keyword arguments are evaluated in order: errors come in the file's order.
        return ManifestSpec(
            app_id=self.guid(application["app_id"], "application.app_id"),
            name=self.text(
                application["name"], "application.name", max_length=_max(Application, "name")
            ),
            publisher=self.optional_text(application, "publisher", "application"),
            docs_url=self.docs_url(application),
            features=self.features(top["features"]),
        )

    def version(self, node: yaml.Node) -> None:
        supported = f"this portal reads manifest: {MANIFEST_VERSION}"
        if not (isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "int"):
            self.fail(
                node, "manifest", f"expected a version number, got {_describe(node)}; {supported}"
            )
        version = yaml.constructor.SafeConstructor().construct_yaml_int(node)
        if version != MANIFEST_VERSION:
            self.fail(node, "manifest", f"version {version} is not supported; {supported}")

    def optional_text(self, fields: dict[str, yaml.Node], key: str, path: str) -> str:
        if key not in fields:
            return ""
        return self.text(fields[key], _join(path, key), max_length=_max(Application, key))

    def docs_url(self, fields: dict[str, yaml.Node]) -> str:
        url = self.optional_text(fields, "docs_url", "application")
        if url:
            try:
                _URL(url)
            except ValidationError:
                self.fail(
                    fields["docs_url"], "application.docs_url", f"{url!r} is not an http(s) URL"
                )
        return url

    def features(self, node: yaml.Node) -> tuple[FeatureSpec, ...]:
        specs: list[FeatureSpec] = []
        # Keys compare case-insensitively: two keys differing only in case would be two
        # switches that people cannot tell apart.
        seen: dict[str, int] = {}
        for index, item in enumerate(self.items(node, "features")):
            spec = self.feature(item, f"features[{index}]")
            folded = spec.key.casefold()
            if folded in seen:
                self.fail(
                    item,
                    f"features[{index}].key",
                    f"duplicate feature key {spec.key!r} (first at line {seen[folded]})",
                )
            seen[folded] = _line(item)
            specs.append(spec)
        return tuple(specs)

    def feature(self, node: yaml.Node, path: str) -> FeatureSpec:
        fields = self.fields(node, path, _FEATURE_KEYS)
        key = self.text(fields["key"], f"{path}.key", max_length=_max(Feature, "key"))
        try:
            validate_slug(key)
        except ValidationError:
            self.fail(
                fields["key"],
                f"{path}.key",
                f"{key!r} is not a slug (letters, digits, hyphens and underscores only)",
            )
        default_enabled = True
        if "default_enabled" in fields:
            default_enabled = self.flag(fields["default_enabled"], f"{path}.default_enabled")
        return FeatureSpec(
            key=key,
            name=self.text(fields["name"], f"{path}.name", max_length=_max(Feature, "name")),
            description=self.text(fields["description"], f"{path}.description"),
            default_enabled=default_enabled,
            requirements=self.requirements(fields["permissions"], f"{path}.permissions"),
        )

    def requirements(self, node: yaml.Node, path: str) -> tuple[RequirementSpec, ...]:
        specs: list[RequirementSpec] = []
        # Entra compares permission values case-insensitively, so does this check.
        seen: dict[tuple[uuid.UUID, str, str], int] = {}
        for index, item in enumerate(self.items(node, path)):
            spec = self.requirement(item, f"{path}[{index}]")
            identity = (spec.resource_app_id, spec.kind, spec.permission.casefold())
            if identity in seen:
                self.fail(
                    item,
                    f"{path}[{index}]",
                    f"{spec.permission} ({spec.kind}) is already listed in this feature "
                    f"(line {seen[identity]})",
                )
            seen[identity] = _line(item)
            specs.append(spec)
        return tuple(specs)

    def requirement(self, node: yaml.Node, path: str) -> RequirementSpec:
        fields = self.fields(node, path, _PERMISSION_KEYS)
        permission = self.text(
            fields["permission"],
            f"{path}.permission",
            max_length=_max(Requirement, "permission_value"),
        )
        if any(char.isspace() for char in permission):
            # Delegated grants store scopes space-separated: a space would split it in two.
            self.fail(
                fields["permission"], f"{path}.permission", f"{permission!r} contains a space"
            )
        kind = self.text(fields["type"], f"{path}.type")
        if kind not in PermissionKind.values:
            self.fail(
                fields["type"],
                f"{path}.type",
                f"{kind!r} is not one of {', '.join(PermissionKind.values)}",
            )
        resource = MICROSOFT_GRAPH
        if "resource" in fields:
            resource = self.guid(fields["resource"], f"{path}.resource")
        reason = self.text(fields["reason"], f"{path}.reason")
        api_calls: tuple[str, ...] = ()
        if "api_calls" in fields:
            api_calls = self.api_calls(fields["api_calls"], f"{path}.api_calls")
        return RequirementSpec(
            permission=permission,
            kind=PermissionKind(kind),
            resource_app_id=resource,
            reason=reason,
            api_calls=api_calls,
        )

    def api_calls(self, node: yaml.Node, path: str) -> tuple[str, ...]:
        calls: list[str] = []
        for index, item in enumerate(self.items(node, path)):
            call = self.text(item, f"{path}[{index}]")
            if not _API_CALL.fullmatch(call):
                self.fail(
                    item,
                    f"{path}[{index}]",
                    f'{call!r} is not of the form "METHOD /path" with METHOD one of '
                    f"{', '.join(HTTP_METHODS)}",
                )
            if call in calls:
                self.fail(item, f"{path}[{index}]", f"{call!r} is listed twice")
            calls.append(call)
        return tuple(calls)


def _max(model: type[models.Model], field: str) -> int | None:
    """The column's length limit, so that a long value fails here and not in the database."""
    column = model._meta.get_field(field)
    return column.max_length if isinstance(column, models.Field) else None


# --- import ----------------------------------------------------------------------------


class ImportOutcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class ManifestImportResult:
    app_id: uuid.UUID
    name: str
    outcome: ImportOutcome
    features_created: int = 0
    features_updated: int = 0
    features_deleted: int = 0
    requirements_created: int = 0
    requirements_updated: int = 0
    requirements_deleted: int = 0
    warnings: tuple[str, ...] = ()


_FEATURE_FIELDS = ["name", "description", "default_enabled", "position"]
_REQUIREMENT_FIELDS = ["reason", "api_calls", "position"]

# A requirement's identity within its feature: (resource appId, kind, permission value).
_RequirementKey = tuple[uuid.UUID, str, str]


def manifest_import(*, spec: ManifestSpec) -> ManifestImportResult:
    """Make the application, its features and their requirements match ``spec``.

    One transaction. Rows are compared before they are written, so importing the same
    manifest again writes nothing and leaves `manifest_imported_at` alone. Features and
    requirements that the manifest no longer lists are deleted.
    """
    now = timezone.now()
    with transaction.atomic():
        application = Application.objects.select_for_update().filter(app_id=spec.app_id).first()
        if application is None:
            application = Application.objects.create(
                app_id=spec.app_id,
                name=spec.name,
                publisher=spec.publisher,
                docs_url=spec.docs_url,
                manifest_imported_at=now,
            )
            counts = _sync_features(application, spec)
            outcome = ImportOutcome.CREATED
        else:
            app_changes = _set_changed(
                application,
                {"name": spec.name, "publisher": spec.publisher, "docs_url": spec.docs_url},
            )
            counts = _sync_features(application, spec)
            # An application first seen in a tenant's grants has no manifest until now.
            if app_changes or any(counts.values()) or not application.has_manifest:
                application.manifest_imported_at = now
                application.save(update_fields=[*app_changes, "manifest_imported_at"])
                outcome = ImportOutcome.UPDATED
            else:
                outcome = ImportOutcome.UNCHANGED
        if outcome != ImportOutcome.UNCHANGED:
            # The application's verdicts in every tenant holding its grants, stored with it.
            from tenants.findings import findings_refresh_holding  # tenants reads manifests

            findings_refresh_holding(app_ids=[spec.app_id])
        warnings = _catalog_warnings(spec)
    return ManifestImportResult(
        app_id=spec.app_id, name=spec.name, outcome=outcome, warnings=warnings, **counts
    )


def _set_changed(instance: models.Model, values: dict[str, Any]) -> list[str]:
    """Assign the values that differ from ``instance``'s; return those fields' names."""
    changed = [name for name, value in values.items() if getattr(instance, name) != value]
    for name in changed:
        setattr(instance, name, values[name])
    return changed


def _sync_features(application: Application, spec: ManifestSpec) -> dict[str, int]:
    existing = {feature.key: feature for feature in application.features.all()}
    by_key: dict[str, Feature] = {}
    to_create: list[Feature] = []
    to_update: list[Feature] = []
    for position, feature_spec in enumerate(spec.features):
        values = {
            "name": feature_spec.name,
            "description": feature_spec.description,
            "default_enabled": feature_spec.default_enabled,
            "position": position,
        }
        feature = existing.pop(feature_spec.key, None)
        if feature is None:
            feature = Feature(application=application, key=feature_spec.key, **values)
            to_create.append(feature)
        elif _set_changed(feature, values):
            to_update.append(feature)
        by_key[feature_spec.key] = feature
    # Read before the deletes below cascade to the requirements of removed features.
    requirements = _requirements_by_feature(application)
    Feature.objects.bulk_create(to_create)
    Feature.objects.bulk_update(to_update, _FEATURE_FIELDS)
    if existing:
        Feature.objects.filter(pk__in=[feature.pk for feature in existing.values()]).delete()
    cascaded = sum(len(requirements.pop(feature.pk, {})) for feature in existing.values())
    counts = _sync_requirements(spec, by_key, requirements)
    counts["requirements_deleted"] += cascaded
    return {
        "features_created": len(to_create),
        "features_updated": len(to_update),
        "features_deleted": len(existing),
        **counts,
    }


def _requirements_by_feature(
    application: Application,
) -> dict[int, dict[_RequirementKey, Requirement]]:
    grouped: dict[int, dict[_RequirementKey, Requirement]] = {}
    for requirement in Requirement.objects.filter(feature__application=application):
        key = (requirement.resource_app_id, requirement.kind, requirement.permission_value)
        grouped.setdefault(requirement.feature_id, {})[key] = requirement
    return grouped


def _sync_requirements(
    spec: ManifestSpec,
    features: dict[str, Feature],
    existing: dict[int, dict[_RequirementKey, Requirement]],
) -> dict[str, int]:
    to_create: list[Requirement] = []
    to_update: list[Requirement] = []
    to_delete: list[int] = []
    for feature_spec in spec.features:
        feature = features[feature_spec.key]
        current = existing.get(feature.pk, {})
        for position, requirement_spec in enumerate(feature_spec.requirements):
            values = {
                "reason": requirement_spec.reason,
                "api_calls": list(requirement_spec.api_calls),
                "position": position,
            }
            key = (
                requirement_spec.resource_app_id,
                requirement_spec.kind.value,
                requirement_spec.permission,
            )
            requirement = current.pop(key, None)
            if requirement is None:
                to_create.append(
                    Requirement(
                        feature=feature,
                        resource_app_id=requirement_spec.resource_app_id,
                        kind=requirement_spec.kind.value,
                        permission_value=requirement_spec.permission,
                        **values,
                    )
                )
            elif _set_changed(requirement, values):
                to_update.append(requirement)
        to_delete.extend(requirement.pk for requirement in current.values())
    Requirement.objects.bulk_create(to_create)
    Requirement.objects.bulk_update(to_update, _REQUIREMENT_FIELDS)
    if to_delete:
        Requirement.objects.filter(pk__in=to_delete).delete()
    return {
        "requirements_created": len(to_create),
        "requirements_updated": len(to_update),
        "requirements_deleted": len(to_delete),
    }


def _catalog_warnings(spec: ManifestSpec) -> tuple[str, ...]:
    """One warning per required permission that the catalog does not know (yet)."""
    wanted = {
        (req.resource_app_id, req.kind.value, req.permission.casefold()): req
        for feature in spec.features
        for req in feature.requirements
    }
    if not wanted:
        return ()
    known_query = Q()
    for req in wanted.values():
        known_query |= Q(
            resource__app_id=req.resource_app_id, kind=req.kind.value, value__iexact=req.permission
        )
    known = {
        (resource, kind, value.casefold())
        for resource, kind, value in Permission.objects.filter(known_query).values_list(
            "resource__app_id", "kind", "value"
        )
    }
    return tuple(
        f"{req.permission} ({req.kind.value}{_resource_label(req.resource_app_id)}) is not in "
        "the catalog yet; it is kept and will match once the catalog knows it"
        for key, req in wanted.items()
        if key not in known
    )


def _resource_label(resource_app_id: uuid.UUID) -> str:
    return "" if resource_app_id == MICROSOFT_GRAPH else f", resource {resource_app_id}"


# --- export ----------------------------------------------------------------------------


def manifest_export(*, application: Application) -> str:
    """The application's manifest as YAML, in the documented key order.

    Optional keys at their default are left out, so that exporting what an import of
    this text stored gives this text again.
    """
    return manifest_dump(spec=_spec_of(application))


def manifest_dump(*, spec: ManifestSpec) -> str:
    return yaml.dump(
        _document(spec),
        Dumper=_ManifestDumper,
        sort_keys=False,
        allow_unicode=True,
        # One line per value: reasons stay greppable and diffs stay small.
        width=_NO_WRAP,
    )


def manifest_spec(*, application: Application) -> ManifestSpec:
    """The application's manifest as stored, as the parser would have read it."""
    return _spec_of(application)


def _spec_of(application: Application) -> ManifestSpec:
    features = application.features.order_by("position", "pk").prefetch_related(
        Prefetch("requirements", queryset=Requirement.objects.order_by("position", "pk"))
    )
    return ManifestSpec(
        app_id=application.app_id,
        name=application.name,
        publisher=application.publisher,
        docs_url=application.docs_url,
        features=tuple(
            FeatureSpec(
                key=feature.key,
                name=feature.name,
                description=feature.description,
                default_enabled=feature.default_enabled,
                requirements=tuple(
                    RequirementSpec(
                        permission=requirement.permission_value,
                        kind=PermissionKind(requirement.kind),
                        resource_app_id=requirement.resource_app_id,
                        reason=requirement.reason,
                        api_calls=tuple(requirement.api_calls),
                    )
                    for requirement in feature.requirements.all()
                ),
            )
            for feature in features
        ),
    )


def _document(spec: ManifestSpec) -> dict[str, Any]:
    application: dict[str, Any] = {"app_id": str(spec.app_id), "name": spec.name}
    if spec.publisher:
        application["publisher"] = spec.publisher
    if spec.docs_url:
        application["docs_url"] = spec.docs_url
    return {
        "manifest": MANIFEST_VERSION,
        "application": application,
        "features": [_feature_document(feature) for feature in spec.features],
    }


def _feature_document(feature: FeatureSpec) -> dict[str, Any]:
    document: dict[str, Any] = {
        "key": feature.key,
        "name": feature.name,
        "description": feature.description,
    }
    if not feature.default_enabled:
        document["default_enabled"] = False
    document["permissions"] = [_requirement_document(req) for req in feature.requirements]
    return document


def _requirement_document(requirement: RequirementSpec) -> dict[str, Any]:
    document: dict[str, Any] = {
        "permission": requirement.permission,
        "type": requirement.kind.value,
    }
    if requirement.resource_app_id != MICROSOFT_GRAPH:
        document["resource"] = str(requirement.resource_app_id)
    document["reason"] = requirement.reason
    if requirement.api_calls:
        document["api_calls"] = list(requirement.api_calls)
    return document


_NO_WRAP = 1_000_000


class _ManifestDumper(yaml.SafeDumper):
    """Indents lists under their key, as DESIGN.md and the bundled manifests do."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # A multi-line description reads best as a literal block, as it was probably written.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar(_TAG + "str", value, style=style)


_ManifestDumper.add_representer(str, _represent_text)
