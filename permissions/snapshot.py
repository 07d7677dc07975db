"""The catalog snapshot: the facts of Microsoft's permissions reference and EntraOps' tiers.

An offline install loads it with ``import_catalog --starter`` and classifies every Graph
permission. It holds, per permission, facts only: resource, kind, value, id, admin-consent
flag, privilege level and tier. It holds no display names, descriptions or any other text
of Microsoft's, and no API calls (those come with a reference import; see the README).

``build_catalog_snapshot`` writes it from the reference files; a test run in CI checks that
doing so again gives exactly the shipped file. It follows what ``catalog_import_reference``
makes of the same files, reusing its parsers, so that an import of the full reference
finds the snapshot's facts already there. provisioningInfo.json adds ids that the
descriptions file lacks (about a quarter of the permissions.json entries).
"""

import json
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from permissions.catalog_inputs import (
    APPLICATION,
    DELEGATED,
    SNAPSHOT_COLUMNS,
    SNAPSHOT_FORMAT,
    CatalogImportError,
    Key,
    Scheme,
    expect,
    get_field,
    merge_descriptions,
    merge_tiers,
    parse_classification,
    parse_descriptions,
    parse_input,
    parse_permissions,
)
from permissions.models import MICROSOFT_GRAPH_APP_ID, Tier

MSGRAPH_REPOSITORY = "microsoftgraph/microsoft-graph-devx-content"
ENTRAOPS_REPOSITORY = "Cloud-Architekt/AzurePrivilegedIAM"


@dataclass(frozen=True)
class Credit:
    """Where a source's files came from: a repository at a commit, and its copyright line."""

    repository: str
    commit: str
    date: str
    copyright: str = ""


def snapshot_credits(*, readme: Path, licences: Mapping[str, Path]) -> dict[str, Credit]:
    """Each source's commit and date, as a README names them ("<owner/name>, commit
    <sha>, <yyyy-mm-dd>"), and the copyright line of each LICENSE that exists."""
    try:
        text = readme.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogImportError(f"{readme}: cannot be read ({exc.strerror})") from None
    credits = {}
    for repository in (MSGRAPH_REPOSITORY, ENTRAOPS_REPOSITORY):
        found = re.search(
            rf"{re.escape(repository)},\s+commit\s+([0-9a-f]{{7,40}}),\s+(\d{{4}}-\d\d-\d\d)", text
        )
        if found is None:
            raise CatalogImportError(
                f"{readme.name}: names no commit of {repository} "
                f"(expected '{repository}, commit <sha>, <yyyy-mm-dd>')"
            )
        credits[repository] = Credit(
            repository, found[1], found[2], _copyright(licences.get(repository))
        )
    return credits


def _copyright(licence: Path | None) -> str:
    if licence is None or not licence.is_file():
        return ""
    for line in licence.read_text(encoding="utf-8").splitlines():
        if line.strip().lower().startswith("copyright"):
            return line.strip()
    return ""


def snapshot_build(
    *,
    permissions: str,
    descriptions: str,
    provisioning: str,
    classifications: Sequence[str],
    credits: Mapping[str, Credit],
) -> str:
    """The snapshot's text: a JSON object with one permission per line, for readable diffs."""
    listed, _ = parse_input(permissions, parse_permissions)
    described = merge_descriptions(
        listed, parse_input(descriptions, parse_descriptions), permissions_given=True
    )
    provisioned = parse_input(provisioning, _parse_provisioning)
    tiers = {
        t.kind: t
        for t in merge_tiers(parse_input(c, parse_classification) for c in classifications)
    }

    # An id from provisioningInfo only where the descriptions file has none, and only if
    # no other permission of the kind has it: a shared id would make a rename of one.
    taken = {
        (item.kind, item.fields["graph_id"])
        for item in described.values()
        if "graph_id" in item.fields
    }
    rows = []
    for key, item in sorted(described.items(), key=lambda pair: (pair[0][1].casefold(), pair[0])):
        graph_id = item.fields.get("graph_id")
        if graph_id is None and key in provisioned and (item.kind, provisioned[key]) not in taken:
            graph_id = provisioned[key]
        kind_tiers = tiers.get(item.kind)
        tier = ""
        if kind_tiers is not None:
            by_id = kind_tiers.by_id.get(graph_id) if graph_id is not None else None
            tier = by_id or kind_tiers.by_value.get(item.value, "")
        rows.append(
            [
                item.kind,
                item.value,
                str(graph_id) if graph_id else None,
                item.fields.get("admin_consent_required"),
                item.fields.get("privilege_level"),
                tier,
            ]
        )
    return _render(
        rows, credits=credits, files=[permissions, descriptions, provisioning, *classifications]
    )


