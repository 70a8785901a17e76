"""Where the sealed document files are kept: the :class:`DocumentStorage` interface and its
three backends, chosen by ``TRACE30_GATEWAY_DOCUMENT_STORAGE``.

- :class:`DatabaseStorage` (``database``, the default): the evidence log's ``document_blobs``
  table; the purge's SQL transaction deletes the blobs with the trader.
- :class:`FilesystemStorage` (``filesystem``): one file per document under
  ``TRACE30_GATEWAY_DOCUMENT_DIR``, written atomically (a temporary file in the same folder,
  ``fsync``, then ``os.replace``), mode 0600 in folders of mode 0700.
- :class:`S3Storage` (``s3``): an S3-compatible bucket through boto3, with connect and read
  timeouts and no retries of its own beyond boto3's standard mode.

A backend only ever sees *sealed* bytes (Fernet tokens made with the evidence sealing keys, see
:mod:`services.gateway.documents`) and keys made by :func:`new_key` (32 lowercase hex digits),
checked again by every backend: a key never names a path outside its folder or prefix.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from services.gateway.evidence.db import Database
from services.gateway.evidence.schema import document_blobs_table
from shared.errors import ConfigError

BACKENDS = ("database", "filesystem", "s3")
_KEY = re.compile(r"[0-9a-f]{32}")


class StorageError(Exception):
    """The storage could not keep, give or delete a file (an I/O or network fault)."""


class DocumentMissing(StorageError):
    """No file is stored under the key."""


def new_key() -> str:
    """A fresh storage key: 32 random lowercase hex digits."""
    return secrets.token_hex(16)


def check_key(key: str) -> str:
    """``key`` if it is a storage key (32 lowercase hex digits), else ``ValueError``.

    >>> check_key("0" * 32) == "0" * 32
    True
    >>> check_key("../../etc/passwd")
    Traceback (most recent call last):
    ...
    ValueError: not a document storage key
    """
    if not _KEY.fullmatch(key):
        raise ValueError("not a document storage key")
    return key


class DocumentStorage(Protocol):
    """Keeps sealed document files by key."""

    #: The backend's name, stored with each document (``documents.storage``).
    name: str

    def put(self, key: str, sealed: bytes) -> None:
        """Keep ``sealed`` under ``key`` (a new key: never overwrites another document)."""

    def get(self, key: str) -> bytes:
        """The sealed bytes under ``key``; :class:`DocumentMissing` if there are none."""

    def delete(self, key: str) -> None:
        """Delete the file under ``key``; nothing if there is none."""


class DatabaseStorage:
    """Sealed files in the evidence log's ``document_blobs`` table."""

    name = "database"

    def __init__(self, database: Database) -> None:
        self._db = database

    def put(self, key: str, sealed: bytes) -> None:
        with self._db._write() as conn:
            conn.execute(sa.insert(document_blobs_table).values(storage_key=check_key(key),
                                                                content=sealed))

    def get(self, key: str) -> bytes:
        b = document_blobs_table
        with self._db._read() as conn:
            content = conn.execute(sa.select(b.c.content)
                                   .where(b.c.storage_key == check_key(key))).scalar()
        if content is None:
            raise DocumentMissing(key)
        return bytes(content)

    def delete(self, key: str) -> None:
        b = document_blobs_table
        with self._db._write() as conn:
            conn.execute(sa.delete(b).where(b.c.storage_key == check_key(key)))


class FilesystemStorage:
    """Sealed files in a folder: ``<root>/<first two digits of the key>/<key>``."""

    name = "filesystem"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        key = check_key(key)
        return self.root / key[:2] / key

    def put(self, key: str, sealed: bytes) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")  # mode 0600
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(sealed)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as e:
            raise StorageError(f"the document folder could not be written: {e.strerror}") from e

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as e:
            raise DocumentMissing(key) from e
        except OSError as e:
            raise StorageError(f"the document folder could not be read: {e.strerror}") from e

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as e:
            raise StorageError(f"a document file could not be deleted: {e.strerror}") from e


class S3Storage:
    """Sealed files as objects of an S3-compatible bucket, under a key prefix."""

    name = "s3"

    def __init__(self, bucket: str, *, prefix: str = "", endpoint_url: str | None = None,
                 region: str | None = None, access_key_id: str | None = None,
                 secret_access_key: str | None = None, timeout_s: float = 10.0) -> None:
        import boto3  # only deployments that choose S3 pay for importing it
        from botocore.config import Config

        self.bucket, self.prefix = bucket, prefix
        self._client: Any = boto3.client(
            "s3", endpoint_url=endpoint_url, region_name=region,
            aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key,
            config=Config(connect_timeout=timeout_s, read_timeout=timeout_s,
                          retries={"mode": "standard", "max_attempts": 3}))

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put(self, key: str, sealed: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=sealed,
                                    ContentType="application/octet-stream")
        except (BotoCoreError, ClientError) as e:
            raise StorageError(f"the S3 store refused the document: {type(e).__name__}") from e

    def get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=self._key(key))
            return bytes(answer["Body"].read())
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise DocumentMissing(key) from e
            raise StorageError(f"the S3 store did not give the document: {type(e).__name__}") from e
        except BotoCoreError as e:
            raise StorageError(f"the S3 store did not give the document: {type(e).__name__}") from e

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as e:
            raise StorageError(f"the S3 store did not delete a document: {type(e).__name__}") from e


def build_storage(config: Mapping[str, Any], database: Database) -> DocumentStorage:
    """The backend ``TRACE30_GATEWAY_DOCUMENT_STORAGE`` names, configured; no I/O."""
    backend = config["GATEWAY_DOCUMENT_STORAGE"]
    if backend == "database":
        return DatabaseStorage(database)
    if backend == "filesystem":
        return FilesystemStorage(config["GATEWAY_DOCUMENT_DIR"])
    if backend == "s3":
        if not config["GATEWAY_DOCUMENT_S3_BUCKET"]:
            raise ConfigError("TRACE30_GATEWAY_DOCUMENT_STORAGE is 's3' but "
                              "TRACE30_GATEWAY_DOCUMENT_S3_BUCKET is not set.")
        return S3Storage(
            config["GATEWAY_DOCUMENT_S3_BUCKET"], prefix=config["GATEWAY_DOCUMENT_S3_PREFIX"],
            endpoint_url=config["GATEWAY_DOCUMENT_S3_ENDPOINT_URL"],
            region=config["GATEWAY_DOCUMENT_S3_REGION"],
            access_key_id=config["GATEWAY_DOCUMENT_S3_ACCESS_KEY_ID"],
            secret_access_key=config["GATEWAY_DOCUMENT_S3_SECRET_ACCESS_KEY"],
            timeout_s=config["GATEWAY_DOCUMENT_S3_TIMEOUT_S"])
    raise ConfigError(f"TRACE30_GATEWAY_DOCUMENT_STORAGE must be one of {', '.join(BACKENDS)}, "
                      f"not {backend!r}.")
