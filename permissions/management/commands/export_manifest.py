import uuid
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from permissions.manifests import manifest_export
from permissions.models import Application


class Command(BaseCommand):
    help = "Print an application's manifest as YAML (the format import_manifest reads)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("app_id", metavar="APP_ID", help="the application's appId (a GUID)")

    def handle(self, *args: Any, app_id: str, **options: Any) -> None:
        try:
            parsed = uuid.UUID(app_id)
        except ValueError:
            raise CommandError(f"{app_id!r} is not an application id (a GUID)") from None
        application = Application.objects.filter(app_id=parsed).first()
        if application is None:
            raise CommandError(f"no application with app id {parsed}")
        if not application.has_manifest:
            # Exporting its empty feature list would describe a manifest nobody wrote.
            raise CommandError(f"{application.name} ({parsed}) has no manifest")
        self.stdout.write(manifest_export(application=application), ending="")
