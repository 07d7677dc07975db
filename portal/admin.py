from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from portal.models import User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    fieldsets = (
        *(BaseUserAdmin.fieldsets or ()),
        ("Entra", {"fields": ("entra_tenant_id", "entra_object_id", "entra_roles")}),
    )
    list_display = ("username", "email", "entra_tenant_id", "is_staff")
