"""Named staff accounts of a marketplace (tenant), kept on the ``staff`` table (migration 0008).

A staff member signs in on the dashboard with a username and password; every action recorded
afterwards names them (``staff:<username>``, :mod:`services.gateway.actors`). Passwords are
hashed with argon2id (``argon2-cffi``'s :class:`~argon2.PasswordHasher`, the library's
RFC 9106 defaults); only the hash is stored, and a hash made with older parameters is replaced
at the next successful sign-in. An unknown username costs the same time as a wrong password
(the password is checked against a dummy hash), so sign-in does not tell which usernames
exist. A disabled account cannot sign in, and its open sessions stop at their next request.

Staff are not trader data: the retention purge never touches this table.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from services.gateway.evidence.db import Database, _utcnow
from services.gateway.evidence.schema import STAFF_ROLES, staff_table
from shared.inputs import check_text

#: A username: a short lower-case slug (letters, digits, dot, dash, underscore), 2 to 64.
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
#: A tenant id, as the API keys' configuration names it.
TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
DISPLAY_NAME_MAX = 255
#: The shortest password accepted, and the longest (argon2 takes any length; a cap keeps a
#: megabyte "password" from costing a megabyte of hashing).
PASSWORD_MIN = 12
PASSWORD_MAX = 1024


class StaffError(ValueError):
    """A staff account that cannot be added or changed; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class StaffMember:
    """One staff account (never its password hash)."""

    id: str
    tenant: str
    username: str
    display_name: str
    role: str
    created_at: datetime
    disabled_at: datetime | None

    @property
    def active(self) -> bool:
        return self.disabled_at is None

    def as_dict(self) -> dict[str, str | None]:
        return {"id": self.id, "tenant": self.tenant, "username": self.username,
                "display_name": self.display_name, "role": self.role,
                "created_at": self.created_at.isoformat(),
                "disabled_at": self.disabled_at.isoformat() if self.disabled_at else None}


def check_username(username: str) -> str:
    """``username`` if it is a valid username, else :class:`StaffError`.

    >>> check_username("j.martin")
    'j.martin'
    >>> check_username("Jean Martin")
    Traceback (most recent call last):
    ...
    services.gateway.evidence.staff.StaffError: username: Use 2 to 64 lower-case letters, \
digits, '.', '-' or '_', starting with a letter or digit.
    """
    if not USERNAME.fullmatch(username):
        raise StaffError("username", "Use 2 to 64 lower-case letters, digits, '.', '-' or '_', "
                         "starting with a letter or digit.")
    return username


def check_password(password: str) -> None:
    """Raise :class:`StaffError` unless ``password`` is long enough and fit text."""
    if len(password) < PASSWORD_MIN:
        raise StaffError("password", f"Use at least {PASSWORD_MIN} characters.")
    if len(password) > PASSWORD_MAX:
        raise StaffError("password", f"Use at most {PASSWORD_MAX} characters.")
    try:
        check_text(password, max_length=PASSWORD_MAX, single_line=True)
    except Exception as e:  # marshmallow.ValidationError: never repeats the value
        raise StaffError("password", " ".join(getattr(e, "messages", [str(e)]))) from None


def _check(tenant: str, display_name: str, role: str) -> None:
    if not TENANT.fullmatch(tenant):
        raise StaffError("tenant", "Not a tenant id (letters, digits, '.', '-', '_').")
    try:
        check_text(display_name, max_length=DISPLAY_NAME_MAX, single_line=True, blank=False)
    except Exception as e:
        raise StaffError("display_name", " ".join(getattr(e, "messages", [str(e)]))) from None
    if role not in STAFF_ROLES:
        raise StaffError("role", f"Must be one of: {', '.join(STAFF_ROLES)}.")


def _member(row: sa.RowMapping) -> StaffMember:
    return StaffMember(id=row["id"], tenant=row["tenant_id"], username=row["username"],
                       display_name=row["display_name"], role=row["role"],
                       created_at=row["created_at"], disabled_at=row["disabled_at"])


