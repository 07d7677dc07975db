"""Who holds the portal's app roles in a tenant, read again at every sync.

Roles come with the id token at sign-in (portal/auth.py), and a session outlives them: a
reader whose role an Entra admin removed would keep reading until signing in again. So
each sync also reads the role holders as Entra has them: the users and groups assigned
one of the portal's app roles on its own service principal in that tenant
(``appRoleAssignedTo``), each group expanded to its users through nested groups
(``transitiveMembers``). Then every user of that tenant gets exactly those roles.

Two phases, as the sync has: :func:`role_holders_read` (Graph only, nothing written) in
its read phase, :func:`role_holders_apply` in its apply transaction. A read that fails
anywhere, a group's members included, gives None, and None changes nobody's roles: a
failed read is never a removal. A user who signed in after the read began keeps the
roles of that sign-in, which are newer.

Only app roles are read here. The portal roles an Entra directory role gives (a Global
Administrator is an admin: ``User.directory_roles``, from the id token's ``wids``) are
kept apart and left alone: they change at the user's next sign-in. Where both give a
role, the higher counts (``User.portal_roles``).
"""

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from portal.models import User
from tenants.graph import GraphClient, GraphError
from tenants.models import Tenant
from tenants.portal_app import DIRECTORY_READ, READ_NEEDS, portal_app_id

logger = logging.getLogger(__name__)

HOLDER_FIELDS = "appRoleId,principalId,principalType"
MEMBERS_NEEDS = f"GroupMember.Read.All (or {DIRECTORY_READ.value})"
_USER_TYPE = "#microsoft.graph.user"


@dataclass(frozen=True)
class RoleHolders:
    """The portal's app roles in one tenant, by user object id (lower case)."""

    roles: dict[str, frozenset[str]]
    # When the read began: a sign-in after it has newer roles than these.
    read_at: datetime

    def of(self, object_id: str) -> list[str]:
        return sorted(self.roles.get(object_id.lower(), ()))


def role_holders_read(client: GraphClient) -> RoleHolders | None:
    """Everyone holding one of the portal's app roles in the client's tenant, directly or
    through groups; None when any of it cannot be read (then nothing may change)."""
    app_id = portal_app_id()
    if app_id is None:
        return None
    read_at = timezone.now()
    try:
        portal = client.get_json(
            f"/servicePrincipals(appId='{app_id}')?$select=id,appRoles", needs=READ_NEEDS
        )
        # Only roles with a value reach an id token; default access (the all-zero role
        # id) and others without one are no portal role.
        names = {
            str(role.get("id", "")).lower(): str(role["value"])
            for role in portal.get("appRoles") or []
            if role.get("value")
        }
        roles: dict[str, set[str]] = defaultdict(set)
        members: dict[str, list[str]] = {}
        for holder in _pages(
            client, f"/servicePrincipals/{portal['id']}/appRoleAssignedTo?$select={HOLDER_FIELDS}"
        ):
            role = names.get(str(holder.get("appRoleId", "")).lower())
            principal = str(holder.get("principalId", "")).lower()
            if role is None or not principal:
                continue
            if holder.get("principalType") == "User":
                roles[principal].add(role)
            elif holder.get("principalType") == "Group":
                if principal not in members:
                    members[principal] = _group_users(client, principal)
                for user in members[principal]:
                    roles[user].add(role)
    except (GraphError, KeyError, TypeError, AttributeError) as exc:
        logger.warning(
            "Tenant %s: the portal's role holders could not be read, so every user keeps "
            "the roles they have: %s",
            client.tenant_id,
            exc,
        )
        return None
    return RoleHolders({user: frozenset(held) for user, held in roles.items()}, read_at)


def _pages(client: GraphClient, path: str) -> list[dict]:
    return [item for page in client.pages(f"{path}&$top=999", needs=READ_NEEDS) for item in page]


def _group_users(client: GraphClient, group_id: str) -> list[str]:
    """The users in a group, through nested groups (Graph flattens them)."""
    # The plain listing, filtered here: Graph's OData cast (.../microsoft.graph.user)
    # is an advanced query, answered from an index that may lag behind.
    path = f"/groups/{group_id}/transitiveMembers?$select=id&$top=999"
    return [
        str(member["id"]).lower()
        for page in client.pages(path, needs=MEMBERS_NEEDS)
        for member in page
        if member.get("@odata.type") == _USER_TYPE
    ]


def role_holders_apply(*, tenant: Tenant, holders: RoleHolders | None) -> int:
    """Give each user of ``tenant`` the roles ``holders`` lists for them (none: no role);
    returns how many users' roles changed. ``None`` (a failed read) changes nothing."""
    if holders is None:
        return 0
    users = User.objects.filter(entra_tenant_id__iexact=str(tenant.tenant_id)).exclude(
        entra_object_id=""
    )
    changed: list[User] = []
    for user in users.only("pk", "username", "entra_object_id", "entra_roles", "last_login"):
        if user.last_login is not None and user.last_login >= holders.read_at:
            continue  # signed in meanwhile: the id token's roles are newer
        roles = holders.of(user.entra_object_id)
        if sorted(user.entra_roles or []) != roles:
            logger.info(
                "Tenant %s: portal roles of %s are now %s (were %s)",
                tenant.tenant_id,
                user.username,
                roles or "none",
                user.entra_roles or "none",
            )
            user.entra_roles = roles
            changed.append(user)
    User.objects.bulk_update(changed, ["entra_roles"], batch_size=500)
    return len(changed)
