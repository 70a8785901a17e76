"""Disclosure bundles for authorities (DSA Art 30(6)): one bundle per request, signed.

A bundle is a zip (members in a fixed order, fixed timestamps) of:

- ``bundle.json``: canonical JSON (sorted keys, no spaces, UTF-8) of each trader's dossier
  (:meth:`services.gateway.evidence.EvidenceLog.dossier`): the Art 30(1) data as declared,
  unsealed; every verification with its checks and evidence (VIES/HMRC consultation numbers,
  register records, payee answers); documents' metadata and SHA-256; staff actions; reviews
  (decisions), statements of reasons, complaints and legal holds;
- ``report.html``: the same as a printable page (Jinja, escaped);
- ``report.pdf``: that page printed by WeasyPrint;
- ``files/<document id>``: with ``include_files``, each document's file, read from the storage
  backend that keeps it (database, filesystem or S3), unsealed and checked against its
  SHA-256 (:meth:`DocumentService.content`); a file that cannot be read is listed in
  ``bundle.json`` with ``file: null`` and a ``file_note`` saying why;
- ``manifest.json``: canonical JSON ``{files: {name: sha256}, authority, reference,
  legal_basis, created_at, created_by, traders, tenant, disclosure_id, key_id}``;
- ``manifest.sig``: the base64 Ed25519 signature of the bytes of ``manifest.json``.

The signing key is ``TRACE30_DISCLOSURE_SIGNING_KEY``; its public key is served, without
authentication, at :data:`WELL_KNOWN_PATH` (a JWK set: OKP/Ed25519 with its ``kid``, the
:func:`key_id` named by every manifest). :func:`verify_bundle` (``trace30 export --verify``) is
what an authority runs: the signature over the manifest, the key id, then every file's hash;
one changed byte anywhere fails it.

The bundle is not kept: the request that makes it gets it, and the ``disclosures`` log keeps
who, to whom, when, under what basis, which traders and each file's hash (so a bundle shown
later can be matched against the log).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import uuid
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from jinja2 import Environment, PackageLoader, select_autoescape

from services.gateway.documents import DocumentService, StorageError
from services.gateway.evidence import EvidenceLog
from services.gateway.sealing import SealingError
from shared.config import ENV_PREFIX, SETTINGS
from shared.errors import ConfigError, NotFound

log = logging.getLogger("trace30.gateway.disclosures")

WELL_KNOWN_PATH = "/.well-known/trace30-disclosure-key"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
#: The sandbox signing key: public (its text is in shared/config.py), refused outside sandbox.
SANDBOX_KEY: str = SETTINGS["DISCLOSURE_SIGNING_KEY"].sandbox_default
#: The zip members' timestamp: fixed, so the same files make the same zip.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class BundleInvalid(ValueError):
    """A bundle that does not verify; the message says what is wrong (never its content)."""


# -- keys -------------------------------------------------------------------------------------


def parse_private_key(text: str) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM (PKCS#8) or the base64 of its 32 raw bytes.

    >>> key_id(parse_private_key(SANDBOX_KEY).public_key())
    'ae20194585bdbe88'
    """
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(text, validate=True))
    except (ValueError, TypeError, UnicodeEncodeError) as e:
        raise ConfigError(f"{ENV_PREFIX}DISCLOSURE_SIGNING_KEY is not an Ed25519 private key "
                          "(PEM, or the base64 of 32 raw bytes).") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{ENV_PREFIX}DISCLOSURE_SIGNING_KEY is not an Ed25519 key.")
    return key


def signing_key(value: str | None, *, sandbox: bool) -> Ed25519PrivateKey:
    """The configured signing key; :class:`ConfigError` (saying what to do) if there is none
    outside sandbox, or it is the public sandbox key."""
    env = f"{ENV_PREFIX}DISCLOSURE_SIGNING_KEY"
    if not value:
        if sandbox:
            return parse_private_key(SANDBOX_KEY)
        raise ConfigError(
            f"{env} is not set: disclosures cannot be signed. Make a key with `python -c "
            "'import base64,os; print(base64.b64encode(os.urandom(32)).decode())'` (or an "
            "Ed25519 PEM) and set it.")
    key = parse_private_key(value)
    if not sandbox and _raw(key.public_key()) == _raw(parse_private_key(SANDBOX_KEY).public_key()):
        raise ConfigError(f"{env} is the public sandbox key: outside sandbox use a key of "
                          "your own.")
    return key


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def key_id(public: Ed25519PublicKey) -> str:
    """The key's id: the first 16 hex digits of the SHA-256 of its 32 raw bytes."""
    return hashlib.sha256(_raw(public)).hexdigest()[:16]


