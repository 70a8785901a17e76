"""The evidence log on SQLite and PostgreSQL: records, traders, retention, outbox, migrations."""

# Fixtures imported by name are redefined as test arguments: that is how pytest uses them.

from __future__ import annotations

import io
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from cryptography.fernet import Fernet

from services.gateway.evidence import EvidenceLog, build_engine, metadata
from services.gateway.evidence.schema import (
    complaints_table,
    document_blobs_table,
    documents_table,
    reviews_table,
    statements_table,
)
from services.gateway.sealing import SealingError
from shared.errors import ConfigError
from tests.gateway.evidence_fixtures import PG_URL, SEALING_KEYS, T0, make_record

ROOT = Path(__file__).resolve().parents[2]

PRIVATE = {
    "trader_id": "trader-1",
    "name": "Anna Müller Handels GmbH",
    "email": "anna.mueller@example.de",
    "phone": "+49301234567",
    "payment": {"iban": "DE89370400440532013000", "bic": "COBADEFFXXX",
                "account_holder": "Anna Müller"},
}


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


# -- records ---------------------------------------------------------------------------------


def test_save_and_get_round_trip(evidence_log: EvidenceLog) -> None:
    cest = timezone(timedelta(hours=2))
    record = make_record(
        "v1", created_at=T0.astimezone(cest), expires_at=T0 + timedelta(days=30),
        reasons=[{"code": "NAME_MISMATCH", "item": "a", "severity": "warning", "message": "m"}],
        attempts=2,
    )
    evidence_log.save(record, private_submission=PRIVATE)
    got = evidence_log.get("v1")
    assert got is not None
    assert got == replace(record, created_at=T0)  # every field, timestamps back in UTC
    assert got.created_at.tzinfo == UTC
    assert got.expires_at is not None and got.expires_at.tzinfo == UTC
    assert evidence_log.get("nope") is None


def test_save_upserts_and_keeps_creation_and_sealed_submission(evidence_log: EvidenceLog) -> None:
    running = make_record("v1", state="running", verdict=None, items=None, reasons=None,
                          checks=None, settled_at=None, checked_at=None)
    evidence_log.save(running, private_submission=PRIVATE)
    # running: not the trader's current
    assert evidence_log.current("trader-1", tenant="default") is None
    settled = make_record("v1", created_at=T0 + minutes(5), settled_at=T0 + minutes(1))
    evidence_log.save(settled)
    got = evidence_log.get("v1")
    assert got is not None
    assert got.state == "settled" and got.verdict == "verified"
    assert got.created_at == T0  # the first save's
    assert evidence_log.private_submission("v1") == PRIVATE  # not wiped by the second save
    assert evidence_log.current("trader-1", tenant="default") == got


def test_naive_datetimes_and_unknown_values_are_refused(evidence_log: EvidenceLog) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        evidence_log.save(make_record("v1", created_at=datetime(2025, 3, 1, 9, 0)))
    with pytest.raises(ValueError, match="verdict"):
        evidence_log.save(make_record("v1", verdict="maybe"))
    with pytest.raises(ValueError, match="state"):
        evidence_log.save(make_record("v1", state="done"))
    assert evidence_log.get("v1") is None


def test_the_sealed_submission_is_not_readable_in_the_table(evidence_log: EvidenceLog) -> None:
    evidence_log.save(make_record("v1"), private_submission=PRIVATE)
    with evidence_log.engine.connect() as conn:
        raw = conn.execute(sa.text("SELECT * FROM verifications")).mappings().one()
    stored = " ".join(str(v) for v in raw.values())
    assert raw["sealed_submission"]
    for secret in ("DE89370400440532013000", "0532013000", "anna.mueller@example.de",
                   "+49301234567", "1234567"):
        assert secret not in stored
    assert evidence_log.private_submission("v1") == PRIVATE
    other_keys = EvidenceLog(evidence_log.engine.url.render_as_string(hide_password=False),
                             Fernet.generate_key().decode())
    try:
        with pytest.raises(SealingError):
            other_keys.private_submission("v1")
    finally:
        other_keys.close()
    evidence_log.save(make_record("v2"))
    assert evidence_log.private_submission("v2") is None
    assert evidence_log.private_submission("nope") is None


