"""Account fingerprints: a keyed HMAC of the account, so that one account can be recognised.

The gateway uses the fingerprint to spot one account used by many traders without ever storing
the IBAN. It is HMAC-SHA256, keyed with ``TRACE30_PAYMENT_FINGERPRINT_KEY``, over the
normalised IBAN (:func:`services.payment.ibans.compact`), in hex. Without the key nobody can
test guesses against a fingerprint (an IBAN has little entropy: a plain hash would be reversed
by trying the accounts of a bank). Changing the key changes every fingerprint, so the key is
set once per deployment and kept like a password.

An account without an IBAN (:mod:`.accounts`) is fingerprinted the same way over its kind and
what identifies it: ``account`` + the BIC's first 8 characters (institution, country, location:
the same bank whichever branch code is given) + the account number, or ``other`` + the
reference. The parts are joined with a unit separator, which no IBAN holds, so no such
fingerprint can equal an IBAN's.
"""

from __future__ import annotations

import hashlib
import hmac

from shared.config import SETTINGS, require_secret
from shared.errors import ConfigError

#: The key used in sandbox when none is configured (documented; never valid outside sandbox).
SANDBOX_KEY: str = SETTINGS["PAYMENT_FINGERPRINT_KEY"].sandbox_default
#: The shortest key accepted outside sandbox, in characters.
MIN_KEY_LENGTH = 32


class Fingerprinter:
    """Fingerprints IBANs with one key; build one per process."""

    def __init__(self, key: str) -> None:
        if not key:
            raise ConfigError("the fingerprint key is empty")
        # HMAC's key schedule done once; each fingerprint copies it (half the cost of hmac.new).
        self._base = hmac.new(key.encode(), digestmod=hashlib.sha256)

    def __call__(self, iban: str) -> str:
        """The fingerprint of the normalised ``iban`` (64 hex characters).

        >>> f = Fingerprinter("k" * 32)
        >>> f("DE89370400440532013000") == f("DE89370400440532013000")
        True
        >>> len(f("DE89370400440532013000")), f("DE89370400440532013000")[:12]
        (64, '5a8e57d7ec78')
        """
        mac = self._base.copy()
        mac.update(iban.encode())
        return mac.hexdigest()

    def account(self, bic: str, number: str) -> str:
        """The fingerprint of account ``number`` at the bank of ``bic`` (compacted, 8 or 11
        characters: the branch code does not count).

        >>> f = Fingerprinter("k" * 32)
        >>> f.account("CHASUS33", "123456789") == f.account("CHASUS33XXX", "123456789")
        True
        >>> f.account("CHASUS33", "123456789") == f.account("BOFAUS3N", "123456789")
        False
        """
        return self("account\x1f" + bic[:8] + "\x1f" + number)

    def other(self, reference: str) -> str:
        """The fingerprint of a wallet or processor ``reference`` (compacted).

        >>> f = Fingerprinter("k" * 32)
        >>> f.other("seller@example.com") == f("seller@example.com")
        False
        """
        return self("other\x1f" + reference)


def check_key(key: str | None, *, sandbox: bool) -> str:
    """Return the key to use, or raise :class:`ConfigError` saying what to set.

    >>> check_key(None, sandbox=True) == SANDBOX_KEY
    True
    >>> check_key(None, sandbox=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    shared.errors.ConfigError: TRACE30_PAYMENT_FINGERPRINT_KEY is not set. ...
    """
    return require_secret(
        "PAYMENT_FINGERPRINT_KEY", key, sandbox=sandbox, min_length=MIN_KEY_LENGTH,
        purpose="the payment service needs it to fingerprint accounts",
        keep=" and keep it: changing it changes every fingerprint",
    )
