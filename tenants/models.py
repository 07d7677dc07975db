# Tenants, grants, sync runs and revoke requests arrive with the consent-sync issue.
