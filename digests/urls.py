from django.urls import path

from digests import views

app_name = "digests"

urlpatterns = [
    path("subscriptions/", views.subscriptions, name="subscriptions"),
    path("subscriptions/<uuid:tenant_id>/", views.subscription_save, name="subscription-save"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("outbox/", views.outbox, name="outbox"),
    path("outbox/<str:message>/", views.outbox_detail, name="outbox-message"),
    path("outbox/<str:message>/html/", views.outbox_html, name="outbox-html"),
]
