"""build_catalog_snapshot: write the facts-only catalog snapshot from the reference files."""

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from permissions.catalog import SNAPSHOT_PATH, CatalogImportError
from permissions.snapshot import (
    ENTRAOPS_REPOSITORY,
    MSGRAPH_REPOSITORY,
    snapshot_build,
    snapshot_credits,
)

REFERENCE = Path(settings.BASE_DIR).parent / "shared" / "reference"
MSGRAPH = REFERENCE / "msgraph-permissions"
ENTRAOPS = REFERENCE / "entraops-classification"


class Command(BaseCommand):
    help = (
        "Write the catalog snapshot (facts only: resource, kind, value, id, admin consent, "
        "privilege level, tier) that `import_catalog --starter` loads, from Microsoft's "
        "permissions reference and EntraOps' classification (default: ../shared/reference)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--permissions", default=str(MSGRAPH / "permissions.json"))
        parser.add_argument(
            "--descriptions", default=str(MSGRAPH / "permissions-descriptions.json")
        )
        parser.add_argument("--provisioning", default=str(MSGRAPH / "provisioningInfo.json"))
        parser.add_argument(
            "--classification",
            action="append",
            help="EntraOps' app roles or scopes classification; may be repeated "
            "(default: both files in ../shared/reference)",
        )
        parser.add_argument(
            "--credits",
            default=str(REFERENCE.parent / "README.md"),
            help="a README naming each source's commit as '<owner/name>, commit <sha>, <date>'",
        )
        parser.add_argument("--output", default=str(SNAPSHOT_PATH))
        parser.add_argument(
            "--check",
            action="store_true",
            help="write nothing; fail if --output differs from what would be written",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        classifications = options["classification"] or [
            str(ENTRAOPS / "Classification_MsGraphAppRoles.json"),
            str(ENTRAOPS / "Classification_MsGraphScopes.json"),
        ]
        # Each LICENSE beside its source's files, where there is one, gives the copyright line.
        licences = {
            MSGRAPH_REPOSITORY: Path(options["permissions"]).parent / "LICENSE",
            ENTRAOPS_REPOSITORY: Path(classifications[0]).parent / "LICENSE",
        }
        try:
            text = snapshot_build(
                permissions=options["permissions"],
                descriptions=options["descriptions"],
                provisioning=options["provisioning"],
                classifications=classifications,
                credits=snapshot_credits(readme=Path(options["credits"]), licences=licences),
            )
        except CatalogImportError as exc:
            raise CommandError(str(exc)) from None
        output = Path(options["output"])
        if options["check"]:
            current = output.read_text(encoding="utf-8") if output.is_file() else None
            if current != text:
                raise CommandError(
                    f"{output} is not what the reference gives: run build_catalog_snapshot"
                )
            self.stdout.write(f"{output} is up to date ({len(text.encode())} bytes).")
            return
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"{output}: cannot be written ({exc.strerror})") from None
        self.stdout.write(f"Wrote {output} ({len(text.encode())} bytes).")