def public_jwks(public: Ed25519PublicKey) -> dict[str, Any]:
    """The JWK set (RFC 7517, RFC 8037) published at :data:`WELL_KNOWN_PATH`."""
    return {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": _b64url(_raw(public)),
                      "kid": key_id(public), "use": "sig", "alg": "EdDSA"}]}


def public_key_of(value: Any) -> Ed25519PublicKey:
    """A public key from an :class:`Ed25519PublicKey`, a JWK or JWK set (dict or JSON text),
    or PEM text; ValueError if it is none of them."""
    if isinstance(value, Ed25519PublicKey):
        return value
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode("ascii"))
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError("not an Ed25519 public key")
            return key
        value = json.loads(text)
    if isinstance(value, Mapping):
        jwk = value["keys"][0] if "keys" in value else value
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            raise ValueError("not an OKP/Ed25519 JWK")
        x = str(jwk["x"])
        return Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(x + "=" * (-len(x) % 4)))
    raise ValueError("not a public key")


# -- building ---------------------------------------------------------------------------------


def canonical(document: Any) -> bytes:
    """Canonical JSON: sorted keys, no insignificant space, UTF-8.

    >>> canonical({"b": 1, "a": "é"})
    b'{"a":"\\xc3\\xa9","b":1}'
    """
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode("utf-8")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_templates = Environment(loader=PackageLoader("services.gateway", "templates"),
                         autoescape=select_autoescape(default=True, default_for_string=True))
_templates.filters["pretty"] = lambda value: json.dumps(
    value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class Bundle:
    """One disclosure: its id, the zip, its manifest and each file's SHA-256."""

    id: str
    zip_bytes: bytes
    manifest: dict[str, Any]
    manifest_sha256: str

    @property
    def filename(self) -> str:
        return f"trace30-disclosure-{self.id}.zip"


def _file_of(documents: DocumentService, doc_id: str, tenant: str) -> tuple[bytes | None, str]:
    """A document's plain file, read from whichever storage keeps it and checked against its
    SHA-256; (None, why not) when it cannot be read."""
    try:
        return documents.content(documents.get(doc_id, tenant=tenant)), ""
    except NotFound:
        return None, "the document is gone"
    except StorageError as e:
        return None, f"its storage could not give it: {e}"
    except SealingError:  # a ValueError: before the next
        return None, "cannot be opened with the configured sealing keys, or does not match " \
                     "its SHA-256"
    except ValueError:
        return None, "its storage key is not valid"


def build(evidence: EvidenceLog, *, tenant: str, trader_ids: list[str], authority: str,
          reference: str, legal_basis: str, created_by: str, key: Ed25519PrivateKey,
          documents: DocumentService | None = None, include_files: bool = False,
          now: datetime | None = None) -> Bundle:
    """Assemble and sign the bundle of ``trader_ids`` (the tenant's, each known: the caller
    checked). With ``include_files``, each document's file is read through ``documents``
    (whatever storage backend keeps it). Nothing is written."""
    if include_files and documents is None:
        raise ValueError("include_files needs the document service")
    now = (now or datetime.now(UTC)).astimezone(UTC)
    disclosure_id = uuid.uuid4().hex
    dossiers = []
    attached: dict[str, bytes] = {}
    for trader_id in trader_ids:
        dossier = evidence.dossier(trader_id, tenant=tenant)
        for document in dossier["documents"] if include_files else ():
            assert documents is not None  # checked above
            data, why = _file_of(documents, document["id"], tenant)
            if data is None:
                document["file"], document["file_note"] = None, why
            else:
                attached[f"files/{document['id']}"] = data
                document["file"] = f"files/{document['id']}"
        dossiers.append(dossier)
    header = {"disclosure_id": disclosure_id, "authority": authority, "reference": reference,
              "legal_basis": legal_basis, "created_at": now.isoformat(),
              "created_by": created_by, "tenant": tenant, "traders": list(trader_ids),
              "include_files": include_files}
    content = {**header, "dossiers": dossiers}
    html = _templates.get_template("disclosures/report.html").render(
        bundle=content, key_id=key_id(key.public_key()))
    files: dict[str, bytes] = {
        "bundle.json": canonical(content),
        "report.html": html.encode("utf-8"),
        "report.pdf": _pdf(html),
        **dict(sorted(attached.items())),
    }
    manifest = {**header, "files": {name: sha256(data) for name, data in files.items()},
                "key_id": key_id(key.public_key()), "algorithm": "Ed25519"}
    manifest_bytes = canonical(manifest)
    signature = base64.b64encode(key.sign(manifest_bytes))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in [*files.items(), (MANIFEST, manifest_bytes), (SIGNATURE, signature)]:
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return Bundle(disclosure_id, out.getvalue(), manifest, sha256(manifest_bytes))


def _pdf(html: str) -> bytes:
    from weasyprint import HTML  # imported when used: it loads Pango

    return bytes(HTML(string=html).write_pdf())


def disclose(evidence: EvidenceLog, *, tenant: str, trader_ids: list[str], authority: str,
             reference: str, legal_basis: str, actor: str, staff_id: str | None,
             key: Ed25519PrivateKey, documents: DocumentService | None = None,
             include_files: bool = False, hold: bool = False) -> Bundle:
    """Build the bundle, log the disclosure and (with ``hold``) place a legal hold on each
    trader; the bundle."""
    bundle = build(evidence, tenant=tenant, trader_ids=trader_ids, authority=authority,
                   reference=reference, legal_basis=legal_basis, created_by=actor, key=key,
                   documents=documents, include_files=include_files)
    evidence.log_disclosure(
        tenant=tenant, actor=actor, staff_id=staff_id, authority=authority, reference=reference,
        legal_basis=legal_basis, trader_ids=trader_ids, files=bundle.manifest["files"],
        manifest_sha256=bundle.manifest_sha256, key_id=bundle.manifest["key_id"],
        at=datetime.fromisoformat(bundle.manifest["created_at"]), disclosure_id=bundle.id)
    if hold:
        for trader_id in trader_ids:
            evidence.place_hold(trader_id, tenant=tenant, by=actor,
                                reason=f"disclosure {bundle.id} to {authority} ({reference})")
    log.info("disclosure %s of %d trader(s) of tenant %s made by %s (key %s)%s", bundle.id,
             len(trader_ids), tenant, actor, bundle.manifest["key_id"],
             "; legal hold placed" if hold else "",
             extra={"disclosure": bundle.id, "tenant": tenant, "traders": len(trader_ids),
                    "actor": actor, "hold": hold})
    return bundle


# -- verifying --------------------------------------------------------------------------------


def _members(bundle: bytes | str | Path) -> dict[str, bytes]:
    """The files of a bundle: a zip (bytes or path) or a directory of its files."""
    if not isinstance(bundle, bytes) and Path(bundle).is_dir():
        root = Path(bundle)
        return {p.relative_to(root).as_posix(): p.read_bytes()
                for p in sorted(root.rglob("*")) if p.is_file()}
    data = bundle if isinstance(bundle, bytes) else Path(bundle).read_bytes()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
            if len(names) != len(set(names)):
                raise BundleInvalid("the zip holds two members of the same name")
            return {name: zf.read(name) for name in names if not name.endswith("/")}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError, ValueError,
            KeyError, NotImplementedError, UnicodeDecodeError) as e:
        if isinstance(e, BundleInvalid):
            raise
        raise BundleInvalid(f"not a readable zip ({type(e).__name__}: {e})") from e