def test_current_is_the_latest_settled_and_a_late_retry_does_not_replace_it(
    evidence_log: EvidenceLog,
) -> None:
    old = make_record("old", verdict="pending", created_at=T0, next_retry_at=T0 + minutes(1))
    new = make_record("new", verdict="rejected", created_at=T0 + minutes(10))
    evidence_log.save(old)
    evidence_log.save(new)
    evidence_log.save(make_record("newest-running", state="running", verdict=None,
                                  created_at=T0 + minutes(20)))
    current = evidence_log.current("trader-1", tenant="default")
    assert current is not None and current.id == "new"
    # the old verification's retry settles after the newer one: the newer stays current
    evidence_log.save(replace(old, verdict="verified", settled_at=T0 + minutes(30)))
    current = evidence_log.current("trader-1", tenant="default")
    assert current is not None and current.id == "new" and current.verdict == "rejected"
    # a re-save of the current one updates the trader's verdict
    evidence_log.save(replace(new, verdict="needs_review"))
    assert evidence_log.traders(verdict="needs_review", tenant="default") == ["trader-1"]
    assert evidence_log.current("somebody-else", tenant="default") is None


def test_history_is_newest_first_with_a_limit(evidence_log: EvidenceLog) -> None:
    for n in range(5):
        evidence_log.save(make_record(f"v{n}", created_at=T0 + minutes(n)))
    evidence_log.save(make_record("x", trader_id="trader-2"))
    history = evidence_log.history
    assert [r.id for r in history("trader-1", tenant="default")] == ["v4", "v3", "v2", "v1", "v0"]
    assert [r.id for r in history("trader-1", limit=2, tenant="default")] == ["v4", "v3"]
    assert evidence_log.history("nobody", tenant="default") == []


def sharing(log: EvidenceLog, account: str, exclude: str) -> list[str]:
    """The other traders using payment account ``account``."""
    return [link.trader_id
            for link in log.linked_traders(exclude, account_fingerprint=account, tenant="default")]


def test_linked_accounts_look_at_current_verifications_only(
    evidence_log: EvidenceLog,
) -> None:
    evidence_log.save(make_record("a1", "A", account_fingerprint="acct-1"))
    evidence_log.save(make_record("b1", "B", account_fingerprint="acct-1"))
    evidence_log.save(make_record("c1", "C", account_fingerprint="acct-2"))
    evidence_log.save(make_record("d1", "D", account_fingerprint="acct-1", state="running",
                                  verdict=None))
    assert sharing(evidence_log, "acct-1", "A") == ["B"]
    assert sharing(evidence_log, "acct-1", "C") == ["A", "B"]
    # B moved to another account: its old verification no longer counts
    evidence_log.save(make_record("b2", "B", account_fingerprint="acct-3",
                                  created_at=T0 + minutes(1)))
    assert sharing(evidence_log, "acct-1", "A") == []
    assert sharing(evidence_log, "acct-9", "A") == []


def test_linked_traders_by_account_vat_number_or_registration(
    evidence_log: EvidenceLog,
) -> None:
    evidence_log.save(make_record("a1", "A", account_fingerprint="acct-1", vat_key="DE1",
                                  registration_key="DE:hrb:1"))
    evidence_log.save(make_record("b1", "B", account_fingerprint="acct-2", vat_key="DE1",
                                  verdict="rejected"))
    evidence_log.save(make_record("c1", "C", registration_key="DE:hrb:1"))
    evidence_log.save(make_record("d1", "D", account_fingerprint="acct-9"))
    links = evidence_log.linked_traders("NEW", account_fingerprint="acct-1", vat_key="DE1",
                                        registration_key="DE:hrb:1", tenant="default")
    assert [(link.trader_id, link.verdict, sorted(link.via)) for link in links] == [
        ("A", "verified", ["account", "registration", "vat"]),
        ("B", "rejected", ["vat"]),
        ("C", "verified", ["registration"]),
    ]
    assert evidence_log.linked_traders("A", vat_key="DE1", tenant="default")[0].trader_id == "B"
    # no key given: nothing to link on
    assert evidence_log.linked_traders("NEW", tenant="default") == []
    assert evidence_log.linked_traders("NEW", vat_key="FR1", tenant="default") == []


