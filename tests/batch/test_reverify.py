"""``trace30 reverify`` and ``trace30 worker`` against the suite: changes, resume, limits."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from services.gateway import create_app, shutdown
from services.gateway.signatures import verify
from shared.redis_client import Store
from tests.batch.conftest import WEBHOOK_SECRET, Batch, de_vat, trader
from tests.conftest import REDIS_URL
from trace30.cli import main
from trace30.keys import RunKeys, trader_hash


def hashed(trader_id: str, tenant: str = "default") -> str:
    """How reports name a trader."""
    return trader_hash(trader_id, tenant)

pytestmark = pytest.mark.slow  # batch runs with RQ workers as processes


def run_cli(batch: Batch, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["reverify", *args], env=batch.env,
                                catch_exceptions=False)
    return result.exit_code, result.output


def vies_overrides(batch: Batch, changes: dict[str, dict]) -> None:
    batch.suite.configure("vies-simulator", overrides=changes)


def test_population_reverified_with_changes_within_the_cap(batch: Batch, tmp_path: Path) -> None:
    traders = [trader(i) for i in range(9)]
    vies_overrides(batch, {t["vat_number"]: {"valid": True} for t in traders})
    seeded = batch.seed(traders)
    assert {s["verdict"] for s in seeded} == {"verified"}, [s["reasons"] for s in seeded]

    # Between the runs: one VAT number is deregistered, one member state answer fails.
    vies_overrides(batch, {traders[0]["vat_number"]: {"valid": False},
                           traders[1]["vat_number"]: {"fault": "MS_UNAVAILABLE"}})
    batch.suite.configure("vies-simulator", latency_ms=250, ms_limits={"DE": 2})
    batch.suite.reset()
    for _ in range(3):
        batch.start_worker()
    run_id = f"{batch.token}-pop"
    code, output = run_cli(batch, "--all", "--run-id", run_id, "--timeout", "90",
                           "--report-dir", str(tmp_path))
    assert code == 0, output
    doc = json.loads((tmp_path / f"reverify-{run_id}.json").read_text())
    assert doc["total"] == 9 and doc["finished"] == 9
    # A number VIES no longer lists goes to review by default (domestic-only numbers).
    assert doc["changes"] == {"verified→pending": 1, "verified→needs_review": 1}
    assert doc["still_pending"] == [hashed("trader-001")]
    rows = {r["trader_hash"]: r for r in doc["traders"]}
    assert rows[hashed("trader-000")]["after"] == "needs_review"
    assert "VAT_NOT_IN_VIES" in rows[hashed("trader-000")]["reasons"]
    assert rows[hashed("trader-005")]["changed"] is False
    csv_text = (tmp_path / f"reverify-{run_id}.csv").read_text()
    assert f"{hashed('trader-000')},done,verified,needs_review,yes" in csv_text
    # The report names traders by hash only (a file the purge cannot follow).
    report_text = csv_text + (tmp_path / f"reverify-{run_id}.json").read_text()
    assert not any(t["trader_id"] in report_text for t in traders)
    assert rows[hashed("trader-000")]["verification_id"]

    stats = batch.suite.stats("vies-simulator")
    assert stats["max_in_flight"].get("DE", 0) <= 2  # three workers, one cap
    assert stats["faults"].get("MS_MAX_CONCURRENT_REQ", 0) == 0

    hooks = batch.receiver.wait_for(2, timeout_s=20)
    changed = {}
    for hook in hooks:
        verify(WEBHOOK_SECRET, hook.headers["Trace30-Signature"], hook.body)
        payload = json.loads(hook.body)
        if payload["event"] == "verdict.changed":
            changed[payload["verification"]["trader_id"]] = payload["verification"]
    assert changed["trader-000"]["previous_verdict"] == "verified"
    assert changed["trader-000"]["verdict"] == "needs_review"


def test_killed_worker_loses_nothing_and_rerun_resumes(batch: Batch, tmp_path: Path) -> None:
    traders = [trader(i) for i in range(20, 26)]
    vies_overrides(batch, {t["vat_number"]: {"valid": True} for t in traders})
    batch.seed(traders)
    batch.suite.configure("vies-simulator", latency_ms=1200)
    batch.suite.reset()
    run_id = f"{batch.token}-kill"
    code, output = run_cli(batch, "--all", "--run-id", run_id, "--no-wait")
    assert code == 0 and "6 job(s) queued" in output

    victim = batch.start_worker()
    store = Store(redis.Redis.from_url(REDIS_URL, decode_responses=True),
                  batch.env["TRACE30_REDIS_PREFIX"])
    keys = RunKeys(store, run_id, "default")
    end = time.monotonic() + 30
    leases = store.key("batch", run_id, "lease", "*")
    while not list(store.client.scan_iter(match=leases)):
        assert time.monotonic() < end, "the worker never started a job"
        time.sleep(0.05)
    batch.kill(victim)  # mid-job: its lease lapses, its job is lost
    assert store.client.hlen(keys.results) == 0

    batch.suite.configure("vies-simulator", latency_ms=100)
    batch.start_worker()
    batch.start_worker()
    # The same command again: it resumes the run (the lost job is queued again).
    code, output = run_cli(batch, "--all", "--run-id", run_id, "--timeout", "60",
                           "--report-dir", str(tmp_path))
    assert code == 0, output
    doc = json.loads((tmp_path / f"reverify-{run_id}.json").read_text())
    assert doc["finished"] == 6 and doc["failed"] == []
    first_calls = batch.suite.stats("vies-simulator")["calls"]
    assert first_calls <= 6 + 1  # each trader once, plus the killed attempt at most

    # A third run of the same command redoes nothing.
    code, output = run_cli(batch, "--all", "--run-id", run_id, "--timeout", "10",
                           "--report-dir", str(tmp_path))
    assert code == 0 and "0 job(s) queued" in output
    assert batch.suite.stats("vies-simulator")["calls"] == first_calls


def test_default_run_id_makes_the_same_command_resume(batch: Batch, tmp_path: Path) -> None:
    traders = [trader(i) for i in range(40, 42)]
    vies_overrides(batch, {t["vat_number"]: {"valid": True} for t in traders})
    batch.seed(traders)
    batch.start_worker()
    code, first = run_cli(batch, "--verdict", "verified", "--timeout", "60",
                          "--report-dir", str(tmp_path))
    assert code == 0 and "2 job(s) queued" in first
    code, again = run_cli(batch, "--verdict", "verified", "--timeout", "10",
                          "--report-dir", str(tmp_path))
    assert code == 0 and "0 job(s) queued" in again


def test_input_file_of_submissions(batch: Batch, tmp_path: Path) -> None:
    subs = [trader(i) for i in range(60, 62)]
    vies_overrides(batch, {s["vat_number"]: {"valid": True} for s in subs})
    path = tmp_path / "traders.jsonl"
    path.write_text("\n".join(json.dumps(s) for s in subs))
    batch.start_worker()
    code, output = run_cli(batch, "--input", str(path), "--run-id", f"{batch.token}-in",
                           "--timeout", "60", "--report-dir", str(tmp_path))
    assert code == 0, output
    doc = json.loads((tmp_path / f"reverify-{batch.token}-in.json").read_text())
    assert doc["by_status"] == {"done": 2}
    assert {r["after"] for r in doc["traders"]} == {"verified"}
    store = redis.Redis.from_url(REDIS_URL)
    for key in store.scan_iter(match=batch.env["TRACE30_REDIS_PREFIX"] + "*"):
        for value in (store.hvals(key) if store.type(key) == b"hash" else [store.get(key)]):
            if value:
                assert subs[0]["payment"]["iban"].encode() not in value
                assert subs[0]["email"].encode() not in value


def test_input_csv_with_dotted_columns_and_bad_rows(batch: Batch, tmp_path: Path) -> None:
    path = tmp_path / "traders.csv"
    path.write_text(
        "trader_id,name,address.country_code,vat_number,payment.iban,"
        "self_certification.accepted\n"
        f"t-1,Handel GmbH,DE,{de_vat(1)},DE89370400440532013000,true\n"
        "t-2,Handel GmbH,Germany,,DE89370400440532013000,true\n"
        ",No Id,DE,,,\n")
    code, output = run_cli(batch, "--input", str(path), "--no-wait")
    assert code != 0
    assert "2 submission(s) are not valid" in output
    assert "line 3: address" in output and "line 4: trader_id" in output
    assert "DE89370400440532013000" not in output


@pytest.mark.parametrize("args", [[], ["--all", "--input", "x.csv"]])
def test_selection_is_required_and_exclusive(batch: Batch, tmp_path: Path,
                                             args: list[str]) -> None:
    (tmp_path / "x.csv").write_text("trader_id\n")
    result = CliRunner().invoke(main, ["reverify", *args], env=batch.env)
    assert result.exit_code != 0


def test_a_run_re_verifies_the_traders_of_its_tenant_only(batch: Batch, tmp_path: Path) -> None:
    """``--tenant shop-b`` selects shop-b's traders and verifies them in shop-b; shop-a's
    traders of the same ids are left alone, and the default tenant's run of the same
    selection the same day is another run."""
    keys = json.loads(batch.env["TRACE30_GATEWAY_API_KEYS"])
    keys.append({"id": "shop-b", "key": "batch-test-key-b", "tenant": "shop-b",
                 "scopes": ["onboarding", "ops", "batch"]})
    batch.env["TRACE30_GATEWAY_API_KEYS"] = batch.config["GATEWAY_API_KEYS"] = json.dumps(keys)
    both, only_b = [trader(i) for i in range(80, 82)], trader(82)
    vies_overrides(batch, {t["vat_number"]: {"valid": True} for t in [*both, only_b]})
    batch.seed(both)  # the default tenant's
    batch.seed([*both, only_b], key="batch-test-key-b")
    batch.start_worker()

    code, output = run_cli(batch, "--all", "--tenant", "shop-b", "--timeout", "60",
                           "--report-dir", str(tmp_path))
    assert code == 0, output
    assert "(tenant shop-b): 3 trader(s), 3 job(s) queued" in output
    [report] = tmp_path.glob("reverify-shop-b-*.json")
    doc = json.loads(report.read_text())
    assert doc["tenant"] == "shop-b" and doc["by_status"] == {"done": 3}
    assert {r["before"] for r in doc["traders"]} == {"verified"}  # shop-b's verdicts before
    assert sorted(r["trader_hash"] for r in doc["traders"]) == sorted(
        hashed(t["trader_id"], "shop-b") for t in [*both, only_b])
    app = create_app(batch.config)
    try:
        log = app.extensions["trace30.gateway"].evidence
        for t in both:
            assert len(log.history(t["trader_id"], tenant="shop-b")) == 2
            assert len(log.history(t["trader_id"], tenant="default")) == 1  # untouched
        assert log.history(only_b["trader_id"], tenant="default") == []
    finally:
        shutdown(app)

    # A run of shop-b cannot be resumed as another tenant's.
    code, output = run_cli(batch, "--all", "--run-id", doc["run_id"], "--no-wait")
    assert code != 0 and "tenant 'shop-b'" in output
    code, output = run_cli(batch, "--all", "--tenant", "Shop B", "--no-wait")
    assert code != 0 and "not a tenant id" in output
    # The same selection for the default tenant, the same day: its own run, its two traders.
    code, output = run_cli(batch, "--all", "--timeout", "60", "--report-dir", str(tmp_path))
    assert code == 0 and "(tenant default): 2 trader(s), 2 job(s) queued" in output
