"""The purge in batches (``TRACE30_PURGE_BATCH_SIZE``): what one trader at a time guaranteed
still holds per trader, on SQLite and PostgreSQL with Redis — a tombstone each and a chain
that verifies, legal holds checked again in the deleting transaction, the purge lock per
trader, dry-run counts, each trader's own counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from services.gateway.evidence import EvidenceLog, chain
from services.gateway.evidence.schema import evidence_chain_table
from shared.config import load
from shared.redis_client import Store
from tests.conftest import REDIS_URL
from tests.gateway.evidence_fixtures import SEALING_KEYS, make_record
from trace30.keys import purge_lock_key
from trace30.retention import SQL_TABLES, purge, trader_hash

NOW = datetime(2026, 11, 30, tzinfo=UTC)
TRADERS = [f"shop-{i}" for i in range(7)]


def seed(log: EvidenceLog) -> None:
    """Seven ended traders, each with one verification and two staff actions (the verification
    by the client and the end of the relationship), and one ongoing trader."""
    for i, trader_id in enumerate(TRADERS):
        log.save(make_record(f"v-{i}", trader_id))
        log.record_action(tenant="default", actor="staff:ann", action="reverify",
                          trader_id=trader_id, verification_id=f"v-{i}")
        assert log.end_relationship(trader_id, NOW - timedelta(days=400 - i), tenant="default",
                                    actor="staff:ann")
    log.save(make_record("v-live", "shop-live"))


def settings_for(database_url: str, store: Store, **changes: Any) -> dict[str, Any]:
    return load({}, {"SANDBOX": True, "EVIDENCE_SEALING_KEYS": SEALING_KEYS,
                     "DATABASE_URL": database_url, "REDIS_URL": REDIS_URL,
                     "REDIS_PREFIX": store.prefix, "PURGE_BATCH_SIZE": 3, **changes})


def tombstones(log: EvidenceLog) -> list[str]:
    with log.engine.connect() as conn:
        return list(conn.execute(sa.select(evidence_chain_table.c.row_key).where(
            evidence_chain_table.c.kind == "tombstone").order_by(
                evidence_chain_table.c.seq)).scalars())


def test_batches_keep_every_guarantee_per_trader(database_url: str, evidence_log: EvidenceLog,
                                                 store: Store,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    log = evidence_log
    seed(log)
    log.place_hold("shop-1", tenant="default", reason="police request", by="staff:ann")
    log.place_hold("shop-2", tenant="default", reason="old request", by="staff:ann")
    assert log.release_hold("shop-2", tenant="default", by="staff:ann")
    other = store.client.lock(purge_lock_key(store, trader_hash("shop-3", "default")),
                              timeout=60)
    assert other.acquire(blocking=False)  # another purge is at shop-3
    real_keys = EvidenceLog.verification_keys

    def hold_placed_meanwhile(self: EvidenceLog, traders: Any) -> Any:
        if ("default", "shop-5") in traders:  # after the listing, before the transaction
            log.place_hold("shop-5", tenant="default", reason="late", by="staff:ann")
        return real_keys(self, traders)

    monkeypatch.setattr(EvidenceLog, "verification_keys", hold_placed_meanwhile)
    settings = settings_for(database_url, store)

    dry = purge(settings, retention_months=6, dry_run=True, now=NOW)
    assert log.ended_before(NOW) and tombstones(log) == []  # nothing deleted, nothing chained
    report = purge(settings, retention_months=6, dry_run=False, now=NOW)

    purged = ["shop-0", "shop-2", "shop-4", "shop-6"]
    assert report.traders == [trader_hash(t, "default") for t in purged]
    assert sorted(report.held) == sorted(trader_hash(t, "default") for t in ("shop-1", "shop-5"))
    for trader_id in purged:  # each its own counts, the dry run's too
        counts = report.by_trader[trader_hash(trader_id, "default")]["sql"]
        assert counts == dry.by_trader[trader_hash(trader_id, "default")]["sql"]
        assert {k: v for k, v in counts.items() if v} == {
            "staff_actions": 2, "traders": 1, "verifications": 1}
    assert report.sql == {name: n * 4 for name, n in {
        **dict.fromkeys(SQL_TABLES, 0), "staff_actions": 2, "traders": 1,
        "verifications": 1}.items()}
    # one signed tombstone per purged trader; the chain verifies
    assert tombstones(log) == [trader_hash(t, "default") for t in purged]
    with log.engine.connect() as conn:
        verified = chain.verify(conn)
    assert verified.intact, chain.problems_text(verified.problems)
    # held, locked by another purge, or ongoing: left whole; the released hold went
    left = {tid for _tenant, tid in log.ended_before(NOW)}
    assert left == {"shop-1", "shop-3", "shop-5"}
    assert log.current("shop-live", tenant="default") is not None
    assert log.hold("shop-1", tenant="default") is not None
    assert log.hold("shop-2", tenant="default") is None
    other.release()
    again = purge(settings, retention_months=6, dry_run=False, now=NOW)
    assert again.traders == [trader_hash("shop-3", "default")]
    assert not store.client.keys(f"{store.prefix}*purge*")  # every lock released


def test_a_failing_batch_is_retried_one_trader_at_a_time(database_url: str,
                                                         evidence_log: EvidenceLog,
                                                         store: Store,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch that fails is not lost: its traders go one by one, and only the one that
    cannot be purged stops the purge."""
    seed(evidence_log)
    real = EvidenceLog.purge_traders
    calls: list[int] = []

    def fails_with_shop_4(self: EvidenceLog, traders: Any, **kwargs: Any) -> Any:
        calls.append(len(traders))
        if ("default", "shop-4") in traders:
            raise sa.exc.OperationalError("DELETE", {}, Exception("deadlock detected"))
        return real(self, traders, **kwargs)

    monkeypatch.setattr(EvidenceLog, "purge_traders", fails_with_shop_4)
    from trace30.retention import PurgeError

    with pytest.raises(PurgeError) as caught:
        purge(settings_for(database_url, store), retention_months=6, dry_run=False, now=NOW)
    assert calls == [3, 3, 1, 1]  # the first batch whole, the second one by one up to shop-4
    assert caught.value.report.traders == [trader_hash(f"shop-{i}", "default")
                                           for i in (0, 1, 2, 3)]
    assert trader_hash("shop-4", "default") in str(caught.value)


