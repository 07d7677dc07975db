"""import_catalog: load Microsoft's permissions reference and EntraOps' tiers, or the starter."""

import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from permissions.catalog import (
    CLASSIFICATION_URLS,
    REFERENCE_DESCRIPTIONS_URL,
    REFERENCE_PERMISSIONS_URL,
    CatalogImportError,
    CatalogImportResult,
    catalog_import_reference,
    catalog_import_starter,
)


class Command(BaseCommand):
    help = (
        "Import Microsoft's Graph permissions reference and EntraOps' tier classification "
        "(files or https:// URLs; with no option, from their public GitHub locations), "
        "or the built-in starter catalog with --starter."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--permissions", metavar="FILE_OR_URL", help="permissions.json")
        parser.add_argument(
            "--descriptions", metavar="FILE_OR_URL", help="permissions-descriptions.json"
        )
        parser.add_argument(
            "--classification",
            metavar="FILE_OR_URL",
            action="append",
            default=[],
            help="EntraOps' app roles or scopes classification; may be repeated",
        )
        parser.add_argument(
            "--starter", action="store_true", help="load the built-in starter catalog"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        permissions = options["permissions"]
        descriptions = options["descriptions"]
        classifications = options["classification"]
        given = bool(permissions or descriptions or classifications)
        if options["starter"] and given:
            raise CommandError("--starter cannot be combined with reference files")

        started = time.monotonic()
        try:
            if options["starter"]:
                result = catalog_import_starter()
            elif given:
                result = catalog_import_reference(
                    permissions=permissions,
                    descriptions=descriptions,
                    classifications=classifications,
                )
            else:
                result = catalog_import_reference(
                    permissions=REFERENCE_PERMISSIONS_URL,
                    descriptions=REFERENCE_DESCRIPTIONS_URL,
                    classifications=CLASSIFICATION_URLS,
                )
        except CatalogImportError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(_summary(result, time.monotonic() - started))


def _summary(result: CatalogImportResult, seconds: float) -> str:
    if not result.changed_anything:
        return (
            f"Catalog up to date, nothing changed "
            f"({result.permissions_unchanged} permissions checked) in {seconds:.1f} s."
        )
    lines = [
        f"Catalog imported in {seconds:.1f} s.",
        f"Permissions: {result.permissions_added} added, {result.permissions_changed} changed, "
        f"{result.permissions_removed} removed, {result.permissions_unchanged} unchanged.",
        f"API calls: {result.api_calls_added} added, {result.api_calls_removed} removed, "
        f"{result.api_calls_remarked} with a new least-privileged mark.",
        f"Tiers set: {result.tiers_set}.",
    ]
    if result.skipped:
        lines.append(f"Skipped {result.skipped} resource-specific consent (RSC) permissions.")
    return "\n".join(lines)
