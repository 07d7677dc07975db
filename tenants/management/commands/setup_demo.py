import time

import requests
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.graph import new_session

# The demo scenario's onboarded tenants (emulator/scenarios/demo.yaml). Woodgrove is a
# tenant as real ones look: managed identities, Microsoft's own apps, an SSO app with
# hundreds of user assignments, principals with odd fields. Northwind stays to connect.
DEMO_TENANTS = {
    "1e1a0801-7f55-46e2-9fb2-3b09766f2844": "Contoso",
    "b60562d0-4422-42c9-a0bc-08e96ee0f689": "Fabrikam",
    "5a7d3e2b-9c41-4f8e-b6a0-1d2c3b4a5e6f": "Woodgrove",
}


class Command(BaseCommand):
    help = "Onboard the emulator's demo tenants and sync them once (used by `make run`)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--wait", type=float, default=60, help="seconds to wait for the emulator"
        )

    def handle(self, *args: object, wait: float, **options: object) -> None:
        self._wait_for_entra(wait)
        for tenant_id, name in DEMO_TENANTS.items():
            call_command("add_tenant", tenant_id, "--name", name, stdout=self.stdout)
            call_command("sync_tenant", tenant_id, stdout=self.stdout)
        self.stdout.write(
            self.style.SUCCESS(
                f"Permission Portal demo: {settings.PORTAL_URL} (Ctrl-C stops everything)"
            )
        )

    def _wait_for_entra(self, wait: float) -> None:
        """The emulator starts beside this command; its first start also makes its CA."""
        url = f"{settings.ENTRA_LOGIN_URL}/organizations/v2.0/.well-known/openid-configuration"
        deadline = time.monotonic() + wait
        while True:
            try:
                new_session().get(url, timeout=5).raise_for_status()
                return
            except (requests.RequestException, OSError) as exc:
                if time.monotonic() > deadline:
                    raise CommandError(
                        f"the emulator did not answer at {url} within {wait:.0f}s: {exc}"
                    ) from None
                time.sleep(0.5)
