from django.urls import path

from tenants import views

app_name = "tenants"

urlpatterns = [
    path("", views.tenant_list, name="tenant-list"),
    path("<uuid:tenant_id>/", views.tenant_detail, name="tenant-detail"),
    path("<uuid:tenant_id>/sync/", views.sync_now, name="sync-now"),
    path("<uuid:tenant_id>/runs/", views.run_list, name="run-list"),
    path("<uuid:tenant_id>/runs/<int:run_id>/", views.run_detail, name="run-detail"),
    path("<uuid:tenant_id>/runs/<int:run_id>/status/", views.run_status, name="run-status"),
]