def test_corrections_are_requested_claimed_once_and_closed(evidence_log: EvidenceLog) -> None:
    evidence_log.save(make_record("a1", "A", verdict="rejected"))
    evidence_log.save(make_record("b1", "B", verdict="rejected"))
    due = T0 + minutes(60)
    assert evidence_log.request_correction("A", due, tenant="default") == due
    # the first stands
    assert evidence_log.request_correction("A", due + minutes(5), tenant="default") == due
    evidence_log.request_correction("B", due, tenant="default")
    # ended: nothing to suspend
    evidence_log.end_relationship("B", T0 + minutes(1), tenant="default")
    assert evidence_log.claim_due_suspensions(due - minutes(1)) == []
    assert evidence_log.claim_due_suspensions(due) == [("default", "A", "a1", due)]
    assert evidence_log.claim_due_suspensions(due + minutes(1)) == []  # once
    assert evidence_log.clear_correction("A", tenant="default") is True
    assert evidence_log.correction_due("A", tenant="default") is None
    assert evidence_log.clear_correction("A", tenant="default") is False


def test_staff_actions_are_kept_newest_first_and_purged_with_the_trader(
        evidence_log: EvidenceLog) -> None:
    evidence_log.save(make_record("a1", "A"))
    evidence_log.record_action(actor="staff", action="reverify", trader_id="A",
                               verification_id="a1", tenant="default")
    evidence_log.record_action(actor="staff", action="end_relationship", trader_id="A",
                               detail={"ended_at": "2026-11-28T00:00:00+00:00"}, tenant="default")
    evidence_log.record_action(actor="staff", action="reverify", trader_id="B", tenant="default")
    found = evidence_log.actions("A", tenant="default")
    assert [a["action"] for a in found] == ["end_relationship", "reverify"]
    assert found[1]["verification_id"] == "a1" and found[0]["actor"] == "staff"
    assert found[0]["at"].tzinfo is not None
    assert evidence_log.purge_trader("A", tenant="default")["staff_actions"] == 2
    assert evidence_log.actions("A", tenant="default") == []
    assert len(evidence_log.actions("B", tenant="default")) == 1


def test_a_0001_database_upgrades_and_keeps_its_rows(database_url: str) -> None:
    """A deployment made before the identity keys migrates on start-up and keeps its rows."""
    from alembic import command

    log = EvidenceLog(database_url, SEALING_KEYS)
    try:
        with log.engine.begin() as conn:
            command.upgrade(log.alembic_config(conn), "0001")
            conn.execute(sa.text(
                "INSERT INTO verifications (id, trader_id, client_id, fingerprint, state, "
                "submission, created_at, attempts) VALUES ('old', 'T', 'c', 'fp', 'running', "
                "'{}', :at, 0)"), {"at": T0})
        log.migrate()
        record = log.get("old")
        assert record is not None and record.trader_id == "T"
        assert record.vat_key is None and record.registration_key is None
    finally:
        log.close()


def test_due_for_retry(evidence_log: EvidenceLog) -> None:
    now = T0 + minutes(10)
    evidence_log.save(make_record("due-late", "A", verdict="pending", next_retry_at=now))
    evidence_log.save(make_record("due-early", "B", verdict="pending",
                                  next_retry_at=now - minutes(5)))
    evidence_log.save(make_record("later", "C", verdict="pending",
                                  next_retry_at=now + minutes(1)))
    evidence_log.save(make_record("settled", "D", verdict="verified", next_retry_at=None))
    assert [r.id for r in evidence_log.due_for_retry(now)] == ["due-early", "due-late"]
    assert [r.id for r in evidence_log.due_for_retry(now, limit=1)] == ["due-early"]


