"""import_catalog: load Microsoft's permissions reference and EntraOps' tiers, or the starter.

Each run is recorded as a CatalogImport, which the catalog's "what changed" page shows.
"""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from permissions.catalog import catalog_import_run, catalog_refresh
from permissions.models import CatalogImport


class Command(BaseCommand):
    help = (
        "Import Microsoft's Graph permissions reference and EntraOps' tier classification "
        "(files or https:// URLs; with no option, from their public GitHub locations), "
        "or the built-in catalog (a facts-only snapshot of the reference) with --starter."
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
            "--starter", action="store_true", help="load the built-in catalog (works offline)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        permissions = options["permissions"]
        descriptions = options["descriptions"]
        classifications = options["classification"]
        given = bool(permissions or descriptions or classifications)
        if options["starter"] and given:
            raise CommandError("--starter cannot be combined with reference files")

        trigger = CatalogImport.Trigger.COMMAND
        if options["starter"] or given:
            run = catalog_import_run(
                trigger=trigger,
                starter=options["starter"],
                permissions=permissions,
                descriptions=descriptions,
                classifications=classifications,
            )
        else:
            run = catalog_refresh(trigger=trigger)
        if run is None:
            raise CommandError("another catalog import is running; try again when it ends")
        if run.status == CatalogImport.Status.FAILED:
            raise CommandError(run.error)
        self.stdout.write(_summary(run))


def _summary(run: CatalogImport) -> str:
    seconds = run.duration.total_seconds() if run.duration else 0.0
    if not run.changed_anything:
        return (
            f"Catalog up to date, nothing changed "
            f"({run.permissions_unchanged} permissions checked) in {seconds:.1f} s."
        )
    lines = [
        f"Catalog imported in {seconds:.1f} s.",
        f"Permissions: {run.permissions_added} added, {run.permissions_changed} changed, "
        f"{run.permissions_removed} removed, {run.permissions_unchanged} unchanged.",
        f"API calls: {run.api_calls_added} added, {run.api_calls_removed} removed, "
        f"{run.api_calls_remarked} with a new least-privileged mark.",
        f"Tiers set: {run.tiers_set}.",
    ]
    if run.skipped:
        lines.append(f"Skipped {run.skipped} resource-specific consent (RSC) permissions.")
    return "\n".join(lines)
