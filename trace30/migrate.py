"""``trace30 migrate``: the evidence log's migrations as a release step.

Outside sandbox the gateway and the batch workers no longer migrate when they start (each of
their processes would race to do it, and a release whose migration fails would be half
rolled out): they check the schema and refuse to start on one older than the code
(:meth:`services.gateway.evidence.EvidenceLog.prepare_schema`). This command is what brings it
up to date, once per release, before the new processes start: the compose service ``migrate``,
the Kubernetes Job ``trace30-migrate``, or an operator's shell. It is safe to run twice, or from
two places at once (:meth:`~services.gateway.evidence.EvidenceLog.migrate` holds an advisory
lock on PostgreSQL).

``--check`` migrates nothing: it exits 1 while the schema is behind the code (for an init
container or a deploy script that waits for the release step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.gateway.evidence import EvidenceLog
from services.gateway.evidence.db import SchemaState
from services.gateway.sealing import check_keys


@dataclass(frozen=True)
class Outcome:
    """The schema before and after ``trace30 migrate`` (the same twice for ``--check``)."""

    before: SchemaState
    after: SchemaState

    def summary(self) -> str:
        """One line for the operator's terminal or the Job's log."""
        before, after = self.before.current or "none", self.after.current or "none"
        if self.before.state == "ahead":
            return (f"The evidence log's schema is at {before}, newer than this release's "
                    f"{self.after.head}: nothing to do (a newer release migrated it).")
        if before == after:
            return f"The evidence log's schema is current: revision {after}."
        return f"Migrated the evidence log's schema from revision {before} to {after}."


def _open(settings: dict[str, Any]) -> EvidenceLog:
    keys = check_keys(settings["EVIDENCE_SEALING_KEYS"], sandbox=settings["SANDBOX"])
    return EvidenceLog(settings["DATABASE_URL"], keys)


def migrate(settings: dict[str, Any]) -> Outcome:
    """Upgrade the evidence log at ``TRACE30_DATABASE_URL`` to the code's newest revision.

    A schema newer than the code (a release rolled back after its migration) is left alone:
    Alembic cannot upgrade from a revision it does not know.
    """
    evidence = _open(settings)
    try:
        before = evidence.schema_state()
        if before.state == "ahead":
            return Outcome(before, before)
        evidence.migrate()
        return Outcome(before, evidence.schema_state())
    finally:
        evidence.close()


def check(settings: dict[str, Any]) -> SchemaState:
    """Where the schema stands against the code; changes nothing."""
    evidence = _open(settings)
    try:
        return evidence.schema_state()
    finally:
        evidence.close()