def test_claim_due_retries_leases_each_once(evidence_log: EvidenceLog) -> None:
    now = T0 + minutes(10)
    for n in range(3):
        evidence_log.save(make_record(f"p{n}", f"T{n}", verdict="pending",
                                      next_retry_at=now - minutes(n)))
    first = evidence_log.claim_due_retries(now, 2, lease_s=60)
    second = evidence_log.claim_due_retries(now, 2, lease_s=60)
    assert sorted(r.id for r in first) == ["p1", "p2"] and [r.id for r in second] == ["p0"]
    assert all(r.next_retry_at == now + timedelta(seconds=60) for r in first + second)
    assert evidence_log.claim_due_retries(now, 5, lease_s=60) == []
    # a lease that ran out (the claimer died) is claimed again
    later = now + timedelta(seconds=61)
    assert len(evidence_log.claim_due_retries(later, 5, lease_s=60)) == 3


# -- traders and retention ---------------------------------------------------------------------


def test_end_relationship_and_ended_before(evidence_log: EvidenceLog) -> None:
    evidence_log.save(make_record("a1", "A"))
    evidence_log.save(make_record("b1", "B"))
    evidence_log.save(make_record("r1", "R", state="running", verdict=None))
    assert evidence_log.end_relationship("nobody", T0, tenant="default") is False
    assert evidence_log.end_relationship("A", T0 + timedelta(days=1), tenant="default") is True
    assert evidence_log.end_relationship("B", T0 + timedelta(days=100), tenant="default") is True
    # R has no settled verification
    assert evidence_log.end_relationship("R", T0 + timedelta(days=2), tenant="default") is True
    assert evidence_log.ended_before(T0 + timedelta(days=50)) == [("default", "A"),
                                                               ("default", "R")]
    assert evidence_log.ended_before(T0) == []
    assert evidence_log.traders(tenant="default") == []  # ended traders are not re-verified
    # R has no settled verification: never checked, so first
    assert evidence_log.traders(include_ended=True, tenant="default") == ["R", "A", "B"]
    # a verification submitted after the end reopens the relationship
    evidence_log.save(make_record("a2", "A", created_at=T0 + timedelta(days=3)))
    assert evidence_log.ended_before(T0 + timedelta(days=50)) == [("default", "R")]
    assert evidence_log.traders(tenant="default") == ["A"]


def _seed_casework(log: EvidenceLog, trader: str) -> None:
    """One row of each casework table (migration 0008) for ``trader`` of tenant default."""
    common = {"tenant_id": "default", "trader_id": trader}
    with log.engine.begin() as conn:
        conn.execute(sa.insert(documents_table).values(
            id="d" + trader, kind="identity_document", content_type="application/pdf",
            size_bytes=3, sha256="0" * 64, storage="database", storage_key="k" + trader,
            uploaded_at=T0, uploaded_by="staff:alice", **common))
        conn.execute(sa.insert(document_blobs_table).values(storage_key="k" + trader,
                                                            content=b"sealed"))
        conn.execute(sa.insert(reviews_table).values(
            id="r" + trader, decision="reject", note="n", reviewer="staff:alice", decided_at=T0,
            **common))
        conn.execute(sa.insert(statements_table).values(
            id="s" + trader, kind="rejection", automated=False, content={"facts": []},
            created_at=T0, **common))
        conn.execute(sa.insert(complaints_table).values(
            id="c" + trader, statement_id="s" + trader, text="I object", received_at=T0,
            **common))


