"""Supporting documents (issue 12 point 2): typed by content, limited in size, sealed at rest
behind each storage backend, name check, expiry, tenant isolation, roles, the purge.

The S3 backend is tested against moto's server mode on loopback (real HTTP, boto3 unmocked).
"""

from __future__ import annotations

import hashlib
import io
import json
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient
from moto.server import ThreadedMotoServer

from services.gateway import actors, create_app, shutdown
from services.gateway.documents import DocumentService, StorageError, Upload, content_type_of
from services.gateway.documents.storage import (
    DatabaseStorage,
    FilesystemStorage,
    S3Storage,
    build_storage,
)
from services.gateway.evidence import EvidenceLog
from services.gateway.evidence.schema import (
    document_blobs_table,
    documents_table,
    staff_actions_table,
)
from shared.config import load
from shared.errors import ConfigError
from shared.redis_client import Store
from tests.conftest import INTERNAL_TOKEN, free_port
from tests.gateway.conftest import API_KEY, OPS, OPS_KEY
from tests.gateway.evidence_fixtures import make_record
from trace30.retention import purge

TRADER = "doc-trader-1"
NAME = "Acme Trading GmbH"
PDF = (b"%PDF-1.4\n1 0 obj<< /Type /Catalog >>endobj\nxref\n0 1\ntrailer<< /Root 1 0 R >>\n"
       b"startxref\n9\n%%EOF\n")
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000") + b"\x00" * 64 + b"\xff\xd9"
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00"
       b"\x00\x90wS\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00"
       b"\x00\x00\x00IEND\xaeB`\x82")
ONBOARDING_AUTH = {"Authorization": f"Bearer {API_KEY}"}
MAX = 4096  # a small limit for the tests
SEALING_KEYS = Fernet.generate_key().decode()


def api_keys() -> str:
    return json.dumps([
        {"id": "shop", "key": API_KEY, "scopes": ["onboarding"]},
        {"id": "staff", "key": OPS_KEY, "scopes": ["ops", "batch"]},
        {"id": "other-staff", "key": "other-tenant-ops-key", "scopes": ["ops"],
         "tenant": "other"},
    ])


@pytest.fixture
def config(store: Store, tmp_path: Path) -> dict[str, Any]:
    return {
        "TESTING": True, "SANDBOX": True, "INTERNAL_TOKEN": INTERNAL_TOKEN,
        "REDIS_STORE": store, "DATABASE_URL": f"sqlite:///{tmp_path}/evidence.sqlite3",
        "GATEWAY_API_KEYS": api_keys(), "GATEWAY_BACKGROUND": False,
        "GATEWAY_DOCUMENT_MAX_BYTES": MAX, "GATEWAY_DOCUMENT_DIR": str(tmp_path / "docs"),
    }


def make_app(config: dict[str, Any]) -> Flask:
    app = create_app(config)
    log: EvidenceLog = app.extensions["trace30.gateway"].evidence
    log.save(make_record("v-doc-1", TRADER,
                         submission={"trader_id": TRADER, "name": NAME,
                                     "address": {"country_code": "DE"}}),
             private_submission={"trader_id": TRADER, "name": NAME, "email": "a@acme.example",
                                 "address": {"country_code": "DE"}})
    return app


@pytest.fixture
def app(config: dict[str, Any]) -> Iterator[Flask]:
    app = make_app(config)
    yield app
    shutdown(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def evidence(app: Flask) -> EvidenceLog:
    return app.extensions["trace30.gateway"].evidence


def documents(app: Flask) -> DocumentService:
    return app.extensions["trace30.documents"]


def upload(client: FlaskClient, content: bytes = PDF, *, trader: str = TRADER,
           headers: dict[str, str] | None = None, filename: str = "doc.pdf",
           content_type: str = "application/pdf", **fields: str) -> Any:
    data: dict[str, Any] = {"kind": "register_extract", **fields}
    if content is not None:
        data["file"] = (io.BytesIO(content), filename, content_type)
    return client.post(f"/v1/traders/{trader}/documents", data=data,
                       headers=headers if headers is not None else OPS,
                       content_type="multipart/form-data")


def problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True)[:500])
    assert resp.mimetype == "application/problem+json"
    return resp.get_json()


