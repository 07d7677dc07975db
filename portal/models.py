from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A person who signs in; with Entra SSO, identified by their tenant and object id."""

    entra_tenant_id = models.CharField(max_length=36, blank=True)
    entra_object_id = models.CharField(max_length=36, blank=True)
    # The portal's app roles (Portal.Admin, Portal.Reader, Portal.Operator) from the id
    # token of the last sign-in: Entra is the source of truth, so they are refreshed then.
    entra_roles = models.JSONField(default=list, blank=True)
    # The portal roles that the user's Entra directory roles (the id token's ``wids``)
    # give in their own tenant, from the last sign-in: unlike ``entra_roles``, a sync
    # does not read them again, so they change at the next sign-in.
    directory_roles = models.JSONField(default=list, blank=True)

    @property
    def portal_roles(self) -> frozenset[str]:
        """Every portal role the user holds in their own tenant: the app roles and those
        their directory roles give (unless ENTRA_DIRECTORY_ROLES is off); the higher
        of the two wins wherever a role is compared."""
        directory = self.directory_roles if settings.ENTRA_DIRECTORY_ROLES else []
        return frozenset([*(self.entra_roles or []), *(directory or [])])