def test_purge_trader_deletes_everything_about_the_trader(evidence_log: EvidenceLog) -> None:
    for n in range(3):
        evidence_log.save(make_record(f"a{n}", "A", created_at=T0 + minutes(n)),
                          private_submission=PRIVATE)
    evidence_log.save(make_record("b1", "B"))
    for vid, trader in (("a1", "A"), ("a2", "A"), ("b1", "B")):
        did = evidence_log.enqueue_webhook(client_id="shop", url="http://127.0.0.1:9/hook",
                                           event="verification.completed", payload={"v": vid},
                                           verification_id=vid, trader_id=trader, tenant="default")
        evidence_log.record_attempt(did, status_code=500, error="HTTP 500", duration_ms=3.0,
                                    delivered=False, next_attempt_at=T0)
    for trader in ("A", "B"):
        _seed_casework(evidence_log, trader)
    evidence_log.end_relationship("A", T0, tenant="default")
    counts = evidence_log.purge_trader("A", tenant="default")
    assert counts == {"webhook_attempts": 2, "webhook_deliveries": 2, "staff_actions": 0,
                      "complaints": 1, "statements": 1, "reviews": 1, "document_blobs": 1,
                      "documents": 1, "traders": 1, "verifications": 3}
    with evidence_log.engine.connect() as conn:  # B's casework stays
        for table in (complaints_table, statements_table, reviews_table, documents_table,
                      document_blobs_table):
            assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 1
    assert evidence_log.history("A", tenant="default") == []
    assert evidence_log.current("A", tenant="default") is None
    assert evidence_log.deliveries("a1") == []
    assert evidence_log.ended_before(T0 + timedelta(days=1)) == []
    assert evidence_log.current("B", tenant="default") is not None
    assert len(evidence_log.deliveries("b1")) == 1
    assert evidence_log.purge_trader("A", tenant="default") == dict.fromkeys(counts, 0)


def test_traders_filters_for_batch_reverification(evidence_log: EvidenceLog) -> None:
    evidence_log.save(make_record("a", "A", verdict="verified", checked_at=T0 - minutes(30)))
    evidence_log.save(make_record("b", "B", verdict="verified", checked_at=T0))
    evidence_log.save(make_record("c", "C", verdict="rejected", checked_at=T0 - minutes(60)))
    evidence_log.save(make_record("d", "D", verdict="pending", checked_at=None))
    evidence_log.save(make_record("e", "E", state="running", verdict=None))
    # least recently checked first
    assert evidence_log.traders(tenant="default") == ["D", "C", "A", "B"]
    assert evidence_log.traders(verdict="verified", tenant="default") == ["A", "B"]
    before = T0 - minutes(10)
    assert evidence_log.traders(checked_before=before, tenant="default") == ["D", "C", "A"]
    assert evidence_log.traders(verdict="verified", checked_before=before,
                                tenant="default") == ["A"]
    assert evidence_log.traders(limit=2, tenant="default") == ["D", "C"]


# -- webhook outbox ------------------------------------------------------------------------------


def enqueue(log: EvidenceLog, vid: str = "v1", trader: str = "trader-1") -> str:
    return log.enqueue_webhook(client_id="shop", url="http://127.0.0.1:9/hook",
                               event="verification.completed",
                               payload={"event": "verification.completed", "id": vid},
                               verification_id=vid, trader_id=trader, tenant="default")


def test_outbox_claim_lease_and_attempts(evidence_log: EvidenceLog) -> None:
    first, second = enqueue(evidence_log), enqueue(evidence_log)
    now = datetime.now(UTC) + timedelta(seconds=1)
    claimed = evidence_log.claim_due_webhooks(now, 1, lease_s=30)
    assert [d.id for d in claimed] == [first]
    assert claimed[0].payload == {"event": "verification.completed", "id": "v1"}
    assert claimed[0].status == "pending" and claimed[0].attempts == []
    assert [d.id for d in evidence_log.claim_due_webhooks(now, 5, lease_s=30)] == [second]
    assert evidence_log.claim_due_webhooks(now, 5, lease_s=30) == []  # both leased
    # a lease that ran out is claimed again
    assert len(evidence_log.claim_due_webhooks(now + timedelta(seconds=31), 5, 30)) == 2

    retry_at = now + timedelta(seconds=10)
    evidence_log.record_attempt(first, status_code=503, error="HTTP 503", duration_ms=12.5,
                                delivered=False, next_attempt_at=retry_at)
    assert evidence_log.claim_due_webhooks(now + timedelta(seconds=5), 5, 30) == []
    again = evidence_log.claim_due_webhooks(retry_at, 5, 30)
    assert [d.id for d in again] == [first]
    assert [a["status_code"] for a in again[0].attempts] == [503]
    evidence_log.record_attempt(first, status_code=None, error="timeout", duration_ms=5000.0,
                                delivered=False, next_attempt_at=None)
    evidence_log.record_attempt(second, status_code=204, error=None, duration_ms=3.0,
                                delivered=True, next_attempt_at=None)
    by_id = {d.id: d for d in evidence_log.deliveries("v1")}
    assert by_id[first].status == "failed" and by_id[first].next_attempt_at is None
    assert [(a["number"], a["status_code"], a["error"]) for a in by_id[first].attempts] == [
        (1, 503, "HTTP 503"), (2, None, "timeout")]
    assert by_id[first].attempts[0]["at"] <= by_id[first].attempts[1]["at"]
    assert by_id[second].status == "delivered" and by_id[second].delivered_at is not None
    assert by_id[second].attempts[0]["duration_ms"] == 3.0
    assert evidence_log.claim_due_webhooks(retry_at + timedelta(hours=1), 5, 30) == []
    # an attempt at a delivery purged meanwhile is ignored
    evidence_log.record_attempt("whd_gone", status_code=200, error=None, duration_ms=1.0,
                                delivered=True, next_attempt_at=None)