def rows(app: Flask, table: sa.Table) -> list[dict[str, Any]]:
    with evidence(app).engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table)).mappings()]


def nothing_stored(app: Flask) -> bool:
    actions = [a for a in rows(app, staff_actions_table) if a["action"] == "document_uploaded"]
    return not rows(app, documents_table) and not rows(app, document_blobs_table) \
        and not actions


# -- typing by content ---------------------------------------------------------------------------


@pytest.mark.parametrize(("content", "expected"), [
    (PDF, "application/pdf"), (JPEG, "image/jpeg"), (PNG, "image/png")],
    ids=["pdf", "jpeg", "png"])
def test_pdf_jpeg_and_png_are_accepted_typed_by_their_content(
        client: FlaskClient, app: Flask, content: bytes, expected: str) -> None:
    # the declared type and name say otherwise: the bytes decide
    resp = upload(client, content, filename="scan.txt", content_type="text/plain",
                  issuing_country="de", name_shown=NAME)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    doc = resp.get_json()
    assert doc["content_type"] == expected and doc["size_bytes"] == len(content)
    assert doc["sha256"] == hashlib.sha256(content).hexdigest()
    assert doc["issuing_country"] == "DE" and doc["uploaded_by"] == "client:staff"
    assert resp.headers["Location"] == f"/v1/documents/{doc['id']}"
    assert client.get(resp.headers["Location"], headers=OPS).get_json()["sha256"] == doc["sha256"]
    got = client.get(doc["content_url"], headers=OPS)
    assert got.status_code == 200 and got.data == content and got.mimetype == expected


@pytest.mark.parametrize(("content", "filename", "declared"), [
    (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "a.gif", "image/gif"),
    (b"<!doctype html><script>alert(1)</script>", "a.pdf", "application/pdf"),
    (b"PK\x03\x04\x14\x00\x00\x00\x08\x00", "a.zip", "application/zip"),
    (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff", "passport.pdf", "application/pdf"),
    (b"%PDF-1.7 truncated, no end of file marker", "cut.pdf", "application/pdf"),
], ids=["gif", "html", "zip", "renamed-exe", "pdf-without-eof"])
def test_other_types_are_refused_whatever_they_declare(
        client: FlaskClient, app: Flask, content: bytes, filename: str, declared: str) -> None:
    doc = problem(upload(client, content, filename=filename, content_type=declared), 400)
    assert doc["errors"] == {"file": ["Must be a PDF, JPEG or PNG file."]}
    assert nothing_stored(app)


def test_an_empty_or_missing_file_is_a_400_naming_file(client: FlaskClient, app: Flask) -> None:
    assert problem(upload(client, b""), 400)["errors"] == {"file": ["Empty."]}
    doc = problem(upload(client, None), 400)  # type: ignore[arg-type]
    assert list(doc["errors"]) == ["file"]
    assert nothing_stored(app)


def test_content_type_of_needs_the_whole_signature() -> None:
    assert content_type_of(b"\x89PNG\r\n\x1a\n") is None  # no IHDR
    assert content_type_of(b"\xff\xd8\xff") is None
    assert content_type_of(b"") is None


# -- size ----------------------------------------------------------------------------------------


def test_an_oversized_file_is_a_413(client: FlaskClient, app: Flask) -> None:
    # the body fits the route's limit (file limit + form overhead), the file does not
    doc = problem(upload(client, PDF[:-7] + b"x" * MAX + b"\n%%EOF\n"), 413)
    assert doc["errors"] == {"file": [f"Larger than {MAX} bytes."]}
    assert upload(client, PDF[:-7] + b"x" * (MAX - len(PDF)) + b"\n%%EOF\n").status_code == 201


def test_an_oversized_body_is_a_413_before_it_is_read(client: FlaskClient, app: Flask) -> None:
    limit = MAX + 64 * 1024
    big = b"x" * (limit + 1)
    # declared length: refused on the header (the body is never read: an unreadable stream)
    class Unreadable(io.BytesIO):
        def read(self, *_: Any) -> bytes:
            raise AssertionError("the body was read")

        readline = read

    declared = {"CONTENT_LENGTH": str(limit + 1),
                "CONTENT_TYPE": "multipart/form-data; boundary=x"}
    resp = client.post(f"/v1/traders/{TRADER}/documents", input_stream=Unreadable(),
                       headers=OPS, environ_overrides=declared)
    assert problem(resp, 413)["errors"] == {"body": [f"Larger than {limit} bytes."]}
    # chunked: cut off once it passes the limit
    resp = client.post(f"/v1/traders/{TRADER}/documents", input_stream=io.BytesIO(big),
                       headers={**OPS, "Transfer-Encoding": "chunked",
                                "Content-Type": "multipart/form-data; boundary=x"},
                       environ_overrides={"wsgi.input_terminated": True})
    assert problem(resp, 413)["errors"] == {"body": [f"Larger than {limit} bytes."]}
    # the dashboard's upload has the same limit
    resp = client.post(f"/ops/traders/{TRADER}/documents", input_stream=Unreadable(),
                       environ_overrides=declared)
    assert problem(resp, 413)["errors"] == {"body": [f"Larger than {limit} bytes."]}
    assert nothing_stored(app)


def test_the_limit_defaults_to_ten_mebibytes() -> None:
    assert load({}, {"SANDBOX": True})["GATEWAY_DOCUMENT_MAX_BYTES"] == 10 * 1024 * 1024


# -- fields, expiry, name check ------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "field"), [
    ({"kind": "selfie"}, "kind"),
    ({"kind": ""}, "kind"),
    ({"issuing_country": "XX"}, "issuing_country"),
    ({"issuing_country": "DEU"}, "issuing_country"),
    ({"expires_on": "31/12/2030"}, "expires_on"),
    ({"expires_on": "1999-12-31"}, "expires_on"),
    ({"expires_on": "9999-12-31"}, "expires_on"),
    ({"name_shown": "Acme\x07 GmbH"}, "name_shown"),
    ({"name_shown": "Acme\x00GmbH"}, "name_shown"),
    ({"name_shown": "x" * 201}, "name_shown"),
    ({"name_shown": "   "}, "name_shown"),
])
def test_bad_fields_are_a_400_naming_the_field(client: FlaskClient, app: Flask,
                                               fields: dict[str, str], field: str) -> None:
    doc = problem(upload(client, **fields), 400)
    assert list(doc["errors"]) == [field], doc
    assert "\x00" not in json.dumps(doc) and "\x07" not in json.dumps(doc)
    assert nothing_stored(app)