_COLUMNS = (staff_table.c.id, staff_table.c.tenant_id, staff_table.c.username,
            staff_table.c.display_name, staff_table.c.role, staff_table.c.created_at,
            staff_table.c.disabled_at)


class Staff(Database):
    """Staff accounts: add, disable, list, authenticate."""

    @cached_property
    def password_hasher(self) -> PasswordHasher:
        """argon2id with the library's recommended parameters (RFC 9106, low memory)."""
        return PasswordHasher()

    @cached_property
    def _dummy_hash(self) -> str:
        # Checked against when the username is unknown, so both cost one argon2 verification.
        return self.password_hasher.hash(uuid.uuid4().hex)

    def add_staff(self, *, tenant: str, username: str, display_name: str, role: str,
                  password: str) -> StaffMember:
        """Create an account; :class:`StaffError` if a value is not acceptable or the
        username is taken in the tenant."""
        check_username(username)
        _check(tenant, display_name, role)
        check_password(password)
        member = StaffMember(id=uuid.uuid4().hex, tenant=tenant, username=username,
                             display_name=display_name.strip(), role=role,
                             created_at=_utcnow(), disabled_at=None)
        values = {"id": member.id, "tenant_id": tenant, "username": username,
                  "display_name": member.display_name, "role": role,
                  "password_hash": self.password_hasher.hash(password),
                  "created_at": member.created_at}
        try:
            with self._write() as conn:
                conn.execute(sa.insert(staff_table).values(**values))
        except sa.exc.IntegrityError:
            raise StaffError("username", f"{username} already exists in tenant {tenant}.") \
                from None
        return member

    def disable_staff(self, *, tenant: str, username: str) -> StaffMember | None:
        """Disable an account (it cannot sign in; its sessions end); None if unknown.

        Disabling an account already disabled keeps the first time it was disabled.
        """
        s = staff_table
        with self._write() as conn:
            conn.execute(sa.update(s).where(s.c.tenant_id == tenant, s.c.username == username,
                                            s.c.disabled_at.is_(None))
                         .values(disabled_at=_utcnow()))
            row = conn.execute(sa.select(*_COLUMNS).where(
                s.c.tenant_id == tenant, s.c.username == username)).mappings().first()
        return _member(row) if row else None

    def list_staff(self, tenant: str | None = None) -> list[StaffMember]:
        """Every account (of ``tenant``, or of every tenant), by tenant and username."""
        s = staff_table
        query = sa.select(*_COLUMNS).order_by(s.c.tenant_id, s.c.username)
        if tenant is not None:
            query = query.where(s.c.tenant_id == tenant)
        with self._read() as conn:
            return [_member(row) for row in conn.execute(query).mappings()]

    def staff_member(self, staff_id: str) -> StaffMember | None:
        """The account with this id (disabled or not), or None."""
        with self._read() as conn:
            row = conn.execute(sa.select(*_COLUMNS).where(
                staff_table.c.id == staff_id)).mappings().first()
        return _member(row) if row else None

    def authenticate(self, *, tenant: str | None, username: str,
                     password: str) -> StaffMember | None:
        """The active account whose password this is, or None (unknown username, wrong
        password, disabled account: the caller cannot tell which, nor by the time taken).

        ``tenant`` None: the username is looked up in every tenant, and must be unique there.
        A hash made with other parameters than the hasher's is replaced by a new one.
        """
        s = staff_table
        query = sa.select(*_COLUMNS, s.c.password_hash).where(s.c.username == username)
        if tenant is not None:
            query = query.where(s.c.tenant_id == tenant)
        with self._read() as conn:
            rows = conn.execute(query.limit(2)).mappings().all()
        row = rows[0] if len(rows) == 1 and len(password) <= PASSWORD_MAX else None
        stored = row["password_hash"] if row else self._dummy_hash
        try:
            self.password_hasher.verify(stored, password[:PASSWORD_MAX])
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None or row["disabled_at"] is not None:
            return None
        if self.password_hasher.check_needs_rehash(stored):
            with self._write() as conn:
                conn.execute(sa.update(s).where(s.c.id == row["id"], s.c.password_hash == stored)
                             .values(password_hash=self.password_hasher.hash(password)))
        return _member(row)
