"""The tamper-evident evidence log (issue 13 point 4): the hash chain, on SQLite and PostgreSQL.

Every fact written through the log appends a chain entry in the same transaction; tampering
with plain SQL (an UPDATE, a DELETE, a swap of two rows or of two entries, an INSERT) is found
by :func:`chain.verify` and by ``trace30 audit verify``, which names the first problem.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.gateway.evidence import EvidenceLog, chain, verifications_table
from services.gateway.evidence.schema import (
    evidence_chain_inbox_table,
    evidence_chain_table,
    staff_actions_table,
)
from tests.gateway.evidence_fixtures import SEALING_KEYS, T0, make_record, pg_schema, schema_url
from tests.multiprocess import together
from trace30.audit import audit
from trace30.keys import trader_hash


def _verify(log: EvidenceLog, public: Any = None) -> chain.Report:
    with log.engine.connect() as conn:
        return chain.verify(conn, public)


def _entries(log: EvidenceLog) -> list[dict[str, Any]]:
    """The chain, once what waits in the inbox is sequenced (PostgreSQL)."""
    log.sequence_chain()
    with log.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(evidence_chain_table)
                                              .order_by(evidence_chain_table.c.seq)).mappings()]


def _fill(log: EvidenceLog) -> None:
    """Two traders' verifications (one saved running, then settled) and staff actions."""
    log.save(make_record("v-1", "trader-1", state="running", verdict=None, settled_at=None))
    log.save(make_record("v-1", "trader-1"))
    log.save(make_record("v-2", "trader-2", verdict="rejected"))
    log.record_action(tenant="default", actor="staff:ann", action="reverify",
                      trader_id="trader-1", verification_id="v-1")
    log.record_action(tenant="default", actor="staff:bob", action="end_relationship",
                      trader_id="trader-2")
    log.sequence_chain()  # PostgreSQL: chained now, not when the sequencer thread runs


def _sql(log: EvidenceLog, statement: str, **params: Any) -> None:
    """Plain SQL, outside the log (as someone with database access would tamper): another
    program's connection, which has not turned the chain on."""
    engine = sa.create_engine(log.engine.url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(statement), params)
    finally:
        engine.dispose()


def test_an_intact_log_verifies_and_each_write_appends_an_entry(evidence_log: EvidenceLog):
    _fill(evidence_log)
    entries = _entries(evidence_log)
    # v-1 twice (running, then settled), v-2 once, two staff actions
    assert [(e["table_name"], e["row_key"]) for e in entries] == [
        ("verifications", "v-1"), ("verifications", "v-1"), ("verifications", "v-2"),
        ("staff_actions", entries[3]["row_key"]), ("staff_actions", entries[4]["row_key"])]
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0]["prev_hash"] == chain.GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(entries))
    report = _verify(evidence_log)
    assert report.intact, chain.problems_text(report.problems)
    assert (report.entries, report.rows, report.head_seq) == (5, 4, 5)
    assert report.head_hash == entries[-1]["hash"]


def test_a_bookkeeping_update_appends_nothing(evidence_log: EvidenceLog):
    _fill(evidence_log)
    before = len(_entries(evidence_log))
    with evidence_log._write() as conn:  # the retry schedule only: not a fact
        conn.execute(sa.update(verifications_table).where(verifications_table.c.id == "v-1")
                     .values(next_retry_at=T0, attempts=3))
    assert len(_entries(evidence_log)) == before
    assert _verify(evidence_log).intact


def test_a_plain_sql_update_of_a_verdict_is_named(evidence_log: EvidenceLog):
    _fill(evidence_log)
    _sql(evidence_log, "UPDATE verifications SET verdict = 'verified' WHERE id = 'v-2'")
    report = _verify(evidence_log)
    first = report.problems[0]
    assert (first.what, first.table, first.key, first.seq) == ("edited", "verifications",
                                                               "v-2", 3)
    assert len(report.problems) == 1


