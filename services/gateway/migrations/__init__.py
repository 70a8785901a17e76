"""Alembic migrations of the evidence log (run by ``EvidenceLog.migrate``; see ``env.py``)."""
