from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import ValidationError

from portal.models import User
from portal.signins import sign_in_locked


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    fieldsets = (
        *(BaseUserAdmin.fieldsets or ()),
        (
            "Entra",
            {"fields": ("entra_tenant_id", "entra_object_id", "entra_roles", "directory_roles")},
        ),
    )
    list_display = ("username", "email", "entra_tenant_id", "is_staff")


class LockoutAdminAuthenticationForm(AdminAuthenticationForm):
    """Django admin's sign-in form, which says so when the user name is locked: the answer
    is still "wrong credentials" (portal/signins.py), plus why the right password fails."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "locked": "Too many failed sign-ins for this user name: it is locked for up to "
        "%(minutes)s minutes. Try again later.",
    }

    def clean(self) -> dict[str, object]:
        try:
            return super().clean()
        except ValidationError as error:
            username = self.cleaned_data.get("username") or ""
            if not sign_in_locked(username=username):
                raise
            locked = ValidationError(
                self.error_messages["locked"],
                code="locked",
                params={"minutes": settings.ADMIN_LOCKOUT_MINUTES},
            )
            raise ValidationError([*error.error_list, locked]) from None


admin.site.login_form = LockoutAdminAuthenticationForm
