"""The webhook outbox: a delivery is written in the same database, and the same transaction, as
the verification it reports; it is leased by one sender at a time
(:meth:`Outbox.claim_due_webhooks`), and every attempt is recorded."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from services.gateway.evidence.db import Claim, Database, _utcnow, log
from services.gateway.evidence.schema import webhook_attempts_table, webhook_deliveries_table
from services.gateway.evidence.verifications import Backlog


@dataclass
class WebhookDelivery:
    """One webhook to send, with every attempt made so far (oldest first).

    An attempt is ``{"number", "at", "status_code", "error", "duration_ms"}``.
    """

    id: str
    client_id: str
    url: str
    event: str
    payload: dict[str, Any]
    verification_id: str
    trader_id: str
    status: str  # pending | delivered | failed
    attempts: list[dict[str, Any]] = field(default_factory=list)
    created_at: datetime | None = None
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    tenant_id: str = "default"


def _due_webhooks() -> Claim:
    """Pending deliveries due at ``now`` that no sender holds a lease on."""
    d = webhook_deliveries_table
    now = sa.bindparam("now", type_=d.c.next_attempt_at.type)
    due = sa.and_(d.c.status == "pending", d.c.next_attempt_at <= now,
                  sa.or_(d.c.lease_until.is_(None), d.c.lease_until < now))
    return Claim(d, due, d.c.next_attempt_at, "lease_until")


_DUE_WEBHOOKS = _due_webhooks()


class OutboxWrites:
    """The part of a :class:`~services.gateway.evidence.Transaction` that enqueues webhooks."""

    conn: sa.Connection

    def enqueue_webhook(self, *, client_id: str, url: str, event: str, payload: dict[str, Any],
                        verification_id: str, trader_id: str, tenant: str) -> str:
        """Put a webhook in the outbox; the sender delivers it once this transaction commits.
        Returns the delivery id."""
        delivery_id = "whd_" + uuid.uuid4().hex
        now = _utcnow()
        self.conn.execute(sa.insert(webhook_deliveries_table).values(
            id=delivery_id, client_id=client_id, url=url, event=event, payload=payload,
            verification_id=verification_id, trader_id=trader_id, tenant_id=tenant,
            status="pending",
            attempt_count=0, created_at=now, next_attempt_at=now))
        return delivery_id


class Outbox(Database):
    """The webhook outbox."""

    def outbox_backlog(self) -> Backlog:
        """The webhooks still to deliver (one scan of the ``(status, next_attempt_at)``
        index)."""
        d = webhook_deliveries_table
        query = sa.select(sa.func.count(), sa.func.min(d.c.next_attempt_at)).where(
            d.c.status == "pending")
        with self._read() as conn:
            count, first = conn.execute(query).one()
        return Backlog(int(count), first)

    def enqueue_webhook(self, *, client_id: str, url: str, event: str, payload: dict[str, Any],
                        verification_id: str, trader_id: str, tenant: str) -> str:
        """Store a webhook to send as soon as a sender is free; returns the delivery id."""
        with self.transaction() as tx:
            return tx.enqueue_webhook(client_id=client_id, url=url, event=event, payload=payload,
                                      verification_id=verification_id, trader_id=trader_id,
                                      tenant=tenant)

    def claim_due_webhooks(
        self, now: datetime, limit: int, lease_s: float
    ) -> list[WebhookDelivery]:
        """Lease up to ``limit`` pending deliveries that are due, oldest due first.

        A leased delivery is not handed to anyone else until ``now + lease_s`` or until
        :meth:`record_attempt` settles it, so two senders never send the same one at once.
        """
        claimed = self._claim(_DUE_WEBHOOKS, {"now": now}, now + timedelta(seconds=lease_s),
                              limit)
        if not claimed:
            return []
        ids = webhook_deliveries_table.c.id
        with self._read() as conn:
            deliveries = {x.id: x for x in self._load_deliveries(conn, ids.in_(claimed))}
        return [deliveries[i] for i in claimed if i in deliveries]

    def record_attempt(
        self,
        delivery_id: str,
        *,
        status_code: int | None,
        error: str | None,
        duration_ms: float,
        delivered: bool,
        next_attempt_at: datetime | None,
        at: datetime | None = None,
    ) -> None:
        """Record one attempt and settle the delivery: delivered, pending again, or failed.

        Not delivered with ``next_attempt_at`` None means the sender gave up (``failed``).
        ``at`` is when the attempt started (default: now). The lease is released. A delivery
        purged meanwhile is ignored.
        """
        d, a = webhook_deliveries_table, webhook_attempts_table
        now = _utcnow()
        if delivered:
            values: dict[str, Any] = {"status": "delivered", "delivered_at": now,
                                      "next_attempt_at": None}
        elif next_attempt_at is not None:
            values = {"status": "pending", "next_attempt_at": next_attempt_at}
        else:
            values = {"status": "failed", "next_attempt_at": None}
        with self._write() as conn:
            number = conn.execute(
                sa.update(d)
                .where(d.c.id == delivery_id)
                .values(attempt_count=d.c.attempt_count + 1, lease_until=None, **values)
                .returning(d.c.attempt_count)
            ).scalar()
            if number is None:
                log.warning("attempt of an unknown delivery", extra={"delivery_id": delivery_id})
                return
            conn.execute(
                sa.insert(a).values(
                    delivery_id=delivery_id,
                    number=number,
                    at=at or now,
                    status_code=status_code,
                    error=error,
                    duration_ms=duration_ms,
                )
            )

    def deliveries(self, verification_id: str) -> list[WebhookDelivery]:
        """The webhooks of a verification, oldest first, each with its attempts."""
        d = webhook_deliveries_table
        with self._read() as conn:
            return self._load_deliveries(conn, d.c.verification_id == verification_id)

    def _load_deliveries(self, conn: sa.Connection, where: Any) -> list[WebhookDelivery]:
        d, a = webhook_deliveries_table, webhook_attempts_table
        rows = conn.execute(sa.select(d).where(where).order_by(d.c.created_at, d.c.id)).mappings()
        deliveries = {
            r["id"]: WebhookDelivery(
                id=r["id"],
                client_id=r["client_id"],
                url=r["url"],
                event=r["event"],
                payload=r["payload"],
                verification_id=r["verification_id"],
                trader_id=r["trader_id"],
                status=r["status"],
                created_at=r["created_at"],
                next_attempt_at=r["next_attempt_at"],
                delivered_at=r["delivered_at"],
                tenant_id=r["tenant_id"],
            )
            for r in rows
        }
        if deliveries:
            attempts = conn.execute(
                sa.select(a)
                .where(a.c.delivery_id.in_(list(deliveries)))
                .order_by(a.c.delivery_id, a.c.number)
            ).mappings()
            for r in attempts:
                deliveries[r["delivery_id"]].attempts.append({
                    "number": r["number"],
                    "at": r["at"],
                    "status_code": r["status_code"],
                    "error": r["error"],
                    "duration_ms": r["duration_ms"],
                })
        return list(deliveries.values())
