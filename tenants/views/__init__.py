"""Tenant pages, one module per part of the portal:

- ``dashboard``: the home page and the operators' applications x tenants matrix;
- ``tenant``: a tenant's applications and sync panel, "Sync now", the report exports;
- ``runs``: the sync panel's polled status, the sync history, what one sync changed;
- ``application``: one application in a tenant, its verdicts and feature switches;
- ``justifications``: "Keep, because ..." on its grants, another term, removing one;
- ``revokes``: revoking a grant, the requests' approvals and undo, bulk revokes;
- ``grants``: granting a missing permission (a request on the revoke flow);
- ``audit``: the audit trail and its CSV;
- ``onboarding``: connecting a tenant by admin consent, a tenant's health.

Every view asks ``tenants.access`` who may see and change what: outsiders get 404,
readers get 403 on anything that changes state. Reads answer GET (and HEAD) only; only the
views that change state take a POST, so a reader's POST is refused, with one exception:
readers may *ask* for a revoke or for a missing permission's grant (which waits for an
admin's approval), and cancel their own request. A page that htmx may ask for a part of answers through ``portal.htmx``.
"""
