from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from permissions.models import Application


def application_list(request: HttpRequest) -> HttpResponse:
    applications = Application.objects.order_by("name")
    return render(request, "permissions/application_list.html", {"applications": applications})
