from django.urls import path

from tenants import views

app_name = "tenants"

urlpatterns = [
    path("matrix/", views.matrix, name="matrix"),
    path("<uuid:tenant_id>/", views.tenant_detail, name="tenant-detail"),
    path("<uuid:tenant_id>/sync/", views.sync_now, name="sync-now"),
    path("<uuid:tenant_id>/report.json", views.report_json, name="report-json"),
    path("<uuid:tenant_id>/report.csv", views.report_csv_export, name="report-csv"),
    path("<uuid:tenant_id>/runs/", views.run_list, name="run-list"),
    path("<uuid:tenant_id>/runs/<int:run_id>/", views.run_detail, name="run-detail"),
    path("<uuid:tenant_id>/runs/<int:run_id>/status/", views.run_status, name="run-status"),
    path(
        "<uuid:tenant_id>/applications/<uuid:app_id>/",
        views.application_detail,
        name="application",
    ),
    path(
        "<uuid:tenant_id>/applications/<uuid:app_id>/features/preview/",
        views.features_preview,
        name="features-preview",
    ),
    path(
        "<uuid:tenant_id>/applications/<uuid:app_id>/features/",
        views.features_save,
        name="features-save",
    ),
]
