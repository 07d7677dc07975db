from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from permissions.manifests import (
    ImportOutcome,
    ManifestError,
    ManifestImportResult,
    manifest_import,
    manifest_read,
)


class Command(BaseCommand):
    help = (
        "Import application manifests (YAML, the format in DESIGN.md). Each file is imported "
        "all-or-nothing in its own transaction and gets one line of output. A file with an "
        "error is skipped with a one-line reason naming file, line and key; the other files "
        "are still imported, and the command then exits non-zero. Warnings (a permission the "
        "catalog does not know yet) go to stderr unless -v 0; they do not fail the import."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("paths", nargs="+", type=Path, metavar="PATH")

    def handle(self, *args: Any, paths: list[Path], verbosity: int, **options: Any) -> None:
        failed = 0
        for path in paths:
            try:
                result = manifest_import(spec=manifest_read(path=path))
            except ManifestError as exc:
                failed += 1
                self.stderr.write(str(exc))
                continue
            self.stdout.write(f"{path}: {_summary(result)}")
            if verbosity >= 1:
                for warning in result.warnings:
                    self.stderr.write(f"{path}: warning: {warning}")
        if failed:
            raise CommandError(
                f"{failed} of {len(paths)} manifest file(s) not imported; "
                f"{len(paths) - failed} imported"
            )


def _summary(result: ManifestImportResult) -> str:
    name = f"{result.name} ({result.app_id})"
    warnings = f", {len(result.warnings)} warning(s)" if result.warnings else ""
    if result.outcome == ImportOutcome.UNCHANGED:
        return f"{name} unchanged{warnings}"
    return (
        f"{name} {result.outcome}: features +{result.features_created} "
        f"~{result.features_updated} -{result.features_deleted}, "
        f"permissions +{result.requirements_created} ~{result.requirements_updated} "
        f"-{result.requirements_deleted}{warnings}"
    )
