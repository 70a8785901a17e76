"""Art 30(6) disclosure bundles, the disclosures log and legal holds
(:mod:`services.gateway.disclosures`, :mod:`services.gateway.disclosures_api`,
:mod:`trace30.export`, the purge's holds in :mod:`trace30.retention`)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask.testing import FlaskClient
from pypdf import PdfReader

from services.gateway import disclosures as D
from services.gateway.documents import DocumentService
from services.gateway.documents.storage import DatabaseStorage, FilesystemStorage
from services.gateway.evidence import EvidenceLog
from services.gateway.evidence.schema import (
    complaints_table,
    disclosures_table,
    document_blobs_table,
    documents_table,
    legal_holds_table,
    reviews_table,
    statements_table,
)
from services.gateway.evidence.traders import TraderHeld
from shared.config import load
from shared.errors import ConfigError
from tests.gateway.conftest import ONBOARDING, OPS
from tests.gateway.evidence_fixtures import SEALING_KEYS, T0, make_record
from trace30.keys import trader_hash
from trace30.retention import purge

IBAN = "DE89370400440532013000"
EMAIL = "contact@boulangerie-martin.example"
KEY = D.parse_private_key(D.SANDBOX_KEY)
DOC_BYTES = b"%PDF-1.4 a scanned identity document\n"
ENDED = datetime(2025, 6, 30, tzinfo=UTC)
AFTER_RETENTION = datetime(2026, 1, 15, tzinfo=UTC)


def _key(tenant: str, trader: str) -> str:
    """A document storage key (32 hex digits) of the trader's document."""
    return hashlib.sha256(f"{tenant}/{trader}".encode()).hexdigest()[:32]


def seed(log: EvidenceLog, trader: str = "boulangerie-martin", tenant: str = "default",
         *, sealing_keys: str = SEALING_KEYS) -> None:
    """A trader with a verification (sealed submission), a staff action, a document (its file
    in ``document_blobs``), a review, a statement and a complaint, rows written directly."""
    log.save(make_record(f"v-{trader}", trader, tenant_id=tenant,
                         evidence={"vies_consultation_number": "WAPIAAAAW1a2b3c4",
                                   "register_source": "FR:RCS"},
                         checks={"vat": {"status": "valid"}, "payee": {"match": "MATCH"}}),
             private_submission={"trader_id": trader, "email": EMAIL,
                                 "payment": {"iban": IBAN}})
    log.record_action(tenant=tenant, actor="staff:j.martin", action="reverify",
                      trader_id=trader, verification_id=f"v-{trader}")
    fernet = Fernet(sealing_keys.split(",")[0].encode())
    with log.engine.begin() as conn:
        conn.execute(sa.insert(documents_table).values(
            id=f"doc-{trader}"[:32], tenant_id=tenant, trader_id=trader,
            kind="identity_document", issuing_country="FR", expires_on=date(2030, 1, 1),
            content_type="application/pdf", size_bytes=len(DOC_BYTES),
            sha256=hashlib.sha256(DOC_BYTES).hexdigest(), storage="database",
            storage_key=_key(tenant, trader), uploaded_at=T0, uploaded_by="staff:j.martin"))
        conn.execute(sa.insert(document_blobs_table).values(
            storage_key=_key(tenant, trader), content=fernet.encrypt(DOC_BYTES)))
        conn.execute(sa.insert(reviews_table).values(
            id=f"r-{trader}"[:32], tenant_id=tenant, trader_id=trader, decision="approve",
            note="identity document matches", reviewer="staff:j.martin", decided_at=T0))
        conn.execute(sa.insert(statements_table).values(
            id=f"s-{trader}"[:32], tenant_id=tenant, trader_id=trader, kind="rejection",
            automated=False, content={"facts": "VAT number invalid"}, created_at=T0))
        conn.execute(sa.insert(complaints_table).values(
            id=f"c-{trader}"[:32], tenant_id=tenant, trader_id=trader, text="I disagree",
            received_at=T0))