def test_a_plain_sql_delete_of_a_staff_action_is_named(evidence_log: EvidenceLog):
    _fill(evidence_log)
    action = _entries(evidence_log)[4]
    _sql(evidence_log, "DELETE FROM staff_actions WHERE id = :id", id=action["row_key"])
    first = _verify(evidence_log).problems[0]
    assert (first.what, first.table, first.key, first.seq) == (
        "deleted", "staff_actions", action["row_key"], 5)


def test_a_swap_of_two_rows_contents_is_named(evidence_log: EvidenceLog):
    _fill(evidence_log)
    # the verdicts of v-1 and v-2 exchanged
    _sql(evidence_log, "UPDATE verifications SET verdict = CASE id WHEN 'v-1' THEN 'rejected' "
                       "ELSE 'verified' END WHERE id IN ('v-1', 'v-2')")
    problems = _verify(evidence_log).problems
    assert [(p.what, p.key, p.seq) for p in problems] == [("edited", "v-1", 2),
                                                          ("edited", "v-2", 3)]


def test_a_swap_of_two_chain_entries_is_named(evidence_log: EvidenceLog):
    _fill(evidence_log)
    # entries 2 and 3 exchange places: their seq swapped (through a free number)
    _sql(evidence_log, "UPDATE evidence_chain SET seq = 100 WHERE seq = 2")
    _sql(evidence_log, "UPDATE evidence_chain SET seq = 2 WHERE seq = 3")
    _sql(evidence_log, "UPDATE evidence_chain SET seq = 3 WHERE seq = 100")
    first = _verify(evidence_log).problems[0]
    assert (first.what, first.seq) == ("removed or reordered", 2)


def test_a_rewritten_entry_and_a_removed_entry_are_named(evidence_log: EvidenceLog):
    _fill(evidence_log)
    _sql(evidence_log, "UPDATE evidence_chain SET row_hash = :h WHERE seq = 4", h="0" * 64)
    first = _verify(evidence_log).problems[0]
    assert (first.what, first.seq) == ("edited", 4)
    _sql(evidence_log, "DELETE FROM evidence_chain WHERE seq = 2")
    first = _verify(evidence_log).problems[0]
    assert (first.what, first.seq, first.detail) == ("removed or reordered", 3,
                                                     "entry 2 is missing")


def test_a_row_inserted_with_plain_sql_is_named(evidence_log: EvidenceLog):
    _fill(evidence_log)
    _sql(evidence_log, "INSERT INTO staff_actions (id, at, actor, action, trader_id, tenant_id) "
                       "VALUES ('forged', :at, 'staff:eve', 'reverify', 'trader-1', 'default')",
         at=T0)
    problems = _verify(evidence_log).problems
    assert [(p.what, p.table, p.key, p.seq) for p in problems] == [
        ("inserted outside the log", "staff_actions", "forged", None)]


def test_a_rolled_back_write_appends_nothing(evidence_log: EvidenceLog):
    _fill(evidence_log)
    with pytest.raises(RuntimeError), evidence_log.transaction() as tx:
        tx.conn.execute(sa.update(verifications_table).where(
            verifications_table.c.id == "v-1").values(verdict="rejected"))
        raise RuntimeError
    assert len(_entries(evidence_log)) == 5
    assert _verify(evidence_log).intact


def _writer(log: EvidenceLog, prefix: str, count: int) -> None:
    for i in range(count):
        log.save(make_record(f"{prefix}-{i}", f"trader-{prefix}"))
        log.record_action(tenant="default", actor="staff:x", action="reverify",
                          trader_id=f"trader-{prefix}", verification_id=f"{prefix}-{i}")