def test_a_missing_kind_is_a_400(client: FlaskClient, app: Flask) -> None:
    resp = client.post(f"/v1/traders/{TRADER}/documents", headers=OPS,
                       data={"file": (io.BytesIO(PDF), "a.pdf")},
                       content_type="multipart/form-data")
    assert list(problem(resp, 400)["errors"]) == ["kind"]


@pytest.mark.parametrize("kind", ["identity_document", "eid_assertion"])
def test_an_expired_identity_document_is_refused_and_nothing_stored(
        client: FlaskClient, app: Flask, kind: str) -> None:
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    doc = problem(upload(client, kind=kind, expires_on=yesterday), 400)
    assert doc["errors"] == {"expires_on": ["Expired: expired documents cannot support "
                                            "30(1)(b)."]}
    assert nothing_stored(app)
    # a register extract past its date is still evidence of what the register said then
    assert upload(client, kind="register_extract", expires_on=yesterday).status_code == 201
    today = datetime.now(UTC).date().isoformat()
    assert upload(client, kind=kind, expires_on=today).status_code == 201


def test_a_different_name_is_flagged_document_name_mismatch(client: FlaskClient,
                                                            app: Flask) -> None:
    same = upload(client, kind="identity_document", name_shown="ACME TRADING GMBH").get_json()
    assert same["name_check"]["match"] is True and same["reasons"] == []
    other = upload(client, kind="identity_document", name_shown="Zenith Logistics Ltd")
    assert other.status_code == 201
    doc = other.get_json()
    assert doc["name_check"]["match"] is False and doc["name_check"]["score"] < 0.7
    assert [r["code"] for r in doc["reasons"]] == ["DOCUMENT_NAME_MISMATCH"]
    assert doc["reasons"][0]["item"] == "30(1)(b)"
    again = client.get(f"/v1/documents/{doc['id']}", headers=OPS).get_json()
    assert [r["code"] for r in again["reasons"]] == ["DOCUMENT_NAME_MISMATCH"]
    unnamed = upload(client).get_json()
    assert unnamed["name_check"]["match"] is None
    codes = [r["code"] for r in client.get("/v1/reasons", headers=OPS).get_json()["reasons"]]
    assert "DOCUMENT_NAME_MISMATCH" in codes


