"""The verdict policy: which reason codes reject, which send to review, which only inform.

What a reason does to the verdict is the marketplace's policy, not a law of nature: a
marketplace may want a close payee match to reject, or a register it cannot check online to
pass with a note. ``TRACE30_GATEWAY_POLICY`` names a JSON or YAML file mapping reason codes to
an action; the codes it leaves out keep their default (:data:`DEFAULT_ACTIONS`, from the
catalogue in :mod:`services.gateway.reasons`)::

    # policy.yaml
    PAYEE_NAME_CLOSE_MATCH: reject
    REGISTER_UNVERIFIABLE: info

Actions: ``reject`` (the reason's severity is ``error``: the verdict is ``rejected``),
``review`` (``warning``: ``needs_review``), ``info`` (recorded, changes nothing). The codes of
an upstream fault (severity ``pending``: VIES or a register did not answer) are not the
policy's: an upstream fault is never a verdict, so a policy naming one of them is refused.

The file is read and checked once, at start-up: an unreadable file, an unknown code or an
unknown action stops the gateway with a :class:`~shared.errors.ConfigError` naming it. The
policy in force is identified by :attr:`Policy.sha256`, the SHA-256 of its canonical JSON
(every code with its action, keys sorted), whatever file wrote it: each verdict stores it
(``evidence.policy_sha256``) and ``GET /v1/reasons`` shows it with every code's action.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from services.gateway.reasons import CATALOGUE
from shared.errors import ConfigError

#: action -> the severity a reason gets under it
SEVERITY_OF_ACTION = {"reject": "error", "review": "warning", "info": "info"}
ACTIONS = tuple(SEVERITY_OF_ACTION)
_ACTION_OF_SEVERITY = {v: k for k, v in SEVERITY_OF_ACTION.items()}
#: The severity of upstream faults, which no policy changes.
PENDING = "pending"

#: code -> default action (``pending`` for the codes of upstream faults).
DEFAULT_ACTIONS: dict[str, str] = {
    code: _ACTION_OF_SEVERITY.get(r.severity, PENDING) for code, r in CATALOGUE.items()
}

ENV = "TRACE30_GATEWAY_POLICY"


@dataclass(frozen=True)
class Policy:
    """The action of every reason code; ``source`` is the file it was read from (None: the
    defaults)."""

    actions: Mapping[str, str]
    source: str | None = None

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the canonical JSON of every code's action."""
        canonical = json.dumps(dict(self.actions), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def severity(self, code: str) -> str:
        """The severity reason ``code`` has under this policy.

        >>> DEFAULT_POLICY.severity("VAT_NOT_IN_VIES"), DEFAULT_POLICY.severity("VAT_INVALID")
        ('warning', 'error')
        >>> DEFAULT_POLICY.severity("VAT_UNAVAILABLE")
        'pending'
        """
        action = self.actions[code]
        return PENDING if action == PENDING else SEVERITY_OF_ACTION[action]

    def describe(self) -> dict[str, Any]:
        """The policy as ``GET /v1/reasons`` shows it."""
        return {
            "sha256": self.sha256,
            "source": "default" if self.source is None else ENV,
            "overrides": {code: action for code, action in sorted(self.actions.items())
                          if action != DEFAULT_ACTIONS[code]},
        }


DEFAULT_POLICY = Policy(DEFAULT_ACTIONS)


def from_mapping(mapping: Any, source: str | None = None) -> Policy:
    """The policy of ``{code: action}`` over the defaults; :class:`ConfigError` naming every
    unknown code, unknown action or upstream-fault code.

    >>> from_mapping({"PAYEE_NAME_CLOSE_MATCH": "reject"}).severity("PAYEE_NAME_CLOSE_MATCH")
    'error'
    >>> from_mapping({"VAT_UNAVAILABLE": "reject"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    shared.errors.ConfigError: TRACE30_GATEWAY_POLICY: VAT_UNAVAILABLE is an upstream fault: ...
    """
    where = f"{ENV} ({source})" if source else ENV
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{where} must map reason codes to an action ({', '.join(ACTIONS)}), "
                          f"e.g. {{\"REGISTER_UNVERIFIABLE\": \"info\"}}; got a "
                          f"{type(mapping).__name__}.")
    problems = []
    for code, action in mapping.items():
        if code not in CATALOGUE:
            problems.append(f"{code!r} is not a reason code (GET /v1/reasons lists them)")
        elif DEFAULT_ACTIONS[code] == PENDING:
            problems.append(f"{code} is an upstream fault: it is always pending, never a "
                            "verdict, so no policy can set it")
        elif action not in ACTIONS:
            problems.append(f"{code}: {action!r} is not an action ({', '.join(ACTIONS)})")
    if problems:
        raise ConfigError(f"{where}: " + "; ".join(problems) + ".")
    return Policy({**DEFAULT_ACTIONS, **dict(mapping)}, source)


def load(path: str | None) -> Policy:
    """The policy in the JSON or YAML file ``path`` (``.json``: JSON, anything else: YAML,
    which also reads JSON); the defaults when ``path`` is empty."""
    if not path:
        return DEFAULT_POLICY
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{ENV}: cannot read {path} ({type(e).__name__}); set it to a "
                          "readable JSON or YAML file, or unset it for the default policy.") from e
    try:
        mapping = json.loads(text) if path.lower().endswith(".json") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"{ENV}: {path} is not valid "
                          f"{'JSON' if path.lower().endswith('.json') else 'YAML'}: "
                          f"{str(e).splitlines()[0]}") from e
    return from_mapping(mapping, path)
