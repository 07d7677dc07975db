from django.contrib import admin

from digests.models import DigestDelivery, Subscription


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ("user", "tenant", "frequency", "all_quiet", "started_at")
    list_filter = ("frequency", "all_quiet")


@admin.register(DigestDelivery)
class DigestDeliveryAdmin(admin.ModelAdmin):
    list_display = ("subscription", "kind", "period", "status", "attempts", "up_to_run", "sent_at")
    list_filter = ("kind", "status")
    readonly_fields = [field.name for field in DigestDelivery._meta.fields]
