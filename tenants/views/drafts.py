"""A draft manifest of an application in a tenant, as a YAML download for its vendor."""

from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.utils.text import slugify
from django.views.decorators.http import require_safe

from portal.http import AuthenticatedHttpRequest
from tenants import exports
from tenants.access import service_principal_for
from tenants.drafts import application_manifest_draft


@login_required
@require_safe
def manifest_draft(
    request: AuthenticatedHttpRequest, tenant_id: UUID, app_id: UUID
) -> HttpResponse:
    """Anyone who sees the application in the tenant may draft: the draft tells them
    nothing the application's page does not."""
    sp, _ = service_principal_for(request.user, tenant_id, app_id)
    draft = application_manifest_draft(tenant=sp.tenant, service_principal=sp)
    # The display name is Graph's: slugify keeps only ASCII letters, digits and hyphens.
    name = slugify(sp.display_name)[:60].strip("-") or str(sp.app_id)
    return exports.attachment(
        draft.text,
        content_type="application/yaml; charset=utf-8",
        filename=f"{name}-manifest-draft.yaml",
    )