# -- migrations and the engine ------------------------------------------------------------------


def head_revision() -> str:
    """The newest revision shipped in the migrations directory."""
    return ScriptDirectory.from_config(EvidenceLog("sqlite://", SEALING_KEYS)
                                       .alembic_config()).get_current_head() or ""


def test_migrate_twice_is_a_no_op_and_matches_the_tables(evidence_log: EvidenceLog) -> None:
    evidence_log.save(make_record("v1"), private_submission=PRIVATE)
    evidence_log.migrate()
    with evidence_log.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [
            (head_revision(),)]
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    assert evidence_log.get("v1") is not None


@pytest.mark.slow
def test_processes_migrating_at_once_do_not_fail(database_url: str) -> None:
    start_at = time.time() + 3  # after every process has imported what it needs
    code = (
        "import sys, time\n"
        "from services.gateway.evidence import EvidenceLog\n"
        "log = EvidenceLog(sys.argv[1], sys.argv[2])\n"
        "time.sleep(max(0.0, float(sys.argv[3]) - time.time()))\n"
        "log.migrate()\n"
        "log.close()\n"
    )
    procs = [
        subprocess.Popen(  # noqa: S603 (our own interpreter and code)
            [sys.executable, "-c", code, database_url, SEALING_KEYS, str(start_at)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=60)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outputs
    log = EvidenceLog(database_url, SEALING_KEYS)
    try:
        with log.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [
                (head_revision(),)]
        log.save(make_record("v1"))
        assert log.current("trader-1", tenant="default") is not None
    finally:
        log.close()


def test_alembic_by_hand_online_and_offline(tmp_path: Path) -> None:
    """env.py also works as operators run it: on its own connection, or printing the SQL."""
    log = EvidenceLog(f"sqlite:///{tmp_path / 'by-hand.sqlite3'}", SEALING_KEYS)
    try:
        command.upgrade(log.alembic_config(), "head")  # no connection handed in
        log.save(make_record("v1"))
        assert log.current("trader-1", tenant="default") is not None
    finally:
        log.close()
    pg = EvidenceLog(PG_URL, SEALING_KEYS)
    try:
        config = pg.alembic_config()
        config.output_buffer = io.StringIO()
        command.upgrade(config, "head", sql=True)
        sql = config.output_buffer.getvalue()
        assert "CREATE TABLE verifications" in sql and "TIMESTAMP WITH TIME ZONE" in sql
    finally:
        pg.close()


def test_sqlite_file_folder_is_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    log = EvidenceLog("sqlite:///var/trace30-evidence.sqlite3", SEALING_KEYS)
    try:
        assert (tmp_path / "var").is_dir()
        log.migrate()
        log.ping()
        assert (tmp_path / "var" / "trace30-evidence.sqlite3").is_file()
    finally:
        log.close()


def test_engine_urls() -> None:
    engine = build_engine(PG_URL.replace("postgresql+psycopg://", "postgresql://"))
    assert engine.url.drivername == "postgresql+psycopg"
    engine.dispose()
    with pytest.raises(ConfigError, match="not supported"):
        build_engine("mysql://root@127.0.0.1/trace30")
    log = EvidenceLog("postgresql+psycopg://u:secret@127.0.0.1:5432/test", SEALING_KEYS)
    assert "secret" not in repr(log)
    log.close()


# -- tenants -------------------------------------------------------------------------------------


def test_two_tenants_with_the_same_trader_id_are_separate_traders(
    evidence_log: EvidenceLog,
) -> None:
    log = evidence_log
    log.save(make_record("a1", "T", tenant_id="shop-a"), private_submission=PRIVATE)
    log.save(make_record("b1", "T", tenant_id="shop-b", verdict="rejected",
                         created_at=T0 + minutes(1)))
    log.save(make_record("a2", "U", tenant_id="shop-a", verdict="needs_review"))
    a, b = log.current("T", tenant="shop-a"), log.current("T", tenant="shop-b")
    assert a is not None and (a.id, a.tenant_id, a.verdict) == ("a1", "shop-a", "verified")
    assert b is not None and (b.id, b.tenant_id, b.verdict) == ("b1", "shop-b", "rejected")
    assert log.current("T", tenant="default") is None and log.current("U", tenant="shop-b") is None
    assert [r.id for r in log.history("T", tenant="shop-b")] == ["b1"]
    assert log.get("b1") == b  # a verification id is global: callers compare its tenant
    # lists, counts and batch selections see their own tenant only
    assert [s.trader_id for s in log.trader_summaries(tenant="shop-a")] == ["T", "U"]
    assert [(s.trader_id, s.verdict) for s in log.trader_summaries(tenant="shop-b")] == [
        ("T", "rejected")]
    assert log.count_traders(tenant="shop-b") == 1
    assert log.count_traders(tenant="shop-a", trader_id="T") == 1
    assert log.verdict_counts(tenant="shop-a") == {"verified": 1, "needs_review": 1,
                                                   "rejected": 0, "pending": 0}
    assert log.traders(tenant="shop-b") == ["T"]
    assert log.traders(tenant="shop-a", verdict="rejected") == []
    # a correction, an action and the end of the relationship of one do not touch the other
    due = T0 + minutes(60)
    log.request_correction("T", due, tenant="shop-b")
    assert log.correction_due("T", tenant="shop-a") is None
    assert log.clear_correction("T", tenant="shop-a") is False
    assert log.correction_due("T", tenant="shop-b") == due
    assert log.claim_due_suspensions(due) == [("shop-b", "T", "b1", due)]
    log.record_action(tenant="shop-a", actor="staff-a", action="reverify", trader_id="T")
    assert log.actions("T", tenant="shop-b") == []
    assert log.end_relationship("T", T0 + minutes(5), actor="staff-b", tenant="shop-b")
    assert log.end_relationship("U", T0, tenant="shop-b") is False  # not shop-b's trader
    assert log.ended_before(T0 + minutes(10)) == [("shop-b", "T")]
    assert log.traders(tenant="shop-a") == ["T", "U"]
    assert [a["actor"] for a in log.actions("T", tenant="shop-b")] == ["staff-b"]
    # the purge of one leaves the other's trader of the same id, with its webhooks
    for vid, tenant in (("a1", "shop-a"), ("b1", "shop-b")):
        log.enqueue_webhook(client_id="c-" + tenant, url="http://127.0.0.1:9/hook",
                            event="verification.completed", payload={"id": vid},
                            verification_id=vid, trader_id="T", tenant=tenant)
    assert log.purge_trader("T", tenant="shop-b") == {
        "webhook_attempts": 0, "webhook_deliveries": 1, "staff_actions": 1, "complaints": 0,
        "statements": 0, "reviews": 0, "document_blobs": 0, "documents": 0, "traders": 1,
        "verifications": 1}
    assert log.history("T", tenant="shop-b") == [] and log.get("b1") is None
    after = log.current("T", tenant="shop-a")
    assert after is not None and after.id == "a1"
    assert [d.tenant_id for d in log.deliveries("a1")] == ["shop-a"]
    assert len(log.actions("T", tenant="shop-a")) == 1
    assert log.private_submission("a1") == PRIVATE


def test_linkage_never_crosses_tenants(evidence_log: EvidenceLog) -> None:
    """A trader that shop-a rejected is evidence for shop-a's staff only: shop-b's new trader
    with the same account, VAT number and registration is not linked to it."""
    evidence_log.save(make_record("r1", "R", tenant_id="shop-a", verdict="rejected",
                                  account_fingerprint="acct-1", vat_key="DE1",
                                  registration_key="DE:hrb:1"))
    keys = {"account_fingerprint": "acct-1", "vat_key": "DE1", "registration_key": "DE:hrb:1"}
    assert evidence_log.linked_traders("NEW", tenant="shop-b", **keys) == []
    links = evidence_log.linked_traders("NEW", tenant="shop-a", **keys)
    assert [(x.trader_id, x.verdict, sorted(x.via)) for x in links] == [
        ("R", "rejected", ["account", "registration", "vat"])]
    # the same trader id in the other tenant is another trader: linked, not excluded
    evidence_log.save(make_record("b1", "R", tenant_id="shop-b", account_fingerprint="acct-1"))
    assert [x.trader_id for x in evidence_log.linked_traders(
        "R", tenant="shop-b", account_fingerprint="acct-1")] == []
    assert [x.trader_id for x in evidence_log.linked_traders(
        "NEW", tenant="shop-b", account_fingerprint="acct-1")] == ["R"]


def test_a_0004_database_upgrades_into_the_default_tenant(database_url: str) -> None:
    """Rows written before tenants (0004) land in ``default``, are found there, and the same
    trader id can then be another tenant's trader."""
    log = EvidenceLog(database_url, SEALING_KEYS)
    try:
        with log.engine.begin() as conn:
            command.upgrade(log.alembic_config(conn), "0004")
            conn.execute(sa.text(
                "INSERT INTO verifications (id, trader_id, client_id, fingerprint, state, "
                "verdict, submission, created_at, checked_at, attempts, vat_key) VALUES "
                "('old', 'T', 'shop', 'fp', 'settled', 'rejected', '{}', :at, :at, 0, 'DE1')"),
                {"at": T0})
            conn.execute(sa.text(
                "INSERT INTO traders (trader_id, current_verification_id, current_verdict, "
                "current_created_at, updated_at, ended_at) VALUES "
                "('T', 'old', 'rejected', :at, :at, :at)"), {"at": T0})
            conn.execute(sa.text(
                "INSERT INTO webhook_deliveries (id, client_id, url, event, payload, "
                "verification_id, trader_id, status, attempt_count, created_at) VALUES "
                "('d1', 'shop', 'http://127.0.0.1:9/hook', 'verification.completed', '{}', "
                "'old', 'T', 'delivered', 1, :at)"), {"at": T0})
            conn.execute(sa.text(
                "INSERT INTO staff_actions (id, at, actor, action, trader_id) VALUES "
                "('s1', :at, 'staff', 'end_relationship', 'T')"), {"at": T0})
        log.migrate()
        with log.engine.connect() as conn:
            for table in ("verifications", "traders", "webhook_deliveries", "staff_actions"):
                query = sa.text(f"SELECT tenant_id FROM {table}")  # noqa: S608 (our tables)
                assert conn.execute(query).all() == [("default",)], table
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        record = log.current("T", tenant="default")
        assert record is not None and record.id == "old" and record.tenant_id == "default"
        assert [a["action"] for a in log.actions("T", tenant="default")] == ["end_relationship"]
        assert [d.tenant_id for d in log.deliveries("old")] == ["default"]
        assert log.ended_before(T0 + minutes(1)) == [("default", "T")]
        assert [x.trader_id for x in log.linked_traders("NEW", tenant="default",
                                                        vat_key="DE1")] == ["T"]
        # the primary key is (tenant, trader id) now
        log.save(make_record("new", "T", tenant_id="shop-b", created_at=T0 + minutes(1)))
        other = log.current("T", tenant="shop-b")
        assert other is not None and other.id == "new"
        assert log.current("T", tenant="default") == record
    finally:
        log.close()
