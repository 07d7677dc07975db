from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A person who signs in; with Entra SSO, identified by their tenant and object id."""

    entra_tenant_id = models.CharField(max_length=36, blank=True)
    entra_object_id = models.CharField(max_length=36, blank=True)
    # The portal's app roles (Portal.Admin, Portal.Reader, Portal.Operator) from the id
    # token of the last sign-in: Entra is the source of truth, so they are refreshed then.
    entra_roles = models.JSONField(default=list, blank=True)
