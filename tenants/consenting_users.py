"""The names of the users behind user consents.

Graph's delegated grants of consent type ``Principal`` name their user by object id only,
which tells an admin nothing. The sync looks each such user up by id
(``POST /directoryObjects/getByIds``, up to 1000 ids a request, ``Directory.Read.All``):
a handful of requests even for thousands of consenting users, where one read per user
would outnumber the rest of a large tenant's sync. Once, when the user is first seen
consenting: names rarely change. A user deleted since is simply not returned and stays
shown by id; a read that fails is noted on the run and never fails it.

Two phases, as the sync has: :func:`consenting_users_read` (Graph only) and
:func:`consenting_users_apply` (in the apply transaction).
"""

import logging
from dataclasses import dataclass
from uuid import UUID

from tenants.graph import GraphClient, GraphError, graph_json
from tenants.models import ConsentingUser, Tenant
from tenants.portal_app import DIRECTORY_READ
from tenants.snapshot import Snapshot

logger = logging.getLogger(__name__)

NEEDS = DIRECTORY_READ.value
# getByIds takes at most this many ids a request.
IDS_PER_REQUEST = 1000
_NAME_LENGTH = 256


@dataclass(frozen=True)
class UserName:
    display_name: str
    user_principal_name: str


def consenting_users_read(
    client: GraphClient, snapshot: Snapshot, *, known: set[str]
) -> dict[str, UserName] | None:
    """The names of the consenting users in ``snapshot`` that are not ``known`` yet (object
    ids, lower case), by object id; None when Graph would not say (nothing changes)."""
    wanted = sorted(
        {
            record.principal_id
            for record in snapshot.grants
            if record.principal_id and record.principal_id not in known
        }
    )
    if not wanted:
        return {}
    names: dict[str, UserName] = {}
    try:
        for start in range(0, len(wanted), IDS_PER_REQUEST):
            chunk = wanted[start : start + IDS_PER_REQUEST]
            asked = set(chunk)
            response = client.request(
                "POST",
                "/directoryObjects/getByIds",
                json={"ids": chunk, "types": ["user"]},
                needs=NEEDS,
            )
            for found in graph_json(response).get("value") or []:
                user_id = str(found.get("id", "")).lower() if isinstance(found, dict) else ""
                if user_id in asked:  # only what was asked for: the answer is hostile too
                    names[user_id] = UserName(
                        display_name=_text(found.get("displayName")),
                        user_principal_name=_text(found.get("userPrincipalName")),
                    )
    except (GraphError, AttributeError) as exc:
        logger.warning("Tenant %s: consenting users' names not read: %s", client.tenant_id, exc)
        snapshot.note(f"The names of {len(wanted)} users who consented could not be read: {exc}")
        return None
    return names


def _text(value: object) -> str:
    return str(value)[:_NAME_LENGTH] if isinstance(value, str) else ""


def consenting_users_known(tenant: Tenant) -> set[str]:
    """The object ids (lower case) of the tenant's consenting users already named."""
    return {
        str(object_id) for object_id in tenant.consenting_users.values_list("object_id", flat=True)
    }


def consenting_users_apply(*, tenant: Tenant, names: dict[str, UserName] | None) -> int:
    """Store the names read; returns how many users were added."""
    if not names:
        return 0
    created = ConsentingUser.objects.bulk_create(
        [
            ConsentingUser(
                tenant=tenant,
                object_id=UUID(user_id),
                display_name=name.display_name,
                user_principal_name=name.user_principal_name,
            )
            for user_id, name in names.items()
        ],
        ignore_conflicts=True,  # read meanwhile by an earlier, slower run
        batch_size=500,
    )
    return len(created)
