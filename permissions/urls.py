from django.urls import path

from permissions import views

app_name = "permissions"

urlpatterns = [
    path("applications/", views.application_list, name="application-list"),
    path("applications/upload/", views.manifest_upload_view, name="manifest-upload"),
    path("applications/<uuid:app_id>/", views.application_detail, name="application-detail"),
    path(
        "applications/<uuid:app_id>/manifest.yaml",
        views.application_manifest_export,
        name="application-manifest",
    ),
    path("catalog/", views.catalog, name="catalog"),
    path("catalog/changes/", views.catalog_changes, name="catalog-changes"),
    path("catalog/<int:pk>/", views.permission_detail, name="permission-detail"),
]
