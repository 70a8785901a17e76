"""The evidence log: each verification kept in SQL with what it was based on; the webhook outbox.

DSA Article 30 asks a marketplace to show, for every trader, what it checked and when. This
package keeps that record durably, one concern a module:

- :mod:`~services.gateway.evidence.schema`: the tables (``verifications``, ``traders``,
  ``webhook_deliveries`` and ``webhook_attempts``, ``staff_actions``, ``ops_sessions``);
- :mod:`~services.gateway.evidence.db`: the engine, transactions, leases and migrations;
- :mod:`~services.gateway.evidence.verifications`: saving, settling, reading and leasing
  verifications;
- :mod:`~services.gateway.evidence.traders`: relationships, corrections, staff actions, the
  dashboard's lists and the purge;
- :mod:`~services.gateway.evidence.outbox`: the webhook outbox;
- :mod:`~services.gateway.evidence.sessions`: the dashboard's server-side sessions;
- :mod:`~services.gateway.evidence.staff`: named staff accounts (argon2id passwords, roles);
- :mod:`~services.gateway.evidence.casework`: review decisions, trader states, statements of
  reasons and complaints.
- :mod:`~services.gateway.evidence.disclosures`: Art 30(6) disclosures and legal holds.

:class:`EvidenceLog` is the one front the gateway, the dashboard and the CLI use, and
:class:`Transaction` the writes that stand or fall together.

Every trader belongs to a **tenant** (a marketplace; migration 0005): ``verifications``,
``traders``, ``webhook_deliveries`` and ``staff_actions`` carry ``tenant_id`` (``default`` for
rows older than tenants), a trader is ``(tenant_id, trader_id)``, and every trader-level method
takes the tenant as a keyword-only ``tenant`` without a default, so that no caller forgets it.
Two marketplaces served by one deployment never see each other's traders, and linkage (a shared
payment account, VAT number or registration) never crosses from one to the other. Only a
verification id is global: :meth:`EvidenceLog.get` finds it in any tenant, and the caller
compares ``record.tenant_id`` with its own.
"""

from __future__ import annotations

import sqlalchemy as sa

from services.gateway.evidence.casework import Casework, CaseworkWrites
from services.gateway.evidence.db import (
    CONNECT_TIMEOUT_S,
    MIGRATION_LOCK_KEY,
    MIGRATIONS_DIR,
    Database,
    build_engine,
)
from services.gateway.evidence.disclosures import Disclosures
from services.gateway.evidence.documents import DocumentRecord, Documents
from services.gateway.evidence.outbox import Outbox, OutboxWrites, WebhookDelivery
from services.gateway.evidence.schema import (
    DELIVERY_STATUSES,
    STATES,
    UtcDateTime,
    metadata,
    ops_sessions_table,
    staff_actions_table,
    traders_table,
    verifications_table,
    webhook_attempts_table,
    webhook_deliveries_table,
)
from services.gateway.evidence.sessions import Sessions
from services.gateway.evidence.staff import Staff, StaffError, StaffMember
from services.gateway.evidence.traders import (
    EndBeforeFirstVerification,
    Traders,
    TraderSummary,
    TraderWrites,
)
from services.gateway.evidence.verifications import (
    SettleInTransaction,
    VerificationRecord,
    Verifications,
)

__all__ = [
    "CONNECT_TIMEOUT_S", "DELIVERY_STATUSES", "MIGRATIONS_DIR", "MIGRATION_LOCK_KEY", "STATES",
    "Database", "DocumentRecord", "EndBeforeFirstVerification", "EvidenceLog", "StaffError",
    "StaffMember", "TraderSummary",
    "Transaction", "UtcDateTime", "VerificationRecord", "WebhookDelivery", "build_engine",
    "metadata", "ops_sessions_table", "staff_actions_table", "traders_table",
    "verifications_table", "webhook_attempts_table", "webhook_deliveries_table",
]


class Transaction(SettleInTransaction, TraderWrites, OutboxWrites, CaseworkWrites):
    """Writes that stand or fall together, on one connection in one transaction.

    Settling a verification, the trader's correction it opens or closes, and the webhooks that
    report it are written by one :class:`Transaction` (``with log.transaction() as tx``): a crash
    or a database fault leaves either all of them or none, never a verdict without its webhook.
    """

    def __init__(self, log: EvidenceLog, conn: sa.Connection) -> None:
        self.log = log
        self.conn = conn


class EvidenceLog(Verifications, Traders, Sessions, Staff, Outbox, Documents, Casework,
                  Disclosures):
    """The evidence log and webhook outbox on one database; safe to share between threads."""

    transaction_class = Transaction
