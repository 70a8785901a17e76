"""Staff dashboard sessions, kept server-side so that signing out revokes them (migration 0007).

The signed session cookie carries a random id; only its SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import sqlalchemy as sa

from services.gateway.evidence.db import Database, _utcnow
from services.gateway.evidence.schema import ops_sessions_table


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Sessions(Database):
    """Dashboard sessions: opened at sign-in, checked on each page, revoked at sign-out."""

    def open_session(self, client_id: str | None, lifetime: timedelta, *,
                     staff_id: str | None = None) -> str:
        """Start a dashboard session for an API client (``client_id``) or a named staff
        member (``staff_id``); return its id (for the signed cookie).

        Only the id's SHA-256 is stored. Sessions that expired are deleted on the way.
        """
        session_id = secrets.token_urlsafe(32)
        now = _utcnow()
        s = ops_sessions_table
        with self._write() as conn:
            conn.execute(sa.delete(s).where(s.c.expires_at < now))
            conn.execute(sa.insert(s).values(
                id_sha256=_sha256(session_id), client_id=client_id, staff_id=staff_id,
                created_at=now,
                expires_at=now + lifetime))
        return session_id

    def session_client(self, session_id: str) -> str | None:
        """The client of a live session (known, not expired, not revoked), or None."""
        return self.session_owner(session_id)[0]

    def session_owner(self, session_id: str) -> tuple[str | None, str | None]:
        """``(client_id, staff_id)`` of a live session (known, not expired, not revoked); one
        of them is set; ``(None, None)`` for no live session."""
        s = ops_sessions_table
        query = sa.select(s.c.client_id, s.c.staff_id).where(
            s.c.id_sha256 == _sha256(session_id), s.c.revoked_at.is_(None),
            s.c.expires_at > _utcnow())
        with self._read() as conn:
            row = conn.execute(query).first()
        return (row.client_id, row.staff_id) if row else (None, None)

    def revoke_session(self, session_id: str) -> None:
        """End a session (sign-out): its cookie, and every copy of it, stops working."""
        s = ops_sessions_table
        with self._write() as conn:
            conn.execute(sa.update(s).where(s.c.id_sha256 == _sha256(session_id))
                         .values(revoked_at=_utcnow()))