def test_a_batchs_redis_entries_and_locks_go_in_script_calls_of_bounded_size(
        database_url: str, evidence_log: EvidenceLog, store: Store,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch's keys are deleted, and its locks taken and released, by script calls of at
    most ``SCRIPT_KEYS`` keys each: every key still counted for its own trader and kind, a
    lock another purge holds still respected, every lock of this purge released."""
    from services.gateway.cache import CacheKeys
    from trace30 import retention

    monkeypatch.setattr(retention, "SCRIPT_KEYS", 2)
    seed(evidence_log)
    cache = CacheKeys(store)
    for i in (0, 1, 2, 4, 5):  # shop-3: another purge's; shop-6: nothing cached
        store.client.set(cache.verdict(f"fp-v-{i}"), "{}")
        store.client.set(cache.result(f"v-{i}"), "{}")
    store.client.set(cache.inflight("fp-v-5"), "1")
    store.client.set(cache.verdict("fp-v-live"), "{}")  # an ongoing trader's: stays
    other = store.client.lock(purge_lock_key(store, trader_hash("shop-3", "default")),
                              timeout=60)
    assert other.acquire(blocking=False)
    settings = settings_for(database_url, store, PURGE_BATCH_SIZE=10)

    dry = purge(settings, retention_months=6, dry_run=True, now=NOW)
    report = purge(settings, retention_months=6, dry_run=False, now=NOW)

    expected = {f"shop-{i}": {"gateway:verdict": 1, "gateway:result": 1} for i in (0, 1, 2, 4)}
    expected["shop-5"] = {"gateway:verdict": 1, "gateway:result": 1, "gateway:inflight": 1}
    expected["shop-6"] = {}
    for trader_id, counts in expected.items():
        hashed = trader_hash(trader_id, "default")
        assert {k: v for k, v in report.by_trader[hashed]["redis"].items() if v} == counts
        assert dry.by_trader[hashed]["redis"] == report.by_trader[hashed]["redis"]
    assert trader_hash("shop-3", "default") not in report.traders
    assert store.client.get(cache.verdict("fp-v-live")) == "{}"
    assert not [k for k in store.client.keys(f"{store.prefix}*") if "fp-v-live" not in k
                and "purge" not in k]
    assert store.client.exists(other.name)  # the other purge's lock: untouched
    other.release()
    assert not store.client.keys(f"{store.prefix}*purge*")  # every lock of ours released