def test_concurrent_threads_form_one_unbroken_chain(evidence_log: EvidenceLog):
    threads = [threading.Thread(target=_writer, args=(evidence_log, f"t{n}", 8))
               for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    entries = _entries(evidence_log)
    assert [e["seq"] for e in entries] == list(range(1, 4 * 8 * 2 + 1))
    report = _verify(evidence_log)
    assert report.intact, chain.problems_text(report.problems)


def _process_writer(barrier: Any, url: str, prefix: str) -> int:
    log = EvidenceLog(url, SEALING_KEYS)
    try:
        barrier.wait()
        _writer(log, prefix, 5)
    finally:
        log.close()
    return 0


@pytest.mark.slow
def test_concurrent_processes_form_one_unbroken_chain(evidence_log: EvidenceLog,
                                                      database_url: str):
    together(_process_writer, [(database_url, "p1"), (database_url, "p2"),
                               (database_url, "p3")])
    assert [e["seq"] for e in _entries(evidence_log)] == list(range(1, 3 * 5 * 2 + 1))
    assert _verify(evidence_log).intact


def test_a_purge_leaves_a_signed_tombstone_and_a_verifiable_chain(evidence_log: EvidenceLog):
    _fill(evidence_log)
    key = Ed25519PrivateKey.generate()
    counts = evidence_log.purge_trader("trader-1", tenant="default", signer=key)
    assert counts["verifications"] == 1 and counts["staff_actions"] == 1
    stone = _entries(evidence_log)[-1]
    assert stone["kind"] == "tombstone" and stone["row_key"] == trader_hash("trader-1",
                                                                             "default")
    removed = {(t, k) for t, k, _ in stone["detail"]["removed"]}
    assert ("verifications", "v-1") in removed and len(removed) == 2
    assert "trader-1" not in json.dumps(stone["detail"])  # ids and hashes only
    assert chain.verify_tombstone(stone["detail"], key.public_key())
    assert not chain.verify_tombstone(stone["detail"], Ed25519PrivateKey.generate().public_key())
    report = _verify(evidence_log, key.public_key())
    assert report.intact, chain.problems_text(report.problems)
    # a forged tombstone (its list changed, hash recomputed or not) is found
    forged = dict(stone["detail"], removed=stone["detail"]["removed"][:1])
    with evidence_log.engine.begin() as conn:
        conn.execute(sa.update(evidence_chain_table).where(
            evidence_chain_table.c.seq == stone["seq"]).values(detail=forged))
    assert _verify(evidence_log, key.public_key()).problems[0].seq == stone["seq"]


def _latest_row_hashes(log: EvidenceLog) -> dict[tuple[str, str], str | None]:
    """Each chained row's latest ``row_hash``, by ``(table, id)``."""
    return {(e["table_name"], e["row_key"]): e["row_hash"] for e in _entries(log)
            if e["kind"] == "row"}


def test_a_batch_purge_leaves_a_signed_tombstone_per_trader_with_the_chains_hashes(
        evidence_log: EvidenceLog):
    """The retention purge's batches: every trader its own signed tombstone, listing each fact
    row removed with the hash its latest chain entry holds (on PostgreSQL the purge hashes the
    rows itself, inline: the same hash as the triggers' function)."""
    _fill(evidence_log)
    evidence_log.save(make_record("v-3", "trader-3"))  # another trader's: stays
    chained = _latest_row_hashes(evidence_log)
    key = Ed25519PrivateKey.generate()
    outcome = evidence_log.purge_traders([("default", "trader-1"), ("default", "trader-2")],
                                         signer=key)
    assert outcome.counts[("default", "trader-1")]["verifications"] == 1
    stones = [e for e in _entries(evidence_log) if e["kind"] == "tombstone"]
    assert sorted(s["row_key"] for s in stones) == sorted(
        trader_hash(t, "default") for t in ("trader-1", "trader-2"))
    assert all(chain.verify_tombstone(s["detail"], key.public_key()) for s in stones)
    removed = {(t, k): h for s in stones for t, k, h in s["detail"]["removed"]}
    assert removed == {row: h for row, h in chained.items() if row != ("verifications", "v-3")}
    assert {k for s in stones for _, k, _ in s["detail"]["removed"]
            if s["row_key"] == trader_hash("trader-2", "default")} >= {"v-2"}
    report = _verify(evidence_log, key.public_key())
    assert report.intact, chain.problems_text(report.problems)
    assert report.rows == 1  # v-3


def test_a_dry_run_purge_appends_nothing(evidence_log: EvidenceLog):
    _fill(evidence_log)
    evidence_log.purge_trader("trader-1", tenant="default", dry_run=True)
    assert len(_entries(evidence_log)) == 5


def test_the_chain_off_appends_nothing(database_url: str):
    log = EvidenceLog(database_url, SEALING_KEYS, chain=False)
    log.migrate()
    try:
        log.save(make_record("v-1"))
        assert _entries(log) == []
        assert _verify(log).problems[0].what == "inserted outside the log"
    finally:
        log.close()


def test_the_cli_verifies_names_the_first_problem_and_signs_the_head(
        evidence_log: EvidenceLog, database_url: str, monkeypatch: pytest.MonkeyPatch):
    _fill(evidence_log)
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes_raw()
    monkeypatch.setenv("TRACE30_DATABASE_URL", database_url)
    monkeypatch.setenv("TRACE30_DISCLOSURE_SIGNING_KEY", base64.b64encode(raw).decode())
    runner = CliRunner()
    result = runner.invoke(audit, ["verify"])
    assert result.exit_code == 0, result.output
    assert "intact: 5 entries, 4 fact rows; head 5" in result.output
    result = runner.invoke(audit, ["head"])
    assert result.exit_code == 0, result.output
    head = json.loads(result.output)
    assert head["seq"] == 5 and head["hash"] == _entries(evidence_log)[-1]["hash"]
    assert chain.verify_head(head, key.public_key())
    assert not chain.verify_head(dict(head, seq=4), key.public_key())
    _sql(evidence_log, "UPDATE verifications SET verdict = 'verified' WHERE id = 'v-2'")
    result = runner.invoke(audit, ["verify", "--format", "json"])
    assert result.exit_code == 1
    found = json.loads(result.output)
    assert found["intact"] is False
    assert found["first_problem"] == {"problem": "edited", "table": "verifications",
                                      "key": "v-2", "seq": 3,
                                      "detail": "the row differs from its latest chain entry"}


def test_the_retention_purge_signs_its_tombstone_with_the_disclosure_key(tmp_path):
    from datetime import UTC, datetime, timedelta

    from services.gateway import disclosures
    from shared.config import load
    from trace30.retention import purge

    url = f"sqlite:///{tmp_path / 'evidence.sqlite3'}"
    log = EvidenceLog(url, SEALING_KEYS)
    log.migrate()
    now = datetime.now(UTC)
    try:
        _fill(log)
        log.end_relationship("trader-1", now - timedelta(days=400), tenant="default")
        settings = load({}, {"SANDBOX": True, "EVIDENCE_SEALING_KEYS": SEALING_KEYS,
                             "DATABASE_URL": url, "REDIS_URL": None})
        report = purge(settings, retention_months=6, dry_run=False, now=now)
        assert report.traders == [trader_hash("trader-1", "default")]
        stone = _entries(log)[-1]
        public = disclosures.parse_private_key(disclosures.SANDBOX_KEY).public_key()
        assert stone["kind"] == "tombstone" and chain.verify_tombstone(stone["detail"], public)
        assert _verify(log, public).intact
    finally:
        log.close()


# -- PostgreSQL: the triggers, the inbox and the sequencer ----------------------------------------


@pytest.fixture
def pg_log(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A migrated PostgreSQL log whose sequencer thread never runs (as if its process died
    between a write's commit and the sequencing): what is written waits in the inbox."""
    monkeypatch.setattr(chain.Sequencer, "poke", lambda self: None)
    with pg_schema() as schema:
        log = EvidenceLog(schema_url(schema), SEALING_KEYS)
        log.migrate()
        yield log
        log.close()


def _waiting(log: EvidenceLog) -> int:
    with log.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(
            evidence_chain_inbox_table)).scalar_one())


def test_the_triggers_body_and_row_hash_are_the_ones_verify_recomputes(pg_log: EvidenceLog):
    pg_log.save(make_record("v-ü\"1", "trader-1"))
    with pg_log.engine.connect() as conn:
        entry = conn.execute(sa.select(evidence_chain_inbox_table)).mappings().one()
        server = chain.row_hashes(conn, verifications_table, verifications_table.c.id == "v-ü\"1")
    assert bytes(entry["body"]) == chain.entry_body(
        at=chain._stamp(entry["at"]), kind="row", table="verifications", key="v-ü\"1",
        row_hash=entry["row_hash"], detail=None)
    assert server == {"v-ü\"1": entry["row_hash"]}


def test_the_verifications_trigger_nulls_the_bookkeeping_as_verify_does(pg_log: EvidenceLog):
    """Migration 0013's trigger on verifications nulls ``attempts`` and ``next_retry_at`` in a
    copy of the row: the same hash as ``trace30_chain_row_hash`` (what verify recomputes), for
    an UPDATE that changes them with a fact, and nothing for one that changes only them."""
    pg_log.save(make_record("v-1", "trader-1", state="running", verdict=None, settled_at=None))
    with pg_log._write() as conn:
        conn.execute(sa.update(verifications_table).where(verifications_table.c.id == "v-1")
                     .values(attempts=2, next_retry_at=T0, verdict="verified"))
    with pg_log._write() as conn:  # bookkeeping only: no entry
        conn.execute(sa.update(verifications_table).where(verifications_table.c.id == "v-1")
                     .values(attempts=3, next_retry_at=None))
    with pg_log.engine.connect() as conn:
        noted = conn.execute(sa.select(evidence_chain_inbox_table.c.row_hash)
                             .order_by(evidence_chain_inbox_table.c.id)).scalars().all()
        server = chain.row_hashes(conn, verifications_table, verifications_table.c.id == "v-1")
        function = conn.execute(sa.text(
            "SELECT tgfoid::regprocedure::text FROM pg_trigger "
            "WHERE tgrelid = 'verifications'::regclass AND tgname = 'trace30_chain'")).scalar()
    assert function == "trace30_chain_note_verifications()"
    assert len(noted) == 2 and noted[0] != noted[1] and server == {"v-1": noted[1]}
    assert _verify(pg_log).intact


def test_a_session_with_other_settings_gets_the_same_row_hashes(pg_log: EvidenceLog):
    """The triggers hash the row's text as the session writes it only when the session has the
    settings ``trace30_chain_row_hash`` pins (the evidence log sets them at connect); another
    time zone, date style or float digits gets the pinned function: the same hashes."""
    pg_log.save(make_record("v-1", "trader-1", state="running", verdict=None, settled_at=None))
    with pg_log._write() as conn:
        conn.exec_driver_sql("SET LOCAL TimeZone = 'Pacific/Chatham'")
        conn.exec_driver_sql("SET LOCAL DateStyle = 'SQL, DMY'")
        conn.exec_driver_sql("SET LOCAL extra_float_digits = 3")
        conn.execute(sa.update(verifications_table).where(verifications_table.c.id == "v-1")
                     .values(verdict="verified", settled_at=T0))
        conn.execute(sa.insert(staff_actions_table).values(  # (0011's generic trigger)
            id="a-1", at=T0, actor="staff:ann", action="reverify", trader_id="trader-1",
            detail={"score": 0.1 + 0.2}))
    with pg_log.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW TimeZone").scalar() == "UTC"  # SET LOCAL ended
        noted = conn.execute(sa.select(evidence_chain_inbox_table.c.row_hash,
                                       evidence_chain_inbox_table.c.body)
                             .order_by(evidence_chain_inbox_table.c.id)).all()
        server = chain.row_hashes(conn, verifications_table, verifications_table.c.id == "v-1")
        server.update(chain.row_hashes(conn, staff_actions_table,
                                       staff_actions_table.c.id == "a-1"))
    assert len(noted) == 3 and server == {"v-1": noted[1][0], "a-1": noted[2][0]}
    assert json.loads(bytes(noted[1][1]))["at"].endswith("+00:00")
    assert _verify(pg_log).intact


def test_entries_left_in_the_inbox_by_a_dead_process_are_chained_by_the_next(
        pg_log: EvidenceLog):
    _fill(pg_log)  # _fill's own sequence_chain() is the next process's, here
    assert _waiting(pg_log) == 0 and len(_entries(pg_log)) == 5
    pg_log.record_action(tenant="default", actor="staff:ann", action="reverify",
                         trader_id="trader-1")
    assert _waiting(pg_log) == 1
    assert _verify(pg_log).intact and _verify(pg_log).waiting == 1  # already the row's latest
    other = EvidenceLog(pg_log.engine.url.render_as_string(hide_password=False), SEALING_KEYS)
    try:
        assert other.sequence_chain() == 1
    finally:
        other.close()
    assert _waiting(pg_log) == 0 and [e["seq"] for e in _entries(pg_log)] == [1, 2, 3, 4, 5, 6]
    assert _verify(pg_log).intact


def test_a_row_edited_while_its_entry_waits_is_named(pg_log: EvidenceLog):
    pg_log.save(make_record("v-1", "trader-1"))
    _sql(pg_log, "UPDATE verifications SET verdict = 'verified', reasons = '[]' WHERE id = 'v-1'")
    _sql(pg_log, "UPDATE verifications SET trader_id = 'trader-9' WHERE id = 'v-1'")
    report = _verify(pg_log)
    assert report.waiting == 1
    assert [(p.what, p.key, p.seq) for p in report.problems] == [("edited", "v-1", None)]


def test_a_failed_sequencing_round_loses_nothing(pg_log: EvidenceLog,
                                                 monkeypatch: pytest.MonkeyPatch):
    _fill(pg_log)
    pg_log.record_action(tenant="default", actor="staff:ann", action="reverify",
                         trader_id="trader-1")
    # the round's statement fails after its moves ran (as a crash before the commit would)
    text = chain._SEQUENCE.text.replace("SELECT trace30_chain_sequence(:limit, :genesis)",
                                        "SELECT trace30_chain_sequence(:limit, :genesis) / 0")
    assert text != chain._SEQUENCE.text
    monkeypatch.setattr(chain, "_SEQUENCE", sa.text(text).bindparams(genesis=chain.GENESIS))
    with pytest.raises(sa.exc.DataError):
        pg_log.sequence_chain()
    assert _waiting(pg_log) == 1  # the round rolled back whole
    monkeypatch.undo()
    monkeypatch.setattr(chain.Sequencer, "poke", lambda self: None)
    assert pg_log.sequence_chain() == 1 and _verify(pg_log).intact


def test_the_sequencer_thread_chains_after_each_commit():
    with pg_schema() as schema:
        log = EvidenceLog(schema_url(schema), SEALING_KEYS)
        log.migrate()
        try:
            log.save(make_record("v-1", "trader-1"))
            for _ in range(200):  # the thread's round: within milliseconds
                if _waiting(log) == 0:
                    break
                threading.Event().wait(0.02)
            assert _waiting(log) == 0
            with log.engine.connect() as conn:
                assert conn.execute(sa.select(sa.func.count()).select_from(
                    evidence_chain_table)).scalar_one() == 1
        finally:
            log.close()


def test_the_purge_leaves_its_tombstone_without_an_entry_per_deleted_row(pg_log: EvidenceLog):
    _fill(pg_log)
    pg_log.purge_trader("trader-1", tenant="default")
    entries = _entries(pg_log)
    assert [e["kind"] for e in entries[5:]] == ["tombstone"]
    assert _verify(pg_log).intact


def test_the_purge_hashes_rows_as_the_triggers_do_whatever_the_sessions_time_zone():
    """The purge's inline row hash pins the settings the triggers' function pins: a
    connection in another time zone (timestamps print otherwise) lists the same hashes."""
    with pg_schema() as schema:
        log = EvidenceLog(schema_url(schema), SEALING_KEYS)

        def _elsewhere(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("SET timezone = 'Asia/Kathmandu'")
            cursor.close()
            dbapi_connection.commit()

        sa.event.listen(log.engine, "connect", _elsewhere)
        log.migrate()
        try:
            _fill(log)
            with log.engine.connect() as conn:
                assert conn.execute(sa.text("SHOW timezone")).scalar_one() == "Asia/Kathmandu"
            chained = _latest_row_hashes(log)
            log.purge_traders([("default", "trader-1"), ("default", "trader-2")])
            stones = [e for e in _entries(log) if e["kind"] == "tombstone"]
            assert {(t, k): h for s in stones for t, k, h in s["detail"]["removed"]} == chained
            assert _verify(log).intact
        finally:
            log.close()


def test_audit_head_chains_what_waits_first(pg_log: EvidenceLog, monkeypatch: pytest.MonkeyPatch):
    _fill(pg_log)
    pg_log.record_action(tenant="default", actor="staff:ann", action="reverify",
                         trader_id="trader-1")
    key = Ed25519PrivateKey.generate()
    monkeypatch.setenv("TRACE30_DATABASE_URL",
                       pg_log.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("TRACE30_DISCLOSURE_SIGNING_KEY",
                       base64.b64encode(key.private_bytes_raw()).decode())
    result = CliRunner().invoke(audit, ["head"])
    assert result.exit_code == 0, result.output
    head = json.loads(result.output)
    assert head["seq"] == 6 and _waiting(pg_log) == 0
    assert chain.verify_head(head, key.public_key())


def test_a_settled_run_is_chained_as_the_rows_new_state(evidence_log: EvidenceLog):
    """The settle UPDATE names its row through a parameter given at execution (a statement
    built once): the chain still sees which row it wrote."""
    evidence_log.save(make_record("v-1", "trader-1", state="running", verdict=None,
                                  settled_at=None))
    with evidence_log.transaction() as tx:
        assert tx.settle(make_record("v-1", "trader-1", verdict="rejected"),
                         expected_attempts=0) is not None
    entries = _entries(evidence_log)
    assert [(e["table_name"], e["row_key"]) for e in entries] == [("verifications", "v-1")] * 2
    assert entries[0]["row_hash"] != entries[1]["row_hash"]
    assert _verify(evidence_log).intact


def test_the_sequencer_thread_tries_again_after_a_failed_round(monkeypatch: pytest.MonkeyPatch):
    """A database blip during the thread's round: logged, and the entries are chained by a
    later round without another write to wake it."""
    text = chain._SEQUENCE.text.replace("SELECT trace30_chain_sequence(:limit, :genesis)",
                                        "SELECT trace30_chain_sequence(:limit, :genesis) / 0")
    monkeypatch.setattr(chain, "_SEQUENCE", sa.text(text).bindparams(genesis=chain.GENESIS))
    with pg_schema() as schema:
        log = EvidenceLog(schema_url(schema), SEALING_KEYS)
        log.migrate()
        try:
            log.save(make_record("v-1", "trader-1"))
            threading.Event().wait(1.0)  # the thread's round has failed by now
            assert _waiting(log) == 1
            monkeypatch.undo()
            for _ in range(100):  # its next try, 5 s after the failure
                if _waiting(log) == 0:
                    break
                threading.Event().wait(0.1)
            assert _waiting(log) == 0
        finally:
            log.close()


def test_migration_0013_goes_down_to_0011s_triggers_and_up_again():
    """0013's downgrade puts 0011's trigger functions back (with their pinned settings) on
    every fact table, and the chain still notes and verifies; the upgrade again after it."""
    from alembic import command

    def triggers(conn: sa.Connection) -> dict[str, str]:
        return dict(conn.execute(sa.text(
            "SELECT c.relname, p.proname FROM pg_trigger AS t "
            "JOIN pg_class AS c ON c.oid = t.tgrelid JOIN pg_proc AS p ON p.oid = t.tgfoid "
            "WHERE t.tgname = 'trace30_chain' AND c.relnamespace = current_schema()::regnamespace"
        )).all())

    with pg_schema() as schema:
        log = EvidenceLog(schema_url(schema), SEALING_KEYS)
        log.migrate()
        try:
            with log.engine.begin() as conn:
                assert triggers(conn)["verifications"] == "trace30_chain_note_verifications"
                command.downgrade(log.alembic_config(conn), "0012")
                assert set(triggers(conn).items()) == {
                    (name, "trace30_chain_note") for name in chain.FACT_TABLES}
            log.save(make_record("v-1", "trader-1"))
            with log.engine.begin() as conn:
                command.upgrade(log.alembic_config(conn), "head")
                assert triggers(conn)["verifications"] == "trace30_chain_note_verifications"
            log.save(make_record("v-2", "trader-1"))
            log.sequence_chain()
            report = _verify(log)
            assert report.intact and report.entries == 2
        finally:
            log.close()


def test_rows_from_before_the_chain_are_adopted_once_and_an_edit_never(
        evidence_log: EvidenceLog, monkeypatch: pytest.MonkeyPatch):
    """After an upgrade the rows written before migration 0010 have no entry; ``audit adopt``
    lists them, and with --yes chains each marked as adopted; an edited row stays named."""
    _fill(evidence_log)
    engine = sa.create_engine(evidence_log.engine.url)  # a program of its own: no chain
    try:
        with engine.begin() as conn:  # as written before the chain existed
            for key in ("old-1", "old-2"):
                conn.execute(sa.insert(staff_actions_table).values(
                    id=key, at=T0, actor="staff:old", action="reverify", trader_id="trader-9"))
        _sql(evidence_log, "UPDATE verifications SET verdict = 'verified' WHERE id = 'v-2'")
    finally:
        engine.dispose()
    before = _entries(evidence_log)
    assert {(p.what, p.key) for p in _verify(evidence_log).problems} == {
        ("inserted outside the log", "old-1"), ("inserted outside the log", "old-2"),
        ("edited", "v-2")}
    monkeypatch.setattr(chain, "ADOPT_BATCH", 1)  # read and appended a row at a time
    monkeypatch.setenv("TRACE30_DATABASE_URL",
                       evidence_log.engine.url.render_as_string(hide_password=False))
    listed = CliRunner().invoke(audit, ["adopt", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output) == {"unchained": {"staff_actions": 2}, "adopted": 0}
    assert _entries(evidence_log) == before  # only listed
    done = CliRunner().invoke(audit, ["adopt", "--yes"])
    assert done.exit_code == 0 and "adopted 2 rows (staff_actions 2)" in done.output, (
        done.output, done.exception)
    entries = _entries(evidence_log)
    assert len(entries) == len(before) + 2
    assert [(e["row_key"], e["detail"]) for e in entries[-2:]] == [
        ("old-1", {"adopted": True}), ("old-2", {"adopted": True})]
    report = _verify(evidence_log)
    assert [(p.what, p.key) for p in report.problems] == [("edited", "v-2")]
    again = CliRunner().invoke(audit, ["adopt", "--yes"])
    assert again.exit_code == 0 and "nothing to adopt" in again.output


def test_closing_ends_the_sequencers_gathering_wait_and_chains_what_is_left(
        monkeypatch: pytest.MonkeyPatch):
    """close() does not wait out the thread's gathering of writes (a purge or a worker's end
    would otherwise wait that long): it stops the thread and sequences the rest itself."""
    monkeypatch.setattr(chain.Sequencer, "gather_s", 60.0)
    with pg_schema() as schema:
        log = EvidenceLog(schema_url(schema), SEALING_KEYS)
        log.migrate()
        log.save(make_record("v-1", "trader-1"))  # pokes: the thread now gathers for 60 s
        closing = threading.Thread(target=log.close)
        closing.start()
        closing.join(20)
        assert not closing.is_alive()
        other = EvidenceLog(schema_url(schema), SEALING_KEYS)
        try:
            assert _waiting(other) == 0 and _verify(other).entries == 1
        finally:
            other.close()
