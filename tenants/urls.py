from django.urls import include, path

from tenants.views import (
    application,
    audit,
    dashboard,
    drafts,
    grants,
    history,
    justifications,
    onboarding,
    revokes,
    runs,
    tenant,
)

app_name = "tenants"

tenant_pages = [
    path("matrix/", dashboard.matrix, name="matrix"),
    path("audit/", audit.audit_all, name="audit-all"),
    path("audit.csv", audit.audit_all_csv, name="audit-all-csv"),
    path("connect/", onboarding.connect, name="connect"),
    path("connect/start/", onboarding.connect_start, name="connect-start"),
    path("connect/callback/", onboarding.connect_callback, name="connect-callback"),
    path("<uuid:tenant_id>/connected/", onboarding.connected, name="connected"),
    path("<uuid:tenant_id>/", tenant.tenant_detail, name="tenant-detail"),
    path("<uuid:tenant_id>/health/", onboarding.health, name="health"),
    path("<uuid:tenant_id>/sync/", tenant.sync_now, name="sync-now"),
    path("<uuid:tenant_id>/report.json", tenant.report_json, name="report-json"),
    path("<uuid:tenant_id>/report.csv", tenant.report_csv_export, name="report-csv"),
    path("<uuid:tenant_id>/audit/", audit.audit_list, name="audit"),
    path("<uuid:tenant_id>/audit.csv", audit.audit_csv, name="audit-csv"),
    path("<uuid:tenant_id>/revokes/", revokes.revoke_list, name="revoke-list"),
    path("<uuid:tenant_id>/revoke-unused/", revokes.revoke_unused, name="revoke-unused"),
    path("<uuid:tenant_id>/revokes/results/", revokes.revoke_results, name="revoke-results"),
    path("<uuid:tenant_id>/revokes/undo-all/", revokes.revoke_undo_all, name="revoke-undo-all"),
    path(
        "<uuid:tenant_id>/revokes/<int:revoke_id>/status/",
        revokes.revoke_status,
        name="revoke-status",
    ),
    path(
        "<uuid:tenant_id>/revokes/<int:revoke_id>/approve/",
        revokes.revoke_approve,
        name="revoke-approve",
    ),
    path("<uuid:tenant_id>/revokes/<int:revoke_id>/deny/", revokes.revoke_deny, name="revoke-deny"),
    path(
        "<uuid:tenant_id>/revokes/<int:revoke_id>/cancel/",
        revokes.revoke_cancel,
        name="revoke-cancel",
    ),
    path("<uuid:tenant_id>/revokes/<int:revoke_id>/undo/", revokes.revoke_undo, name="revoke-undo"),
    path("<uuid:tenant_id>/history/", history.history, name="history"),
    path("<uuid:tenant_id>/runs/", runs.run_list, name="run-list"),
    path("<uuid:tenant_id>/runs/<int:run_id>/", runs.run_detail, name="run-detail"),
    path("<uuid:tenant_id>/runs/<int:run_id>/status/", runs.run_status, name="run-status"),
    path("<uuid:tenant_id>/runs/<int:run_id>/apply/", runs.run_apply, name="run-apply"),
    path("<uuid:tenant_id>/runs/<int:run_id>/discard/", runs.run_discard, name="run-discard"),
    path(
        "<uuid:tenant_id>/applications/<uuid:app_id>/",
        application.application_detail,
        name="application",
    ),
    path(
        "<uuid:tenant_id>/applications/<uuid:app_id>/manifest-draft.yaml",
        drafts.manifest_draft,
        name="application-manifest-draft",
    ),
    path(
        "<uuid:tenant_id>/applications/<uuid:app_id>/features/preview/",
        application.features_preview,
        name="features-preview",
    ),
    path(
        "<uuid:tenant_id>/applications/<uuid:app_id>/features/",
        application.features_save,
        name="features-save",
    ),
    path(
        "<uuid:tenant_id>/applications/<uuid:app_id>/revoke/",
        revokes.revoke_create,
        name="revoke-create",
    ),
    path(
        "<uuid:tenant_id>/applications/<uuid:app_id>/grant/",
        grants.grant_create,
        name="grant-create",
    ),
    path(
        "<uuid:tenant_id>/applications/<uuid:app_id>/justify/",
        justifications.justify,
        name="justify",
    ),
    path(
        "<uuid:tenant_id>/applications/<uuid:app_id>/justify/extend/",
        justifications.justify_extend,
        name="justify-extend",
    ),
    path(
        "<uuid:tenant_id>/applications/<uuid:app_id>/justify/remove/",
        justifications.justify_remove,
        name="justify-remove",
    ),
    path(
        "<uuid:tenant_id>/applications/<uuid:app_id>/revoke-unused/",
        revokes.revoke_unused,
        name="revoke-unused-application",
    ),
]

# Mounted at the root: the portal's home page is the dashboard of the user's tenants.
urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("approvals/", revokes.approval_queue, name="approvals"),
    path("tenants/", include(tenant_pages)),
]