def disclose(log: EvidenceLog, traders: list[str], **kw: Any) -> D.Bundle:
    documents = kw.pop("documents", None) or DocumentService(log, DatabaseStorage(log),
                                                             max_bytes=1 << 20)
    return D.disclose(log, tenant=kw.pop("tenant", "default"), trader_ids=traders,
                      authority="DGCCRF", reference="2025-DSA-17",
                      legal_basis="DSA Art 30(6); order of 3 March 2025", actor="client:staff",
                      staff_id=None, key=KEY, documents=documents, **kw)


def members(zip_bytes: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def rezip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


def flipped(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


# -- the bundle ----------------------------------------------------------------------------------


def test_the_bundle_holds_the_declared_data_the_evidence_and_the_casework(
        evidence_log: EvidenceLog) -> None:
    seed(evidence_log)
    bundle = disclose(evidence_log, ["boulangerie-martin"], include_files=True)
    files = members(bundle.zip_bytes)
    assert list(files) == ["bundle.json", "report.html", "report.pdf",
                           "files/doc-boulangerie-martin", "manifest.json", "manifest.sig"]
    content = json.loads(files["bundle.json"])
    assert files["bundle.json"] == D.canonical(content)  # canonical JSON
    assert content["authority"] == "DGCCRF" and content["reference"] == "2025-DSA-17"
    dossier, = content["dossiers"]
    assert dossier["trader_id"] == "boulangerie-martin"
    verification, = dossier["verifications"]
    # the Art 30(1) data as declared, unsealed
    assert verification["declared"]["payment"]["iban"] == IBAN
    assert verification["declared"]["email"] == EMAIL
    assert verification["evidence"]["vies_consultation_number"] == "WAPIAAAAW1a2b3c4"
    assert verification["checks"]["payee"] == {"match": "MATCH"}
    assert [a["action"] for a in dossier["staff_actions"]] == ["reverify"]
    assert dossier["staff_actions"][0]["actor"] == "staff:j.martin"
    assert [r["decision"] for r in dossier["reviews"]] == ["approve"]
    assert [s["content"] for s in dossier["statements"]] == [{"facts": "VAT number invalid"}]
    assert [c["text"] for c in dossier["complaints"]] == ["I disagree"]
    document, = dossier["documents"]
    assert document["sha256"] == hashlib.sha256(DOC_BYTES).hexdigest()
    assert document["file"] == "files/doc-boulangerie-martin"
    assert files["files/doc-boulangerie-martin"] == DOC_BYTES  # opened, as uploaded
    # without include_files: metadata and hash only
    plain = members(disclose(evidence_log, ["boulangerie-martin"]).zip_bytes)
    assert not [n for n in plain if n.startswith("files/")]
    assert json.loads(plain["bundle.json"])["dossiers"][0]["documents"][0]["sha256"] == \
        document["sha256"]


def test_files_kept_outside_the_database_are_included_and_an_unreadable_one_is_named(
        evidence_log: EvidenceLog, tmp_path: Path) -> None:
    seed(evidence_log)
    storage = FilesystemStorage(tmp_path / "documents")
    key = "ab" * 16
    storage.put(key, Fernet(SEALING_KEYS.split(",")[0].encode()).encrypt(DOC_BYTES))
    with evidence_log.engine.begin() as conn:  # the document moved to the filesystem backend
        conn.execute(sa.update(documents_table).values(storage="filesystem", storage_key=key))
    documents = DocumentService(evidence_log, storage, max_bytes=1 << 20)
    files = members(disclose(evidence_log, ["boulangerie-martin"], include_files=True,
                             documents=documents).zip_bytes)
    assert files["files/doc-boulangerie-martin"] == DOC_BYTES
    # the file altered in its storage: not included, and the bundle says why
    storage.put(key, Fernet(SEALING_KEYS.split(",")[0].encode()).encrypt(b"%PDF-1.4 other"))
    files = members(disclose(evidence_log, ["boulangerie-martin"], include_files=True,
                             documents=documents).zip_bytes)
    assert "files/doc-boulangerie-martin" not in files
    document, = json.loads(files["bundle.json"])["dossiers"][0]["documents"]
    assert document["file"] is None and "SHA-256" in document["file_note"]


def test_the_pdf_and_the_html_report_name_the_trader_escaped(evidence_log: EvidenceLog) -> None:
    trader = "shop-<b>&co"
    seed(evidence_log, trader)
    files = members(disclose(evidence_log, [trader]).zip_bytes)
    assert files["report.pdf"].startswith(b"%PDF")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(files["report.pdf"])).pages)
    assert trader in text and "DGCCRF" in text and IBAN in text
    html = files["report.html"].decode()
    assert "shop-&lt;b&gt;&amp;co" in html and "<b>&co" not in html


