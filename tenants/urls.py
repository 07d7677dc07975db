from django.urls import path

from tenants import views, views_onboarding

app_name = "tenants"

urlpatterns = [
    path("matrix/", views.matrix, name="matrix"),
    path("audit/", views.audit_all, name="audit-all"),
    path("audit.csv", views.audit_all_csv, name="audit-all-csv"),
    path("connect/", views_onboarding.connect, name="connect"),
    path("connect/start/", views_onboarding.connect_start, name="connect-start"),
    path("connect/callback/", views_onboarding.connect_callback, name="connect-callback"),
    path("<uuid:tenant_id>/", views.tenant_detail, name="tenant-detail"),
    path("<uuid:tenant_id>/health/", views_onboarding.health, name="health"),
    path("<uuid:tenant_id>/sync/", views.sync_now, name="sync-now"),
    path("<uuid:tenant_id>/report.json", views.report_json, name="report-json"),
    path("<uuid:tenant_id>/report.csv", views.report_csv_export, name="report-csv"),
    path("<uuid:tenant_id>/audit/", views.audit_list, name="audit"),
    path("<uuid:tenant_id>/audit.csv", views.audit_csv, name="audit-csv"),
    path("<uuid:tenant_id>/revokes/", views.revoke_list, name="revoke-list"),
    path("<uuid:tenant_id>/revoke-unused/", views.revoke_unused, name="revoke-unused"),
    path(
        "<uuid:tenant_id>/revokes/<int:revoke_id>/status/",
        views.revoke_status,
        name="revoke-status",
    ),
    path(
        "<uuid:tenant_id>/revokes/<int:revoke_id>/approve/",
        views.revoke_approve,
        name="revoke-approve",
    ),
    path("<uuid:tenant_id>/revokes/<int:revoke_id>/deny/", views.revoke_deny, name="revoke-deny"),
    path(
        "<uuid:tenant_id>/revokes/<int:revoke_id>/cancel/",
        views.revoke_cancel,
        name="revoke-cancel",
    ),
    path("<uuid:tenant_id>/revokes/<int:revoke_id>/undo/", views.revoke_undo, name="revoke-undo"),
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
    path(
        "<uuid:tenant_id>/applications/<uuid:app_id>/revoke/",
        views.revoke_create,
        name="revoke-create",
    ),
    path(
        "<uuid:tenant_id>/applications/<uuid:app_id>/revoke-unused/",
        views.revoke_unused,
        name="revoke-unused-application",
    ),
]