def test_the_upload_is_a_staff_action_and_listed(client: FlaskClient, app: Flask) -> None:
    doc = upload(client, name_shown=NAME).get_json()
    [action] = [a for a in rows(app, staff_actions_table) if a["action"] == "document_uploaded"]
    assert action["actor"] == "client:staff" and action["trader_id"] == TRADER
    assert action["verification_id"] == "v-doc-1"
    assert action["detail"] == {"document_id": doc["id"], "kind": "register_extract",
                                "sha256": doc["sha256"]}
    listed = client.get(f"/v1/traders/{TRADER}/documents", headers=OPS).get_json()
    assert [d["id"] for d in listed["documents"]] == [doc["id"]]
    assert listed["documents"][0]["name_shown"] == NAME


# -- sealed at rest, each backend ----------------------------------------------------------------


def test_sealed_in_the_database(client: FlaskClient, app: Flask) -> None:
    doc = upload(client, name_shown=NAME).get_json()
    [row] = rows(app, documents_table)
    [blob] = rows(app, document_blobs_table)
    assert row["storage"] == "database" and blob["storage_key"] == row["storage_key"]
    assert PDF not in blob["content"] and b"%PDF" not in blob["content"]
    assert NAME not in (row["name_shown"] or "") and row["name_shown"]
    assert row["sha256"] == hashlib.sha256(PDF).hexdigest() == doc["sha256"]
    raw = Path(evidence(app).engine.url.database or "").read_bytes()
    assert PDF not in raw and NAME.encode() not in raw


def test_documents_open_after_a_key_rotation_and_not_without_their_key(
        config: dict[str, Any]) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    app = make_app({**config, "EVIDENCE_SEALING_KEYS": old})
    try:
        doc = upload(app.test_client()).get_json()
    finally:
        shutdown(app)
    for keys, status in ((f"{new},{old}", 200), (new, 409)):
        app = create_app({**config, "EVIDENCE_SEALING_KEYS": keys})
        try:
            resp = app.test_client().get(doc["content_url"], headers=OPS)
            assert resp.status_code == status
            assert resp.data == PDF if status == 200 else PDF not in resp.data
        finally:
            shutdown(app)


def test_filesystem_storage_round_trip_sealed_and_private(config: dict[str, Any],
                                                          tmp_path: Path) -> None:
    app = make_app({**config, "GATEWAY_DOCUMENT_STORAGE": "filesystem"})
    try:
        client = app.test_client()
        doc = upload(client, JPEG).get_json()
        [row] = rows(app, documents_table)
        assert row["storage"] == "filesystem" and not rows(app, document_blobs_table)
        [path] = [p for p in (tmp_path / "docs").rglob("*") if p.is_file()]
        assert path.name == row["storage_key"]
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert JPEG not in path.read_bytes()
        assert client.get(doc["content_url"], headers=OPS).data == JPEG
    finally:
        shutdown(app)