def _parse_provisioning(data: object) -> dict[Key, uuid.UUID]:
    """provisioningInfo.json's ids of the public cloud, where one permission has exactly one.

    It lists each permission once per scheme and deployment, including test and national
    clouds with ids of their own; personal-account scopes may differ from work-or-school
    ones, so delegated ids come from the DelegatedWork entries.
    """
    root = expect(data, dict, "the file")
    deployments = get_field(root, "permissionDeployments", dict, "")
    kinds = {Scheme.APPLICATION.value: APPLICATION, Scheme.DELEGATED_WORK.value: DELEGATED}
    candidates: dict[Key, set[uuid.UUID]] = defaultdict(set)
    for value, entries in deployments.items():
        for index, entry in enumerate(expect(entries, list, value)):
            where = f"{value}[{index}]"
            entry = expect(entry, dict, where)
            kind = kinds.get(get_field(entry, "scheme", str, where))
            environment = get_field(entry, "environment", str, where, required=False) or ""
            text = get_field(entry, "id", str, where, required=False)
            if kind is None or not text or "public" not in _environments(environment):
                continue
            try:
                candidates[(kind, value)].add(uuid.UUID(text))
            except ValueError:
                # The file has been seen with a malformed id (37 hex digits); it only fills
                # gaps, so such an entry says nothing rather than stopping the build.
                continue
    return {key: ids.pop() for key, ids in candidates.items() if len(ids) == 1}


def _environments(text: str) -> set[str]:
    return {part.strip().lower() for part in text.split(";")}


def _render(rows: list[list[Any]], *, credits: Mapping[str, Credit], files: Sequence[str]) -> str:
    names = [Path(f).name for f in files]
    msgraph, entraops = credits[MSGRAPH_REPOSITORY], credits[ENTRAOPS_REPOSITORY]
    by_kind = Counter(row[0] for row in rows)
    by_tier = Counter(row[5] or "unclassified" for row in rows)
    header: dict[str, Any] = {
        "format": SNAPSHOT_FORMAT,
        "about": (
            "Facts only (resource, kind, value, id, admin-consent flag, privilege level, "
            "tier) of every Microsoft Graph permission, derived from the two sources below; "
            "no texts. Written by `manage.py build_catalog_snapshot`: do not edit."
        ),
        "sources": [
            _source("Microsoft Graph permissions reference", msgraph, names[:3]),
            _source("EntraOps classification of Graph permissions", entraops, names[3:]),
        ],
        "counts": {
            "permissions": len(rows),
            **{kind: by_kind[kind] for kind in (APPLICATION, DELEGATED)},
            **{tier: by_tier[tier] for tier in (*(t for t in Tier.values if t), "unclassified")},
        },
        "columns": list(SNAPSHOT_COLUMNS),
    }
    lines = ["{"]
    for key, value in header.items():
        if key == "sources":
            lines.append('  "sources": [')
            lines.extend(f"    {_dumps(source)}," for source in value)
            lines[-1] = lines[-1].rstrip(",")
            lines.append("  ],")
        else:
            lines.append(f"  {_dumps(key)}: {_dumps(value)},")
    lines.append('  "resources": [')
    lines.append(
        f'    {{"app_id": "{MICROSOFT_GRAPH_APP_ID}", "name": "Microsoft Graph", "permissions": ['
    )
    lines.extend(f"      {_dumps(row)}," for row in rows)
    if rows:
        lines[-1] = lines[-1].rstrip(",")
    lines.append("    ]}")
    lines.append("  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _source(name: str, credit: Credit, files: list[str]) -> dict[str, Any]:
    source: dict[str, Any] = {
        "name": name,
        "repository": f"https://github.com/{credit.repository}",
        "commit": credit.commit,
        "date": credit.date,
        "files": files,
        "licence": "MIT",
    }
    if credit.copyright:
        source["copyright"] = credit.copyright
    return source


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)