def verify_bundle(bundle: bytes | str | Path, public_key: Any) -> dict[str, Any]:
    """Check a bundle against the publisher's public key (see :func:`public_key_of`); its
    manifest if the signature and every file's SHA-256 hold, :class:`BundleInvalid`
    otherwise (a changed byte in any file, the manifest or the signature; a file missing,
    added or renamed)."""
    public = public_key_of(public_key)
    members = _members(bundle)
    if MANIFEST not in members or SIGNATURE not in members:
        raise BundleInvalid(f"the bundle has no {MANIFEST} or no {SIGNATURE}")
    manifest_bytes = members.pop(MANIFEST)
    try:
        signature = base64.b64decode(members.pop(SIGNATURE).strip(), validate=True)
        public.verify(signature, manifest_bytes)
    except (InvalidSignature, ValueError) as e:
        raise BundleInvalid("the manifest's signature does not verify with this key") from e
    manifest = json.loads(manifest_bytes)
    if manifest.get("key_id") != key_id(public):
        raise BundleInvalid("the manifest names another key")
    listed: dict[str, str] = manifest.get("files") or {}
    if set(listed) != set(members):
        raise BundleInvalid(f"files differ from the manifest: missing "
                            f"{sorted(set(listed) - set(members))}, not listed "
                            f"{sorted(set(members) - set(listed))}")
    for name, digest in listed.items():
        if sha256(members[name]) != digest:
            raise BundleInvalid(f"{name} does not match its SHA-256 in the manifest")
    checked: dict[str, Any] = manifest
    return checked


def write_directory(bundle: Bundle, directory: Path) -> None:
    """Unpack a bundle into ``directory`` (created; it must be empty or absent)."""
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        raise FileExistsError(f"{directory} is not empty")
    with zipfile.ZipFile(io.BytesIO(bundle.zip_bytes)) as zf:
        for name in zf.namelist():
            target = directory / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(name))
