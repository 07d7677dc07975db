from django.urls import path

from permissions import views

app_name = "permissions"

urlpatterns = [
    path("", views.application_list, name="application-list"),
]