def test_the_manifest_verifies_and_one_changed_byte_anywhere_fails(
        evidence_log: EvidenceLog, tmp_path: Path) -> None:
    seed(evidence_log)
    bundle = disclose(evidence_log, ["boulangerie-martin"], include_files=True)
    jwks = D.public_jwks(KEY.public_key())
    manifest = D.verify_bundle(bundle.zip_bytes, jwks)
    assert manifest["key_id"] == jwks["keys"][0]["kid"] and manifest["algorithm"] == "Ed25519"
    files = members(bundle.zip_bytes)
    assert set(manifest["files"]) == set(files) - {"manifest.json", "manifest.sig"}
    for name, data in files.items():
        for at in {0, len(data) // 2, len(data) - 1}:
            with pytest.raises(D.BundleInvalid):
                D.verify_bundle(rezip({**files, name: flipped(data, at)}), jwks)
    # a file left out, or one added
    with pytest.raises(D.BundleInvalid, match="missing"):
        D.verify_bundle(rezip({n: d for n, d in files.items() if n != "report.pdf"}), jwks)
    with pytest.raises(D.BundleInvalid, match="not listed"):
        D.verify_bundle(rezip({**files, "extra.txt": b"x"}), jwks)
    # the zip's own bytes: a flipped byte in a member's data breaks it too
    for at in range(40, len(bundle.zip_bytes) // 2, 997):
        with pytest.raises(D.BundleInvalid):
            D.verify_bundle(flipped(bundle.zip_bytes, at), jwks)
    # another key
    with pytest.raises(D.BundleInvalid, match="signature"):
        D.verify_bundle(bundle.zip_bytes, Ed25519PrivateKey.generate().public_key())
    # unpacked into a directory: verifies; one byte of any file changed on disk: fails
    directory = tmp_path / "bundle"
    D.write_directory(bundle, directory)
    pem = KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    assert D.verify_bundle(directory, pem)["disclosure_id"] == bundle.id
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        original = path.read_bytes()
        path.write_bytes(flipped(original, len(original) // 3))
        with pytest.raises(D.BundleInvalid):
            D.verify_bundle(directory, pem)
        path.write_bytes(original)
    assert D.verify_bundle(directory, pem)


def test_each_disclosure_is_logged(evidence_log: EvidenceLog) -> None:
    seed(evidence_log)
    bundle = disclose(evidence_log, ["boulangerie-martin"])
    entry, = evidence_log.disclosures(tenant="default")
    assert entry["id"] == bundle.id and entry["actor"] == "client:staff"
    assert entry["authority"] == "DGCCRF" and entry["reference"] == "2025-DSA-17"
    assert entry["legal_basis"] == "DSA Art 30(6); order of 3 March 2025"
    assert entry["trader_ids"] == ["boulangerie-martin"]
    assert entry["files"] == bundle.manifest["files"]
    assert entry["manifest_sha256"] == hashlib.sha256(
        members(bundle.zip_bytes)["manifest.json"]).hexdigest()
    assert evidence_log.disclosures(tenant="shop-b") == []


def test_the_signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="DISCLOSURE_SIGNING_KEY is not set"):
        D.signing_key(None, sandbox=False)
    with pytest.raises(ConfigError, match="public sandbox key"):
        D.signing_key(D.SANDBOX_KEY, sandbox=False)
    with pytest.raises(ConfigError, match="not an Ed25519"):
        D.signing_key("not a key", sandbox=False)
    own = Ed25519PrivateKey.generate()
    pem = own.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    raw = base64.b64encode(own.private_bytes(serialization.Encoding.Raw,
                                             serialization.PrivateFormat.Raw,
                                             serialization.NoEncryption())).decode()
    assert D.key_id(D.signing_key(pem, sandbox=False).public_key()) == D.key_id(own.public_key())
    assert D.key_id(D.signing_key(raw, sandbox=False).public_key()) == D.key_id(own.public_key())


# -- legal holds and the purge -------------------------------------------------------------------


def purge_settings(database_url: str) -> dict[str, Any]:
    """The settings ``trace30 purge`` runs with (every setting loaded, as the command does)."""
    return load({}, {"DATABASE_URL": database_url, "EVIDENCE_SEALING_KEYS": SEALING_KEYS,
                     "SANDBOX": True, "REDIS_URL": None})


def test_the_purge_skips_and_reports_held_traders_until_released(
        evidence_log: EvidenceLog, database_url: str) -> None:
    for trader in ("held-trader", "free-trader"):
        seed(evidence_log, trader)
        assert evidence_log.end_relationship(trader, ENDED, actor="client:shop",
                                             tenant="default")
    bundle = disclose(evidence_log, ["held-trader", "free-trader"], hold=True)
    assert evidence_log.release_hold("free-trader", tenant="default", by="client:staff")
    report = purge(purge_settings(database_url), retention_months=6, dry_run=False,
                   now=AFTER_RETENTION)
    held, free = trader_hash("held-trader", "default"), trader_hash("free-trader", "default")
    assert report.held == [held] and report.traders == [free]
    assert "Held (legal hold in force, skipped): 1 trader(s)" in report.summary()
    assert held in report.summary()
    assert evidence_log.history("held-trader", tenant="default")
    assert not evidence_log.history("free-trader", tenant="default")
    # the disclosures log keeps the row; the purged trader's id is its pseudonym now
    entry = evidence_log.disclosure(bundle.id, tenant="default")
    assert entry is not None and entry["trader_ids"] == ["held-trader", f"purged:{free}"]
    assert report.disclosures == 1

    assert evidence_log.release_hold("held-trader", tenant="default", by="client:staff")
    report = purge(purge_settings(database_url), retention_months=6, dry_run=False,
                   now=AFTER_RETENTION)
    assert report.held == [] and report.traders == [held]
    assert "Held (legal hold in force, skipped): 0" in report.summary()
    assert not evidence_log.history("held-trader", tenant="default")
    entry = evidence_log.disclosure(bundle.id, tenant="default")
    assert entry is not None and entry["trader_ids"] == [f"purged:{held}", f"purged:{free}"]
    with evidence_log.engine.connect() as conn:  # released holds go with the trader
        assert conn.execute(sa.select(sa.func.count()).select_from(legal_holds_table)).scalar() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(disclosures_table)).scalar() == 1


# -- the API -----------------------------------------------------------------------------------


@pytest.fixture
def gateway_config(gateway_config: dict) -> dict:
    return {**gateway_config, "EVIDENCE_SEALING_KEYS": SEALING_KEYS, "DISCLOSURE_MAX_TRADERS": 2}


def evidence(app: Flask) -> EvidenceLog:
    return app.extensions["trace30.gateway"].evidence


BODY = {"trader_ids": ["boulangerie-martin"], "authority": "DGCCRF", "reference": "2025-DSA-17",
        "legal_basis": "DSA Art 30(6)"}


def test_post_disclosures_answers_a_bundle_that_verifies_with_the_published_key(
        gateway: Flask, client: FlaskClient) -> None:
    seed(evidence(gateway))
    answer = client.post("/v1/disclosures", json={**BODY, "include_files": True, "hold": True},
                         headers=OPS)
    assert answer.status_code == 201, answer.get_json()
    assert answer.mimetype == "application/zip"
    disclosure_id = answer.headers["X-Trace30-Disclosure-Id"]
    published = client.get("/.well-known/trace30-disclosure-key")  # no credentials
    assert published.status_code == 200
    manifest = D.verify_bundle(answer.data, published.get_json())
    assert manifest["disclosure_id"] == disclosure_id and manifest["created_by"] == "client:staff"
    assert "files/doc-boulangerie-martin" in manifest["files"]
    with pytest.raises(D.BundleInvalid):
        files = members(answer.data)
        D.verify_bundle(rezip({**files, "bundle.json": flipped(files["bundle.json"], 10)}),
                        published.get_json())
    entry = client.get(answer.headers["Location"], headers=OPS).get_json()
    assert entry["authority"] == "DGCCRF" and entry["actor"] == "client:staff"
    assert entry["legal_basis"] == "DSA Art 30(6)"
    assert [e["id"] for e in client.get("/v1/disclosures", headers=OPS).get_json()[
        "disclosures"]] == [disclosure_id]
    hold = client.get("/v1/traders/boulangerie-martin/hold", headers=OPS).get_json()
    assert disclosure_id in hold["reason"] and hold["placed_by"] == "client:staff"


def problem(answer: Any, status: int) -> dict:
    assert answer.status_code == status, answer.get_data(as_text=True)
    assert answer.mimetype == "application/problem+json"
    return answer.get_json()


def test_post_disclosures_refuses_bad_requests_and_logs_nothing(
        gateway: Flask, client: FlaskClient) -> None:
    log = evidence(gateway)
    seed(log)
    seed(log, "other-shops-trader", tenant="shop-b")
    assert "authority" in problem(client.post("/v1/disclosures", json={**BODY, "authority": "  "},
                                              headers=OPS), 400)["errors"]
    missing = problem(client.post("/v1/disclosures", json={}, headers=OPS), 400)["errors"]
    assert {"trader_ids", "authority", "reference", "legal_basis"} <= set(missing)
    assert "trader_ids" in problem(client.post(
        "/v1/disclosures", json={**BODY, "trader_ids": ["a", "b", "c"]}, headers=OPS),
        400)["errors"]
    assert "trader_ids" in problem(client.post(
        "/v1/disclosures", json={**BODY, "trader_ids": []}, headers=OPS), 400)["errors"]
    # an unknown trader, and another tenant's, are the same 404 naming the field
    for trader in ("nobody", "other-shops-trader"):
        body = problem(client.post("/v1/disclosures",
                                   json={**BODY, "trader_ids": ["boulangerie-martin", trader]},
                                   headers=OPS), 404)
        assert body["errors"] == {"trader_ids": [f"Unknown trader: {trader}"]}
    # not an admin (a client without the ops scope)
    problem(client.post("/v1/disclosures", json=BODY, headers=ONBOARDING), 403)
    problem(client.post("/v1/traders/boulangerie-martin/hold", json={"reason": "x"},
                        headers=ONBOARDING), 403)
    assert log.disclosures(tenant="default") == [] and log.disclosures(tenant="shop-b") == []
    assert log.held_traders() == set()


def test_hold_routes(gateway: Flask, client: FlaskClient) -> None:
    log = evidence(gateway)
    seed(log)
    seed(log, "other-shops-trader", tenant="shop-b")
    url = "/v1/traders/boulangerie-martin/hold"
    assert "reason" in problem(client.post(url, json={}, headers=OPS), 400)["errors"]
    placed = client.post(url, json={"reason": "court order 17"}, headers=OPS)
    assert placed.status_code == 201 and placed.get_json()["reason"] == "court order 17"
    again = client.post(url, json={"reason": "another"}, headers=OPS)
    assert again.status_code == 200 and again.get_json()["id"] == placed.get_json()["id"]
    assert log.held_traders() == {("default", "boulangerie-martin")}
    problem(client.post("/v1/traders/other-shops-trader/hold", json={"reason": "x"},
                        headers=OPS), 404)
    problem(client.post("/v1/traders/nobody/hold", json={"reason": "x"}, headers=OPS), 404)
    assert client.delete(url, headers=OPS).get_json() == {"trader_id": "boulangerie-martin",
                                                          "released": True}
    problem(client.delete(url, headers=OPS), 404)
    problem(client.get(url, headers=OPS), 404)
    assert log.held_traders() == set()


def test_without_a_signing_key_outside_sandbox_nothing_is_disclosed(
        gateway: Flask, client: FlaskClient) -> None:
    seed(evidence(gateway))
    gateway.config["SANDBOX"] = False
    gateway.config["DISCLOSURE_SIGNING_KEY"] = None
    body = problem(client.post("/v1/disclosures", json=BODY, headers=OPS), 503)
    assert "TRACE30_DISCLOSURE_SIGNING_KEY" in body["detail"]
    problem(client.get("/.well-known/trace30-disclosure-key"), 503)
    assert evidence(gateway).disclosures(tenant="default") == []


# -- the command line ------------------------------------------------------------------------------


def trace30(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("TRACE30_")}
    return subprocess.run([sys.executable, "-m", "trace30.cli", *args], env={**full, **env},
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
def test_cli_export_verify_hold_and_purge(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cli.sqlite3"
    env = {"TRACE30_SANDBOX": "1", "TRACE30_DATABASE_URL": url,
           "TRACE30_EVIDENCE_SEALING_KEYS": SEALING_KEYS}
    log = EvidenceLog(url, SEALING_KEYS)
    log.migrate()
    seed(log)
    assert log.end_relationship("boulangerie-martin", ENDED, actor="client:shop",
                                tenant="default")
    out = tmp_path / "bundle.zip"
    made = trace30("export", "--trader", "boulangerie-martin", "--authority", "DGCCRF",
                   "--reference", "2025-DSA-17", "--legal-basis", "DSA Art 30(6)", "--hold",
                   "--by", "staff:a.admin", "--out", str(out), env=env)
    assert made.returncode == 0, made.stderr
    assert "legal hold placed" in made.stdout
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(D.public_jwks(KEY.public_key())))
    ok = trace30("export", "--verify", str(out), "--public-key", str(key_file), env=env)
    assert ok.returncode == 0 and ok.stdout.startswith("OK: disclosure"), ok.stderr
    files = members(out.read_bytes())
    bad = tmp_path / "bad.zip"
    bad.write_bytes(rezip({**files, "report.pdf": flipped(files["report.pdf"], 100)}))
    refused = trace30("export", "--verify", str(bad), "--public-key", str(key_file), env=env)
    assert refused.returncode == 1 and "INVALID: report.pdf" in refused.stderr
    entry, = log.disclosures(tenant="default")
    assert entry["actor"] == "staff:a.admin" and entry["authority"] == "DGCCRF"
    # blank authority: refused, nothing logged
    blank = trace30("export", "--trader", "boulangerie-martin", "--authority", " ",
                    "--reference", "r", "--legal-basis", "b", "--out", str(tmp_path / "b.zip"),
                    env=env)
    assert blank.returncode == 2 and "--authority" in blank.stderr
    unknown = trace30("export", "--trader", "nobody", "--authority", "A", "--reference", "r",
                      "--legal-basis", "b", "--out", str(tmp_path / "u.zip"), env=env)
    assert unknown.returncode == 1 and "Unknown trader" in unknown.stderr
    assert len(log.disclosures(tenant="default")) == 1
    # the purge skips the held trader and says so; released, it is purged
    purged = trace30("purge", env=env)
    assert purged.returncode == 0, purged.stderr
    assert "Held (legal hold in force, skipped): 1" in purged.stdout
    assert log.history("boulangerie-martin", tenant="default")
    released = trace30("export", "--release-hold", "--trader", "boulangerie-martin", env=env)
    assert "hold released" in released.stdout
    purged = trace30("purge", env=env)
    assert "1 trader(s) deleted" in purged.stdout and "skipped): 0" in purged.stdout
    assert not log.history("boulangerie-martin", tenant="default")
    log.close()


def test_a_hold_placed_after_the_purge_listed_the_trader_still_wins(
        evidence_log: EvidenceLog, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The purge checks the hold again in the transaction that deletes: a hold placed between
    its first look and the delete keeps the trader, and it is reported as held."""
    seed(evidence_log, "late-hold")
    assert evidence_log.end_relationship("late-hold", ENDED, actor="client:shop",
                                         tenant="default")
    evidence_log.place_hold("late-hold", tenant="default", reason="DSC request 42",
                            by="client:staff")
    with pytest.raises(TraderHeld):
        evidence_log.purge_trader("late-hold", tenant="default")
    assert evidence_log.history("late-hold", tenant="default")
    # the purge's first look misses the hold (placed "just after" it): the delete still sees it
    monkeypatch.setattr(EvidenceLog, "hold", lambda self, trader_id, *, tenant: None)
    report = purge(purge_settings(database_url), retention_months=6, dry_run=False,
                   now=AFTER_RETENTION)
    held = trader_hash("late-hold", "default")
    assert report.held == [held] and report.traders == []
    assert evidence_log.history("late-hold", tenant="default")