def test_filesystem_keys_never_leave_the_folder(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path)
    for key in ("../../etc/passwd", "/etc/passwd", "AB" * 16, "0" * 31, "0" * 32 + "/x"):
        with pytest.raises(ValueError, match="not a document storage key"):
            storage.put(key, b"x")
        with pytest.raises(ValueError):
            storage.get(key)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """moto's S3 in server mode on loopback: its endpoint URL."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def s3_settings(endpoint: str, bucket: str) -> dict[str, Any]:
    return {"GATEWAY_DOCUMENT_STORAGE": "s3", "GATEWAY_DOCUMENT_S3_BUCKET": bucket,
            "GATEWAY_DOCUMENT_S3_ENDPOINT_URL": endpoint,
            "GATEWAY_DOCUMENT_S3_REGION": "us-east-1",
            "GATEWAY_DOCUMENT_S3_ACCESS_KEY_ID": "testing",
            "GATEWAY_DOCUMENT_S3_SECRET_ACCESS_KEY": "testing"}


def s3_client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def s3_objects(endpoint: str, bucket: str) -> dict[str, bytes]:
    s3 = s3_client(endpoint)
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def test_s3_storage_round_trip_sealed(config: dict[str, Any], s3_server: str) -> None:
    s3_client(s3_server).create_bucket(Bucket="docs-roundtrip")
    app = make_app({**config, **s3_settings(s3_server, "docs-roundtrip")})
    try:
        client = app.test_client()
        doc = upload(client, PNG).get_json()
        [row] = rows(app, documents_table)
        objects = s3_objects(s3_server, "docs-roundtrip")
        assert list(objects) == [f"trace30-documents/{row['storage_key']}"]
        assert PNG not in next(iter(objects.values()))
        assert client.get(doc["content_url"], headers=OPS).data == PNG
    finally:
        shutdown(app)


def test_s3_needs_a_bucket_and_an_unknown_backend_is_refused(tmp_path: Path) -> None:
    log = EvidenceLog(f"sqlite:///{tmp_path}/e.sqlite3", SEALING_KEYS)
    settings = load({}, {"SANDBOX": True})
    with pytest.raises(ConfigError, match="S3_BUCKET"):
        build_storage({**settings, "GATEWAY_DOCUMENT_STORAGE": "s3"}, log)
    with pytest.raises(ConfigError, match="database, filesystem, s3"):
        build_storage({**settings, "GATEWAY_DOCUMENT_STORAGE": "ftp"}, log)
    assert isinstance(build_storage(settings, log), DatabaseStorage)


# -- nothing half-stored -------------------------------------------------------------------------


class FailingStorage:
    name = "database"

    def __init__(self) -> None:
        self.deleted: list[str] = []

    def put(self, key: str, sealed: bytes) -> None:
        raise StorageError("the disk is full")

    def get(self, key: str) -> bytes:
        raise AssertionError("not stored")

    def delete(self, key: str) -> None:
        self.deleted.append(key)


def test_a_failing_storage_stores_nothing_and_answers_503(client: FlaskClient,
                                                          app: Flask) -> None:
    documents(app).storage = FailingStorage()
    resp = upload(client)
    assert problem(resp, 503)["detail"].startswith("The document storage is unavailable")
    assert "Retry-After" in resp.headers
    assert nothing_stored(app)


def test_a_failing_row_deletes_the_file_again(client: FlaskClient, app: Flask,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> None:
        raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(evidence(app), "add_document", broken)
    assert upload(client).status_code == 503
    assert nothing_stored(app)  # the blob written first was deleted again


# -- tenants, roles, headers ---------------------------------------------------------------------


def test_another_tenant_sees_nothing(client: FlaskClient, app: Flask) -> None:
    doc = upload(client).get_json()
    other = {"Authorization": "Bearer other-tenant-ops-key"}
    for url in (f"/v1/documents/{doc['id']}", f"/v1/documents/{doc['id']}/content",
                f"/v1/traders/{TRADER}/documents"):
        problem(client.get(url, headers=other), 404)
    problem(upload(client, headers=other), 404)
    problem(upload(client, trader="no-such-trader"), 404)
    assert len(rows(app, documents_table)) == 1


def test_the_file_needs_the_ops_scope_and_is_served_safely(client: FlaskClient,
                                                           app: Flask) -> None:
    doc = upload(client, headers=ONBOARDING_AUTH).get_json()  # the marketplace may upload
    assert doc["uploaded_by"] == "client:shop"
    assert client.get(f"/v1/documents/{doc['id']}", headers=ONBOARDING_AUTH).status_code == 200
    problem(client.get(doc["content_url"], headers=ONBOARDING_AUTH), 403)
    resp = client.get(doc["content_url"], headers=OPS)
    assert resp.status_code == 200 and resp.data == PDF
    assert resp.headers["Content-Disposition"] == (
        f'attachment; filename="register_extract-{doc["id"]}.pdf"')
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Content-Security-Policy"].startswith("sandbox; default-src 'none'")
    assert resp.headers["Cache-Control"] == "no-store"


def test_openapi_documents_the_routes(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    post = spec["paths"]["/v1/traders/{trader_id}/documents"]["post"]
    assert "multipart/form-data" in post["requestBody"]["content"]
    assert {"/v1/documents/{document_id}", "/v1/documents/{document_id}/content"} <= set(
        spec["paths"])


# -- dashboard -----------------------------------------------------------------------------------


def sign_in(client: FlaskClient) -> str:
    page = client.get("/ops/login").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    assert client.post("/ops/login", data={"api_key": OPS_KEY,
                                           "csrf_token": token}).status_code == 303
    page = client.get(f"/ops/traders/{TRADER}").get_data(as_text=True)
    return page.split('name="csrf_token" value="')[1].split('"')[0]


def test_dashboard_upload_lists_and_serves_the_document(client: FlaskClient, app: Flask) -> None:
    csrf = sign_in(client)
    page = client.get(f"/ops/traders/{TRADER}").get_data(as_text=True)
    assert '<section id="documents">' in page and "Upload document" in page
    for control in ("document-file", "document-kind", "document-country", "document-expires",
                    "document-name"):
        assert f'<label for="{control}">' in page
    resp = client.post(f"/ops/traders/{TRADER}/documents", content_type="multipart/form-data",
                       data={"csrf_token": csrf, "kind": "identity_document",
                             "issuing_country": "DE", "expires_on": "2031-01-31",
                             "name_shown": "Zenith Logistics Ltd",
                             "file": (io.BytesIO(PNG), "id.png", "image/png")})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("#documents")
    [doc] = evidence(app).documents(TRADER, tenant="default")
    assert doc.uploaded_by == "client:staff" and doc.content_type == "image/png"
    page = client.get(f"/ops/traders/{TRADER}").get_data(as_text=True)
    assert f'href="/ops/documents/{doc.id}"' in page and "DOCUMENT_NAME_MISMATCH" in page
    assert doc.sha256[:16] in page and "Zenith" not in page.split('id="documents"')[0]
    got = client.get(f"/ops/documents/{doc.id}")
    assert got.status_code == 200 and got.data == PNG
    assert got.headers["Content-Security-Policy"].startswith("sandbox")
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert "attachment" in got.headers["Content-Disposition"]


def test_dashboard_upload_needs_csrf_and_names_bad_fields(client: FlaskClient,
                                                          app: Flask) -> None:
    csrf = sign_in(client)
    resp = client.post(f"/ops/traders/{TRADER}/documents", content_type="multipart/form-data",
                       data={"kind": "other", "file": (io.BytesIO(PDF), "a.pdf")})
    assert list(problem(resp, 400)["errors"]) == ["csrf_token"]
    resp = client.post(f"/ops/traders/{TRADER}/documents", content_type="multipart/form-data",
                       data={"csrf_token": csrf, "kind": "other",
                             "file": (io.BytesIO(b""), "")})  # no file chosen
    assert list(problem(resp, 400)["errors"]) == ["file"]
    resp = client.post(f"/ops/traders/{TRADER}/documents", content_type="multipart/form-data",
                       data={"csrf_token": csrf, "kind": "nope",
                             "file": (io.BytesIO(PDF), "a.pdf")})
    assert list(problem(resp, 400)["errors"]) == ["kind"]
    assert nothing_stored(app)


def test_a_viewer_cannot_upload_or_open_documents(client: FlaskClient, app: Flask,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    doc = upload(client).get_json()
    csrf = sign_in(client)
    real = actors.of_client

    def viewer(c: Any) -> actors.Actor:
        return actors.Actor(kind="client", name=c.id, tenant=c.tenant, role="viewer") \
            if c.id == "staff" else real(c)

    monkeypatch.setattr(actors, "of_client", viewer)
    page = client.get(f"/ops/traders/{TRADER}").get_data(as_text=True)
    assert "register extract" in page and "/ops/documents/" not in page
    assert "Upload document" not in page
    problem(client.get(f"/ops/documents/{doc['id']}"), 403)
    resp = client.post(f"/ops/traders/{TRADER}/documents", content_type="multipart/form-data",
                       data={"csrf_token": csrf, "kind": "other",
                             "file": (io.BytesIO(PDF), "a.pdf")})
    problem(resp, 403)
    assert len(rows(app, documents_table)) == 1


# -- purge ---------------------------------------------------------------------------------------


def _purge_case(tmp_path: Path, extra: dict[str, Any], url: str | None = None
                ) -> tuple[EvidenceLog, DocumentService, dict[str, Any]]:
    url = url or f"sqlite:///{tmp_path}/purge.sqlite3"
    settings = load({}, {"SANDBOX": False, "EVIDENCE_SEALING_KEYS": SEALING_KEYS,
                         "DATABASE_URL": url, "REDIS_URL": None,
                         "GATEWAY_DOCUMENT_DIR": str(tmp_path / "docs"), **extra})
    log = EvidenceLog(url, SEALING_KEYS)
    log.migrate()
    service = DocumentService(log, build_storage(settings, log), max_bytes=MAX)
    now = datetime.now(UTC)
    for vid, tid in (("v-old", "old"), ("v-new", "new")):
        log.save(make_record(vid, tid, created_at=now - timedelta(days=400)))
        for content in (PDF, PNG):
            service.upload(tid, Upload(kind="other"), io.BytesIO(content), tenant="default",
                           actor="client:staff")
    assert log.end_relationship("old", now - timedelta(days=300), tenant="default")
    return log, service, settings


def _check_purge(log: EvidenceLog, service: DocumentService, settings: dict[str, Any],
                 files: Any) -> None:
    old = [d.storage_key for d in log.documents("old", tenant="default")]
    new = [d.storage_key for d in log.documents("new", tenant="default")]
    assert len(old) == len(new) == 2 and set(old) | set(new) <= files()
    dry = purge(settings, retention_months=6, dry_run=True)
    assert dry.sql["documents"] == 2 and set(old) | set(new) <= files()
    done = purge(settings, retention_months=6, dry_run=False)
    assert done.sql["documents"] == 2
    assert not set(old) & files() and set(new) <= files()
    assert log.documents("old", tenant="default") == []
    assert [d.storage_key for d in log.documents("new", tenant="default")] == new
    assert {service.content(d) for d in log.documents("new", tenant="default")} == {PDF, PNG}
    if service.storage.name != "database":
        assert dry.document_files == done.document_files == 2
        assert "Document files" in done.summary()


def test_purge_deletes_the_files_of_the_database_storage(tmp_path: Path,
                                                         database_url: str) -> None:
    """On SQLite and PostgreSQL (bytea blobs, dates)."""
    log, service, settings = _purge_case(tmp_path, {}, database_url)

    def files() -> set[str]:
        with log.engine.connect() as conn:
            return set(conn.execute(sa.select(document_blobs_table.c.storage_key)).scalars())

    try:
        _check_purge(log, service, settings, files)
    finally:
        log.close()


def test_purge_deletes_the_files_of_the_filesystem_storage(tmp_path: Path) -> None:
    log, service, settings = _purge_case(tmp_path, {"GATEWAY_DOCUMENT_STORAGE": "filesystem"})

    def files() -> set[str]:
        return {p.name for p in (tmp_path / "docs").rglob("*") if p.is_file()}

    try:
        _check_purge(log, service, settings, files)
    finally:
        log.close()


def test_purge_deletes_the_files_of_the_s3_storage(tmp_path: Path, s3_server: str) -> None:
    s3_client(s3_server).create_bucket(Bucket="docs-purge")
    log, service, settings = _purge_case(tmp_path, s3_settings(s3_server, "docs-purge"))

    def files() -> set[str]:
        return {k.removeprefix("trace30-documents/")
                for k in s3_objects(s3_server, "docs-purge")}

    try:
        _check_purge(log, service, settings, files)
    finally:
        log.close()


def test_s3_storage_errors_are_storage_errors(s3_server: str) -> None:
    storage = S3Storage("no-such-bucket", endpoint_url=s3_server, region="us-east-1",
                        access_key_id="testing", secret_access_key="testing", timeout_s=2)
    with pytest.raises(StorageError):
        storage.put("0" * 32, b"sealed")
    with pytest.raises(StorageError):
        storage.get("0" * 32)
