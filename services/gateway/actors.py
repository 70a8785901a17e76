"""Who acts: a named staff member signed in on the dashboard, or an API client.

Every recorded action (the staff audit trail, review decisions, documents, statements,
complaint decisions) names its :class:`Actor` by :attr:`Actor.label`: ``staff:<username>`` for
a person, ``client:<id>`` for an API key acting as automation — never a bare id.

Roles, each allowing what the one before allows: ``viewer`` (reads), ``reviewer`` (decides,
uploads and opens documents, requests corrections), ``admin`` (manages staff, disclosures).
An API client holding the ``ops`` scope acts as ``admin``; another client as ``viewer``.

In a view: ``actor = actors.current()`` (the dashboard's signed-in staff member or API key, or
the ``/v1`` API's client), then ``actor.require("reviewer")`` (a 403 problem+json otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import g

from shared.clients import Client
from shared.errors import Forbidden, Unauthorized

ROLES = ("viewer", "reviewer", "admin")
#: The scope that makes an API client an ``admin`` actor.
OPS_SCOPE = "ops"


@dataclass(frozen=True)
class Actor:
    """One person or client acting within one tenant."""

    kind: str  # "staff" | "client"
    name: str  # the staff member's username, or the client id
    tenant: str
    role: str  # one of ROLES
    staff_id: str | None = None  # staff.id for a person
    display_name: str | None = None

    @property
    def label(self) -> str:
        """How the audit trail names the actor: ``staff:<username>`` or ``client:<id>``."""
        return f"{self.kind}:{self.name}"

    @property
    def is_person(self) -> bool:
        return self.kind == "staff"

    def may(self, role: str) -> bool:
        """Whether the actor's role is ``role`` or above."""
        return ROLES.index(self.role) >= ROLES.index(role)

    def require(self, role: str) -> None:
        """Raise a 403 unless the actor :meth:`may` act as ``role``."""
        if not self.may(role):
            raise Forbidden(f"This action needs the role {role}; {self.label} is a {self.role}.")


def of_client(client: Client) -> Actor:
    """The actor an API client is: ``admin`` with the ``ops`` scope, ``viewer`` otherwise."""
    role = "admin" if OPS_SCOPE in client.scopes else "viewer"
    return Actor(kind="client", name=client.id, tenant=client.tenant, role=role)


def current() -> Actor:
    """The actor of this request: ``g.actor`` (set by the dashboard's sign-in check), or the
    ``/v1`` API's authenticated client (``g.client``)."""
    actor = g.get("actor")
    if isinstance(actor, Actor):
        return actor
    client = g.get("client")
    if isinstance(client, Client):
        return of_client(client)
    raise Unauthorized("Sign in first.")
