"""Settings of every trace30 service, read from ``TRACE30_*`` environment variables.

One table, :data:`SETTINGS`, names every setting with its default and what it is for, so no
service copies configuration of its own. :func:`init_app` layers, lowest first: the defaults, the
environment (``TRACE30_SANDBOX=1`` becomes ``app.config["SANDBOX"] = True``), then the ``config``
mapping handed to the service's ``create_app``. Values are coerced to the default's type and a
bad value stops start-up with a :class:`~shared.errors.ConfigError` that names the variable.

A compound setting (a list of delays, per-state caps, the API keys' JSON) has a ``parse``
function: it is parsed and checked here, once, when the settings are loaded, and the services
read the parsed value (a tuple of seconds, a dict of caps, a tuple of
:class:`~shared.clients.Client`), never the text.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask

from shared.clients import check_rate_limit, parse_api_keys
from shared.errors import ConfigError
from shared.metrics import parse_exposure, parse_networks

ENV_PREFIX = "TRACE30_"

#: Real public endpoints are the production defaults; sandbox points at the project's simulators.
VIES_PRODUCTION_URL = "https://ec.europa.eu/taxation_customs/vies/services/checkVatService"
VIES_SANDBOX_URL = "http://127.0.0.1:8201/taxation_customs/vies/services/checkVatService"
VIES_REST_PRODUCTION_URL = "https://ec.europa.eu/taxation_customs/vies/rest-api"
VIES_REST_SANDBOX_URL = "http://127.0.0.1:8201/taxation_customs/vies/rest-api"

#: The internal token accepted in sandbox when none is configured (documented in the README).
SANDBOX_INTERNAL_TOKEN = "trace30-sandbox-internal-token"  # noqa: S105 (documented, sandbox only)


def parse_delays(text: str) -> tuple[float, ...]:
    """Comma-separated delays in seconds, at least one, none negative; ValueError if not.

    >>> parse_delays("60, 300,0.5")
    (60.0, 300.0, 0.5)
    >>> parse_delays("60,soon")
    Traceback (most recent call last):
    ...
    ValueError: 'soon' is not a number of seconds: write seconds, e.g. '60,300'
    """
    values = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            value = float(part)
        except ValueError:
            raise ValueError(f"{part.strip()!r} is not a number of seconds: write seconds, "
                             "e.g. '60,300'") from None
        if not value >= 0 or value == float("inf"):
            raise ValueError(f"{part.strip()!r} is not a delay: seconds must be 0 or more")
        values.append(value)
    if not values:
        raise ValueError("it must list at least one delay in seconds, e.g. '60,300'")
    return tuple(values)


def parse_caps(text: str | None) -> dict[str, int]:
    """Parse per-member-state caps written as ``"DE=2,FR=6"``; ValueError if malformed.

    >>> parse_caps("DE=2, fr=6")
    {'DE': 2, 'FR': 6}
    >>> parse_caps("")
    {}
    >>> parse_caps("DE:2")
    Traceback (most recent call last):
    ...
    ValueError: cap 'DE:2' must look like 'DE=2' (a member state's two letters = a whole number)
    """
    caps: dict[str, int] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip().upper()
        if not sep or not value.strip().isdigit() or len(key) != 2 or not key.isalpha():
            raise ValueError(f"cap {part.strip()!r} must look like 'DE=2' (a member state's two "
                             "letters = a whole number)")
        caps[key] = int(value)
    return caps


#: What the public trader card may show (Art 30(7): 30(1)(a), (d) and (e)); ``vat_number`` only
#: if the marketplace wants it. Never 30(1)(b) (identity documents) or (c) (payment account).
PUBLIC_CARD_ALLOWED_FIELDS = ("name", "address", "telephone", "email", "register",
                              "registration_number", "vat_number", "self_certification")
PUBLIC_CARD_DEFAULT_FIELDS = tuple(f for f in PUBLIC_CARD_ALLOWED_FIELDS if f != "vat_number")


def parse_public_fields(text: str) -> tuple[str, ...]:
    """The public card's fields, in the card's order; ValueError for one 30(7) does not allow.

    >>> parse_public_fields("email, name")
    ('name', 'email')
    >>> parse_public_fields("name,iban")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: 'iban' is not a field the public card may show (Art 30(7)): use name, ...
    """
    wanted = [part.strip() for part in text.split(",") if part.strip()]
    for name in wanted:
        if name not in PUBLIC_CARD_ALLOWED_FIELDS:
            raise ValueError(f"{name!r} is not a field the public card may show (Art 30(7)): "
                             f"use {', '.join(PUBLIC_CARD_ALLOWED_FIELDS)}")
    return tuple(f for f in PUBLIC_CARD_ALLOWED_FIELDS if f in wanted)


def parse_public_tenants(text: str) -> frozenset[str] | None:
    """The tenants with public cards: None for every tenant (``*``).

    >>> parse_public_tenants("*") is None, sorted(parse_public_tenants("shop-a, shop-b"))
    (True, ['shop-a', 'shop-b'])
    """
    names = {part.strip() for part in text.split(",") if part.strip()}
    return None if "*" in names else frozenset(names)


def parse_http_url(text: str) -> str:
    """An http(s) URL with a host, as given; ValueError if not.

    >>> parse_http_url("http://otel-collector:4318")
    'http://otel-collector:4318'
    >>> parse_http_url("otel-collector:4318")
    Traceback (most recent call last):
    ...
    ValueError: 'otel-collector:4318' is not an http(s) URL: write e.g. 'http://otel-collector:4318'
    """
    from urllib.parse import urlsplit

    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{text!r} is not an http(s) URL: write e.g. 'http://otel-collector:4318'")
    return text.strip()


@dataclass(frozen=True)
class Setting:
    """One setting: its default (whose type the value is coerced to) and what it is for.

    ``parse`` turns the (coerced) text of a compound setting into the value the services read;
    it raises ValueError saying what is wrong, which :func:`load` reports as a
    :class:`ConfigError` naming the setting.
    """

    default: Any
    doc: str
    kind: type = str
    sandbox_default: Any = None
    parse: Callable[[str], Any] | None = None


SETTINGS: dict[str, Setting] = {
    # Suite-wide
    "SANDBOX": Setting(False, "Wire every service to the project's simulators.", bool),
    "INTERNAL_TOKEN": Setting(
        None,
        "Bearer token required on internal /v1 routes. Required outside sandbox.",
        str,
        SANDBOX_INTERNAL_TOKEN,
    ),
    "LOG_LEVEL": Setting("INFO", "Python log level of the JSON logs."),
    "REDIS_URL": Setting(
        None, "Redis for caches, limits and breakers, shared by every process. Required "
        "outside sandbox; unset in sandbox: an embedded in-process store."
    ),
    "REDIS_PREFIX": Setting("trace30:", "Prefix of every Redis key trace30 writes."),
    "REDIS_TIMEOUT_S": Setting(0.5, "Connect and read timeout of Redis calls, seconds.", float),
    "ALLOWED_HOSTS": Setting(
        "",
        "Host names this service answers to, comma-separated: 'api.example.com' exactly, "
        "'.example.com' also its subdomains, '*' any (no port). A request naming another Host "
        "gets a 400; /healthz and /readyz answer any (probes come with the pod IP). Unset: any "
        "host in sandbox; outside sandbox localhost, 127.0.0.1, [::1] and dotless names (the "
        "compose and Kubernetes service names, vat:8101), so a public name such as the "
        "gateway's behind its proxy must be listed. See shared/hosts.py.",
    ),
    "MAX_BODY_BYTES": Setting(
        1024 * 1024,
        "Largest request body a service accepts, bytes (larger: 413, refused before it is "
        "read). Keep it at or under the reverse proxy's client_max_body_size. A route that "
        "needs more says so with shared.inputs.max_body; a service, with its own value.",
        int,
    ),
    # VAT service and VIES
    "VIES_URL": Setting(
        VIES_PRODUCTION_URL, "VIES SOAP endpoint address.", str, VIES_SANDBOX_URL
    ),
    "VIES_CONNECT_TIMEOUT_S": Setting(3.0, "Connect timeout of one VIES call, seconds.", float),
    "VIES_READ_TIMEOUT_S": Setting(10.0, "Read timeout of one VIES call, seconds.", float),
    "VIES_DEADLINE_S": Setting(
        8.0, "Overall time for one VAT check, retries and waiting for a slot included.", float
    ),
    "VIES_RETRY_BASE_S": Setting(0.2, "First backoff after a transient VIES fault.", float),
    "VIES_RETRY_MAX_S": Setting(2.0, "Longest backoff between two VIES attempts.", float),
    "VIES_MS_CONCURRENCY": Setting(
        4, "Concurrent VIES calls per member state, all processes together.", int
    ),
    "VIES_MS_CONCURRENCY_OVERRIDES": Setting(
        "DE=2", "Per-state caps that differ from the default, e.g. 'DE=2,FR=6'.",
        parse=parse_caps,
    ),
    "VIES_MIN_CALL_S": Setting(
        0.5, "A VIES call is not started with less of the deadline left than this.", float
    ),
    "VIES_ABANDONED_HOLD_S": Setting(
        10.0, "After a VIES call times out on our side its slot stays taken this long (VIES "
        "still counts the call).", float,
    ),
    "VIES_BREAKER_THRESHOLD": Setting(
        5, "Consecutive outage faults of a member state that open its circuit.", int
    ),
    "VIES_BREAKER_COOLDOWN_S": Setting(
        30.0, "How long an open circuit answers at once before one probe goes through.", float
    ),
    "VIES_REST_URL": Setting(
        VIES_REST_PRODUCTION_URL,
        "VIES REST API base ('/check-vat-number', '/check-status' are appended): the fallback "
        "when SOAP fails with an outage for a member state, and the source of member-state "
        "availability.", str, VIES_REST_SANDBOX_URL,
    ),
    "VIES_REST_FALLBACK": Setting(
        True, "When VIES SOAP fails with an outage for a member state, ask the REST API once "
        "within the same deadline.", bool,
    ),
    "VIES_STATUS_TTL_S": Setting(
        60.0, "How long VIES's check-status (member-state availability) is trusted; a state it "
        "reports unavailable has its circuit opened before a check pays for a failing call. "
        "0: not asked.", float,
    ),
    "VIES_STATUS_TIMEOUT_S": Setting(
        1.0, "Connect and read timeout of one check-status call, seconds.", float
    ),
    # VAT numbers outside VIES (GB: HMRC, CH: UID register, NO: Brønnøysund)
    "HMRC_URL": Setting(
        "https://api.service.hmrc.gov.uk",
        "HMRC API base of 'Check a UK VAT number' v2 and its OAuth token endpoint "
        "(HMRC's sandbox: https://test-api.service.hmrc.gov.uk).", str, "http://127.0.0.1:8204",
    ),
    "HMRC_CLIENT_ID": Setting(
        None, "HMRC Developer Hub application client id; unset: GB VAT numbers are "
        "'unverifiable' (a person checks them).", str, "trace30-sandbox-hmrc-client",
    ),
    "HMRC_CLIENT_SECRET": Setting(
        None, "HMRC Developer Hub application client secret.", str, "trace30-sandbox-hmrc-secret"
    ),
    "HMRC_REQUESTER_VRN": Setting(
        None, "The platform's own UK VAT number (9 or 12 digits, GB optional): HMRC then "
        "returns a consultation number, the proof of each check.", str, "GB553557861",
    ),
    "HMRC_RATE_PER_S": Setting(
        3.0, "HMRC calls per second, all processes together (HMRC's default limit: 3).", float
    ),
    "UID_URL": Setting(
        "https://www.uid-wse.admin.ch/V5.0/PublicServices.svc",
        "Swiss UID register public services (SOAP) endpoint.", str,
        "http://127.0.0.1:8205/V5.0/PublicServices.svc",
    ),
    "UID_RATE_PER_MIN": Setting(
        20.0, "UID register calls per minute, all processes together (its anonymous limit: "
        "20; a valid number takes two).", float,
    ),
    "VAT_NO_BRREG_URL": Setting(
        "https://data.brreg.no/enhetsregisteret/api",
        "Norway, Enhetsregisteret API base, for the VAT register flag of NO…MVA numbers.", str,
        "http://127.0.0.1:8202/brreg/enhetsregisteret/api",
    ),
    "VAT_NO_BRREG_RATE_PER_S": Setting(
        5.0, "Brønnøysund calls per second of the VAT service, all processes.", float
    ),
    "VAT_SOURCES_CONNECT_TIMEOUT_S": Setting(
        3.0, "Connect timeout of one HMRC, UID register or Brønnøysund call.", float
    ),
    "VAT_SOURCES_READ_TIMEOUT_S": Setting(
        8.0, "Read timeout of one HMRC, UID register or Brønnøysund call (the check's "
        "deadline, TRACE30_VIES_DEADLINE_S, bounds it too).", float,
    ),
    "VAT_SOURCES_RETRIES": Setting(
        2, "Extra attempts after an outage of HMRC, the UID register or Brønnøysund, within "
        "the check's deadline.", int,
    ),
    "VAT_SOURCES_BREAKER_THRESHOLD": Setting(
        5, "Consecutive failed checks of a non-VIES VAT source that open its circuit.", int
    ),
    "VAT_SOURCES_BREAKER_COOLDOWN_S": Setting(
        30.0, "How long a non-VIES VAT source's circuit stays open.", float
    ),
    "VAT_CACHE_VALID_TTL_S": Setting(86400, "How long a 'valid' VAT answer is fresh.", int),
    "VAT_CACHE_INVALID_TTL_S": Setting(3600, "How long an 'invalid' VAT answer is fresh.", int),
    "VAT_STALE_MAX_AGE_S": Setting(
        7 * 86400, "How old a 'valid' answer may be when served stale during an outage.", int
    ),
    "VAT_LOCAL_CACHE_TTL_S": Setting(
        5.0, "How long each process keeps answers it has seen in memory (0: off).", float
    ),
    "REQUESTER_VAT_NUMBER": Setting(
        None,
        "The platform's own VAT number, sent to VIES so that it returns a consultation number "
        "(the proof of each check). Sandbox default: the simulator's demo marketplace.",
        str,
        "NL820246633B01",
    ),
    # Registry service (settings of services/registry go here)
    "REGISTRY_GLEIF_URL": Setting(
        "https://api.gleif.org/api/v1", "GLEIF LEI API base (no key).", str,
        "http://127.0.0.1:8202/gleif/api/v1",
    ),
    "REGISTRY_FR_RECHERCHE_URL": Setting(
        "https://recherche-entreprises.api.gouv.fr", "France, API Recherche d'entreprises base.",
        str, "http://127.0.0.1:8202/recherche-entreprises",
    ),
    "REGISTRY_NO_BRREG_URL": Setting(
        "https://data.brreg.no/enhetsregisteret/api", "Norway, Enhetsregisteret API base.", str,
        "http://127.0.0.1:8202/brreg/enhetsregisteret/api",
    ),
    "REGISTRY_GB_COMPANIES_HOUSE_URL": Setting(
        "https://api.company-information.service.gov.uk", "UK Companies House API base.", str,
        "http://127.0.0.1:8202/companies-house",
    ),
    "REGISTRY_DK_CVR_URL": Setting(
        "http://distribution.virk.dk", "Denmark CVR system-to-system (Elasticsearch) base.", str,
        "http://127.0.0.1:8202/cvr",
    ),
    "REGISTRY_CZ_ARES_URL": Setting(
        "https://ares.gov.cz/ekonomicke-subjekty-v-be/rest",
        "Czech Republic, ARES REST API base (no key).", str,
        "http://127.0.0.1:8202/ares/ekonomicke-subjekty-v-be/rest",
    ),
    "REGISTRY_PL_KRS_URL": Setting(
        "https://api-krs.ms.gov.pl/api/krs", "Poland, API KRS (Krajowy Rejestr Sądowy) base.",
        str, "http://127.0.0.1:8202/krs/api/krs",
    ),
    "COMPANIES_HOUSE_API_KEY": Setting(
        None, "Companies House API key; unset: GB numbers are 'unverifiable'.", str,
        "trace30-sandbox-companies-house-key",
    ),
    "CVR_USERNAME": Setting(
        None, "CVR system-to-system user; unset: DK numbers are 'unverifiable'.", str,
        "trace30-sandbox",
    ),
    "CVR_PASSWORD": Setting(None, "CVR system-to-system password.", str, "trace30-sandbox-cvr"),
    "REGISTRY_GLEIF_RATE_PER_S": Setting(1.0, "GLEIF calls per second, all processes.", float),
    "REGISTRY_FR_RECHERCHE_RATE_PER_S": Setting(
        5.0, "Recherche d'entreprises calls per second (documented 7; 429 seen at 5).", float
    ),
    "REGISTRY_NO_BRREG_RATE_PER_S": Setting(5.0, "Brønnøysund calls per second.", float),
    "REGISTRY_GB_COMPANIES_HOUSE_RATE_PER_S": Setting(
        2.0, "Companies House calls per second (its limit: 600 per 5 minutes).", float
    ),
    "REGISTRY_DK_CVR_RATE_PER_S": Setting(5.0, "CVR calls per second.", float),
    "REGISTRY_CZ_ARES_RATE_PER_S": Setting(
        5.0, "ARES calls per second (it blocks clients above about 500 a minute).", float
    ),
    "REGISTRY_PL_KRS_RATE_PER_S": Setting(
        2.0, "API KRS calls per second (no published limit; a lookup may take 2 or 3 calls).",
        float,
    ),
    "REGISTRY_RATE_BURST": Setting(3, "Calls a source may take at once before pacing.", int),
    "REGISTRY_CONNECT_TIMEOUT_S": Setting(3.0, "Connect timeout of one register call.", float),
    "REGISTRY_READ_TIMEOUT_S": Setting(8.0, "Read timeout of one register call.", float),
    "REGISTRY_DEADLINE_S": Setting(
        10.0, "Overall time for one lookup, retries and waiting for the rate limit included.",
        float,
    ),
    "REGISTRY_RETRIES": Setting(2, "Extra attempts after a transient register fault.", int),
    "REGISTRY_RETRY_BASE_S": Setting(0.2, "First backoff after a transient fault.", float),
    "REGISTRY_RETRY_MAX_S": Setting(2.0, "Longest backoff between two attempts.", float),
    "REGISTRY_BREAKER_THRESHOLD": Setting(
        5, "Consecutive outage faults of a register that open its circuit.", int
    ),
    "REGISTRY_BREAKER_COOLDOWN_S": Setting(
        30.0, "How long a register's circuit stays open.", float),
    "REGISTRY_CACHE_POSITIVE_TTL_S": Setting(
        86400, "How long a found record (active or inactive) is fresh.", int
    ),
    "REGISTRY_CACHE_NEGATIVE_TTL_S": Setting(3600, "How long a 'not_found' is fresh.", int),
    "REGISTRY_POOL_SIZE": Setting(10, "Pooled connections per register and process.", int),
    # Payment service (settings of services/payment go here)
    "PAYEE_VERIFICATION_URL": Setting(
        "https://vop.trace30.dev/vop/v1",
        "Base URL of the Verification of Payee provider (EPC VoP API); "
        "'/payee-verifications' is appended.",
        str,
        "http://127.0.0.1:8203/vop/v1",
    ),
    "PAYEE_VERIFICATION_CONNECT_TIMEOUT_S": Setting(
        2.0, "Connect timeout of one payee-verification call, seconds.", float
    ),
    "PAYEE_VERIFICATION_READ_TIMEOUT_S": Setting(
        5.0, "Read timeout of one payee-verification call, seconds.", float
    ),
    "PAYEE_BREAKER_THRESHOLD": Setting(
        5, "Consecutive payee-verification faults that open its circuit.", int
    ),
    "PAYEE_BREAKER_COOLDOWN_S": Setting(
        30.0, "How long an open payee-verification circuit answers at once.", float
    ),
    "PAYEE_CACHE_TTL_S": Setting(86400, "How long a payee-verification answer is reused.", int),
    "PAYMENT_FINGERPRINT_KEY": Setting(
        None,
        "HMAC key of account fingerprints, at least 32 characters. Required outside sandbox; "
        "sandbox default 'trace30-sandbox-fingerprint-key'. Changing it changes every "
        "fingerprint.",
        str,
        "trace30-sandbox-fingerprint-key",
    ),
    # Gateway (settings of services/gateway go here)
    "GATEWAY_VAT_URL": Setting("http://127.0.0.1:8101", "Base URL of the VAT service."),
    "GATEWAY_REGISTRY_URL": Setting("http://127.0.0.1:8102", "Base URL of the registry service."),
    "GATEWAY_PAYMENT_URL": Setting("http://127.0.0.1:8103", "Base URL of the payment service."),
    "GATEWAY_CONNECT_TIMEOUT_S": Setting(1.0, "Connect timeout of a call to a service.", float),
    "GATEWAY_VAT_TIMEOUT_S": Setting(9.0, "Read timeout of a call to the VAT service.", float),
    "GATEWAY_REGISTRY_TIMEOUT_S": Setting(
        11.0, "Read timeout of a call to the registry service.", float
    ),
    "GATEWAY_PAYMENT_TIMEOUT_S": Setting(
        6.0, "Read timeout of a call to the payment service.", float
    ),
    "GATEWAY_DEADLINE_S": Setting(
        12.0, "Overall time for the three calls of one verification.", float
    ),
    "GATEWAY_DEFAULT_WAIT_S": Setting(
        5.0, "How long POST /v1/verifications waits for the verdict without 'Prefer: wait'.", float
    ),
    "GATEWAY_MAX_WAIT_S": Setting(30.0, "The longest 'Prefer: wait' honoured.", float),
    "GATEWAY_VERDICT_TTL_S": Setting(
        86400, "How long a settled verdict is valid (expires_at) and cached.", int
    ),
    "GATEWAY_LOCAL_CACHE_TTL_S": Setting(
        5.0, "How long each gateway process keeps verdicts it has served in memory (0: off).",
        float,
    ),
    "GATEWAY_CORRECTION_DAYS": Setting(
        14.0,
        "Art 30(3): days a trader that could trade has to correct its data once its verdict "
        "turns rejected, or staff ask for a correction without a due date, before the "
        "marketplace is sent trader.suspension_due.",
        float,
    ),
    "GATEWAY_PENDING_RETRY_S": Setting(
        "60,300,900,3600,21600",
        "When a pending verification is tried again: seconds after each attempt (the last "
        "value repeats).",
        parse=parse_delays,
    ),
    "GATEWAY_RECOVER_AFTER_S": Setting(
        30.0,
        "Seconds past its deadline after which a verification still running is taken as "
        "abandoned (its process died, or lost the database while settling) and run again by "
        "the sweeper of any gateway process.",
        float,
    ),
    "GATEWAY_SWEEP_POLL_S": Setting(
        5.0,
        "How often each gateway process looks for verifications to run again (pending ones "
        "due, abandoned running ones) and suspensions due.",
        float,
    ),
    "GATEWAY_THREADS": Setting(32, "Verifications run at once per gateway process.", int),
    "GATEWAY_BACKGROUND": Setting(
        True, "Run the webhook sender and the pending-retry loop in each gateway process.", bool
    ),
    "GATEWAY_API_KEYS": Setting(
        "[]",
        "Client API keys, JSON: [{\"id\", \"key_sha256\", \"scopes\": [onboarding, ops, "
        "batch], \"webhook_url\", \"webhook_secret\"}]. In sandbox the key "
        "'trace30-sandbox-key' has every scope.",
        parse=parse_api_keys,
    ),
    "GATEWAY_SANDBOX_WEBHOOK_URL": Setting(
        None, "Where the sandbox client's webhooks go (none: not sent)."
    ),
    "GATEWAY_SESSION_SECRET": Setting(
        None,
        "Key signing the session cookie of the staff dashboard (/ops), at least 32 "
        "characters. Required outside sandbox; sandbox default "
        "'trace30-sandbox-session-secret'. Changing it signs every staff member out.",
        str,
        "trace30-sandbox-session-secret",
    ),
    "GATEWAY_SIGNIN_MAX_FAILURES": Setting(
        5,
        "Failed dashboard sign-ins per staff account within TRACE30_GATEWAY_SIGNIN_WINDOW_S "
        "after which the account's sign-in answers 429 (Retry-After) until the window ends.",
        int,
    ),
    "GATEWAY_SIGNIN_MAX_FAILURES_PER_IP": Setting(
        20,
        "Failed dashboard sign-ins (passwords and API keys) per client IP within "
        "TRACE30_GATEWAY_SIGNIN_WINDOW_S after which sign-in from that IP answers 429. The IP "
        "is the one the gateway sees (behind a reverse proxy, the proxy's).",
        int,
    ),
    "GATEWAY_SIGNIN_TRUST_FORWARDED_FOR": Setting(
        False,
        "Take the client IP of the sign-in limits from the last address of X-Forwarded-For "
        "(the project's nginx sets it to the address it saw, deploy/nginx/). Set it only when "
        "every request comes through that proxy: a client reaching the gateway directly could "
        "name any address. Off: the address of the TCP peer (behind a proxy, the proxy's, so "
        "every client would share one counter).",
        bool,
    ),
    "GATEWAY_SIGNIN_WINDOW_S": Setting(
        900, "Length of the sign-in rate-limit window, seconds (counted from the first "
        "failure).", int,
    ),
    "GATEWAY_POLICY": Setting(
        None,
        "The verdict policy: a JSON or YAML file mapping reason codes to 'reject', 'review' "
        "or 'info' (codes left out keep their default; upstream-fault codes are always "
        "pending). Unset: the defaults listed in the README. Read and checked at start-up; "
        "GET /v1/reasons shows the policy in force and its SHA-256, stored with each verdict.",
    ),
    # Gateway: supporting documents (issue 12; services/gateway/documents)
    "GATEWAY_DOCUMENT_MAX_BYTES": Setting(
        10 * 1024 * 1024,
        "Largest supporting document (a PDF, JPEG or PNG file) accepted, bytes; larger: 413, "
        "refused before the body is read. The upload routes take bodies up to this plus 64 KiB "
        "for the form's other fields: raise the reverse proxy's client_max_body_size for "
        "/v1/traders/*/documents and /ops/traders/*/documents accordingly.", int,
    ),
    "GATEWAY_DOCUMENT_STORAGE": Setting(
        "database",
        "Where the sealed document files are kept: 'database' (the evidence log's "
        "document_blobs table), 'filesystem' (TRACE30_GATEWAY_DOCUMENT_DIR) or 's3' (an "
        "S3-compatible bucket: TRACE30_GATEWAY_DOCUMENT_S3_*). Each file is sealed with the "
        "evidence sealing keys first, whatever the backend.",
    ),
    "GATEWAY_DOCUMENT_DIR": Setting(
        "var/trace30-documents",
        "Folder of the 'filesystem' document storage (created, mode 0700; files 0600). Every "
        "gateway process and `trace30 purge` must see the same folder.",
    ),
    "GATEWAY_DOCUMENT_S3_BUCKET": Setting(
        None, "Bucket of the 's3' document storage (required with it)."
    ),
    "GATEWAY_DOCUMENT_S3_PREFIX": Setting(
        "trace30-documents/", "Key prefix of the document files in the bucket."
    ),
    "GATEWAY_DOCUMENT_S3_ENDPOINT_URL": Setting(
        None, "Endpoint of an S3-compatible store (MinIO, Ceph...); unset: AWS S3."
    ),
    "GATEWAY_DOCUMENT_S3_REGION": Setting(None, "Region of the bucket; unset: boto3's default."),
    "GATEWAY_DOCUMENT_S3_ACCESS_KEY_ID": Setting(
        None, "Access key of the 's3' storage; unset: boto3's default credential chain "
        "(environment, instance or pod role)."
    ),
    "GATEWAY_DOCUMENT_S3_SECRET_ACCESS_KEY": Setting(
        None, "Secret key going with TRACE30_GATEWAY_DOCUMENT_S3_ACCESS_KEY_ID."
    ),
    "GATEWAY_DOCUMENT_S3_TIMEOUT_S": Setting(
        10.0, "Connect and read timeout of one call to the S3 store, seconds.", float
    ),
    # Gateway: the public trader card (DSA Art 30(7), services/gateway/public.py)
    "PUBLIC_CARD_TENANTS": Setting(
        "*",
        "Tenants whose traders have a public card at /public/v1/{tenant}/traders/{id}, "
        "comma-separated; '*' every tenant, empty none. Another tenant's card answers 404.",
        parse=parse_public_tenants,
    ),
    "PUBLIC_CARD_FIELDS": Setting(
        ",".join(PUBLIC_CARD_DEFAULT_FIELDS),
        "What the public card shows, comma-separated, within what Art 30(7) allows: "
        f"{', '.join(PUBLIC_CARD_ALLOWED_FIELDS)}. Payment account (30(1)(c)) and identity "
        "document (30(1)(b)) data are never shown, whatever is set.",
        parse=parse_public_fields,
    ),
    "PUBLIC_CARD_MAX_AGE_S": Setting(
        300, "Cache-Control max-age of the public card, seconds (how long a CDN may serve it "
        "without asking again; a suspension shows within this time).", int,
    ),
    "PUBLIC_CARD_RATE_PER_MINUTE": Setting(
        60, "Public card requests per client IP and minute; past it 429 with Retry-After.", int,
    ),
    "PUBLIC_CARD_BURST": Setting(
        20, "Public card requests a client IP may make at once before the rate applies.", int,
    ),
    "PUBLIC_CARD_TRUST_FORWARDED_FOR": Setting(
        False,
        "Take the client IP of the public card's rate limit from the last address of "
        "X-Forwarded-For (set only when every request comes through the project's nginx or "
        "a CDN that sets it). Off: the TCP peer's address.",
        bool,
    ),
    "PUBLIC_CARD_CERTIFICATION_TEXT": Setting(
        "The trader has certified that it offers only products or services that comply with "
        "the applicable rules of Union law.",
        "The self-certification statement (Art 30(1)(e)) the public card shows with its date.",
    ),
    # Gateway: evidence log and webhooks (settings of services/gateway/evidence go here)
    # Batch re-verification and retention (trace30 reverify / worker / purge)
    "BATCH_QUEUE": Setting("reverify", "Name of the RQ queue of re-verification jobs."),
    "BATCH_RETRY_S": Setting(
        "10,60,300", "Backoff between the attempts of a job whose trader stays pending, "
        "seconds (whole seconds: RQ drops the fraction).", parse=parse_delays,
    ),
    "BATCH_LEASE_S": Setting(
        30.0, "A running job renews its lease this often (x3); a lapsed lease means its worker "
        "died and the trader is queued again.", float,
    ),
    "BATCH_RESULT_TTL_S": Setting(30 * 86400, "How long a run's results are kept in Redis.", int),
    "RETENTION_MONTHS": Setting(
        6, "Calendar months after the end of a trader relationship before `trace30 purge` "
        "deletes everything about the trader (DSA Art 30(5): six months). An end on 31 August "
        "is purged from 28 (29) February on: a day the month lacks is its last day.", int,
    ),
    "DATABASE_URL": Setting(
        "sqlite:///var/trace30-evidence.sqlite3",
        "Evidence log database: an SQLite file (relative to the working directory; its folder "
        "is created) or postgresql+psycopg://user@host/db.",
    ),
    "EVIDENCE_SEALING_KEYS": Setting(
        None,
        "Comma-separated Fernet keys sealing the stored submissions (IBAN, e-mail, phone); the "
        "first seals, all unseal (rotation). Required outside sandbox; the sandbox key is the "
        "public services.gateway.sealing.SANDBOX_KEY.",
        str,
        "dHJhY2UzMC1zYW5kYm94LXNlYWxpbmcta2V5LTAwMDE=",
    ),
    # Disclosures to authorities (DSA Art 30(6)): services/gateway/disclosures.py
    "EVIDENCE_CHAIN": Setting(
        True, "Append every write of a fact (verification, staff action, review, statement, "
        "complaint, document, disclosure, legal hold) to the evidence log's tamper-evident hash "
        "chain, in the same transaction (`trace30 audit verify`). Off only to measure its cost "
        "(bench/chain.py): rows written with it off are reported as written outside the log.",
        bool,
    ),
    "DISCLOSURE_SIGNING_KEY": Setting(
        None,
        "Ed25519 private key signing the manifest of every disclosure bundle: PEM (PKCS#8) or "
        "the base64 of the 32 raw bytes. Its public key is published at "
        "/.well-known/trace30-disclosure-key. Required outside sandbox to disclose (the "
        "gateway starts without it; a disclosure is refused); the sandbox key is the public "
        "base64 of b'trace30-sandbox-disclosure-key-1', refused outside sandbox.",
        str,
        "dHJhY2UzMC1zYW5kYm94LWRpc2Nsb3N1cmUta2V5LTE=",
    ),
    "DISCLOSURE_MAX_TRADERS": Setting(
        50, "The most traders one disclosure bundle may cover.", int),
    "WEBHOOK_TIMEOUT_S": Setting(5.0, "Connect and read timeout of one webhook POST.", float),
    "WEBHOOK_MAX_ATTEMPTS": Setting(8, "Attempts at a webhook before it is marked failed.", int),
    "WEBHOOK_BACKOFF_BASE_S": Setting(
        5.0, "Wait after the first failed webhook attempt; doubles with each one.", float
    ),
    "WEBHOOK_BACKOFF_MAX_S": Setting(3600.0, "Longest wait between webhook attempts.", float),
    "WEBHOOK_POLL_S": Setting(1.0, "How often each gateway process looks for due webhooks.", float),
    "WEBHOOK_TOLERANCE_S": Setting(
        300, "How old a webhook signature receivers accept (documented for receivers).", int
    ),
    "MIGRATE_ON_START": Setting(
        False,
        "Run the evidence log's migrations when the gateway or a batch worker starts (on in "
        "sandbox). Off: they only check the schema and refuse to start on one older than the "
        "code; run `trace30 migrate` as the release step.",
        bool,
        True,
    ),
    # Tracing (shared/tracing.py): OpenTelemetry's standard names, read without TRACE30_
    "OTEL_EXPORTER_OTLP_ENDPOINT": Setting(
        None, "Base URL of an OTLP/HTTP collector (e.g. http://otel-collector:4318): set, every "
        "process sends its spans to {url}/v1/traces (protobuf); unset, OpenTelemetry is off "
        "and not even imported. Read as OTEL_EXPORTER_OTLP_ENDPOINT (no TRACE30_ prefix).",
        parse=parse_http_url,
    ),
    "OTEL_SERVICE_NAME": Setting(
        None, "The service name spans are reported under; unset: trace30-<service> "
        "(trace30-gateway, trace30-vat, trace30-worker, ...). Read as OTEL_SERVICE_NAME."
    ),
    "OTEL_EXPORTER_OTLP_TIMEOUT": Setting(
        10.0, "Timeout of one export of spans to the collector, seconds (as the Python SDK "
        "reads it). Read as OTEL_EXPORTER_OTLP_TIMEOUT.", float
    ),
    # Metrics (shared/metrics.py)
    "METRICS": Setting(
        "internal",
        "Who may read /metrics (Prometheus text format) on every service: 'off' (no route), "
        "'internal' (the internal bearer token, or an address of TRACE30_METRICS_NETWORKS "
        "that no proxy relayed) or 'public' (anyone; the sandbox default). The gateway's "
        "nginx never passes /metrics on.",
        str,
        "public",
        parse=parse_exposure,
    ),
    "METRICS_NETWORKS": Setting(
        "",
        "Comma-separated addresses or CIDR networks (10.0.0.0/8) whose requests read /metrics "
        "without the token when TRACE30_METRICS=internal, e.g. the Prometheus servers' network. "
        "Never list the address of a proxy in front of the service.",
        parse=parse_networks,
    ),
    # Per-client rate limits and Idempotency-Key (services/gateway/ratelimits.py, idempotency.py)
    "GATEWAY_RATE_LIMIT": Setting(
        "1200/minute;50/second",
        "Requests each API client may make to /v1, all gateway processes together (counted in "
        "Redis), unless its entry in TRACE30_GATEWAY_API_KEYS sets \"rate_limit\". Limits "
        "separated by ';', e.g. '600/minute;20/second'. Over it: 429 with Retry-After.",
        str,
        "30000/minute;1000/second",  # sandbox: the benches' load must not meet it
        parse=check_rate_limit,
    ),
    "GATEWAY_IDEMPOTENCY_TTL_S": Setting(
        86400, "How long an Idempotency-Key and the answer it replays are kept, seconds.", int
    ),
    "GATEWAY_IDEMPOTENCY_LEASE_S": Setting(
        120,
        "How long a request with an Idempotency-Key holds the key while it runs (others with "
        "the key get 409); a process that dies mid-request frees it after this.",
        int,
    ),
    "PURGE_BATCH_SIZE": Setting(
        500, "Traders `trace30 purge` deletes together: one SQL transaction (each trader with "
        "its own tombstone and legal-hold check) and one Redis pipeline per batch. A batch that "
        "fails is tried again one trader at a time.", int,
    ),
}

#: Settings read under their own standard name, without the TRACE30_ prefix.
STANDARD_NAMES = frozenset(
    {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_TIMEOUT"})


def env_name(name: str) -> str:
    """The environment variable of setting ``name``.

    >>> env_name("REDIS_URL"), env_name("OTEL_EXPORTER_OTLP_ENDPOINT")
    ('TRACE30_REDIS_URL', 'OTEL_EXPORTER_OTLP_ENDPOINT')
    """
    return name if name in STANDARD_NAMES else ENV_PREFIX + name


#: Settings that were replaced: set, they stop start-up rather than be silently ignored.
_REPLACED = {
    "RETENTION_DAYS": "set TRACE30_RETENTION_MONTHS instead (calendar months, default 6) and "
                      "unset it.",
}


def _coerce(name: str, value: Any, kind: type) -> Any:
    if value is None:
        return None
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(value)
        if kind in (int, float) and isinstance(value, bool):
            raise ValueError(value)
        return kind(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(
            f"{env_name(name)} must be a {kind.__name__}, got {value!r}"
        ) from e


def _parse(name: str, text: str, parse: Callable[[str], Any]) -> Any:
    """``parse(text)``, or a :class:`ConfigError` naming the setting and what is wrong.

    >>> _parse("BATCH_RETRY_S", "10,x", parse_delays)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    shared.errors.ConfigError: TRACE30_BATCH_RETRY_S is not valid: 'x' is not a number of ...
    """
    try:
        return parse(text)
    except ValueError as e:
        raise ConfigError(f"{env_name(name)} is not valid: {e}") from e


def load(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Return every setting, from defaults, ``environ`` and ``overrides`` (highest wins).

    >>> load({"TRACE30_SANDBOX": "1"})["VIES_URL"]
    'http://127.0.0.1:8201/taxation_customs/vies/services/checkVatService'
    >>> load({})["VIES_URL"]
    'https://ec.europa.eu/taxation_customs/vies/services/checkVatService'
    >>> load({}, {"VIES_DEADLINE_S": "2.5"})["VIES_DEADLINE_S"]
    2.5
    """
    environ = os.environ if environ is None else environ
    for name, replacement in _REPLACED.items():
        if environ.get(ENV_PREFIX + name, "") != "":
            raise ConfigError(f"{ENV_PREFIX}{name} is no longer read: {replacement}")
    overrides = dict(overrides or {})
    raw: dict[str, Any] = {}
    for name in SETTINGS:
        if name in overrides:
            raw[name] = overrides.pop(name)
        elif environ.get(env_name(name), "") != "":  # an empty variable counts as unset
            raw[name] = environ[env_name(name)]
    sandbox = _coerce("SANDBOX", raw.get("SANDBOX", False), bool)
    values: dict[str, Any] = {}
    for name, setting in SETTINGS.items():
        if name in raw and setting.parse is not None and not isinstance(raw[name], str):
            values[name] = raw[name]  # passed in already parsed (a test's override)
        elif name in raw:
            values[name] = _coerce(name, raw[name], setting.kind)
        elif sandbox and setting.sandbox_default is not None:
            values[name] = setting.sandbox_default
        else:
            values[name] = setting.default
        if setting.parse is not None and isinstance(values[name], str):
            values[name] = _parse(name, values[name], setting.parse)
    values.update(overrides)  # Flask's own keys (TESTING, ...) and test-only objects
    return values


def require_secret(name: str, value: str | None, *, sandbox: bool, min_length: int = 32,
                   purpose: str, keep: str = "") -> str:
    """The secret setting ``name`` to use, or raise :class:`ConfigError` saying what to set.

    In sandbox an unset secret is the setting's documented sandbox default. Outside sandbox the
    secret must be set, at least ``min_length`` characters, and not that public default. The
    messages never echo the secret. ``purpose`` says what it is for ("the gateway signs ...");
    ``keep`` what changing it does.

    >>> require_secret("PAYMENT_FINGERPRINT_KEY", None, sandbox=True, purpose="")
    'trace30-sandbox-fingerprint-key'
    >>> require_secret("PAYMENT_FINGERPRINT_KEY", "k" * 32, sandbox=False, purpose="")
    'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk'
    >>> require_secret("PAYMENT_FINGERPRINT_KEY", "short", sandbox=False, purpose="")
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    shared.errors.ConfigError: TRACE30_PAYMENT_FINGERPRINT_KEY is too short: use at least 32 ...
    """
    env = f"{ENV_PREFIX}{name}"
    public = SETTINGS[name].sandbox_default
    if not value:
        if sandbox:
            return str(public)
        raise ConfigError(
            f"{env} is not set. Outside sandbox {purpose}: set it to a random secret of at "
            f"least {min_length} characters (`python -c 'import secrets; "
            f"print(secrets.token_urlsafe(32))'`){keep}, or set {ENV_PREFIX}SANDBOX=1 to run "
            "against the simulators."
        )
    if not sandbox and value == public:
        raise ConfigError(f"{env} is the public sandbox secret: outside sandbox use a secret of "
                          f"your own of at least {min_length} characters.")
    if not sandbox and len(value) < min_length:
        raise ConfigError(f"{env} is too short: use at least {min_length} characters.")
    return value


def init_app(app: Flask, config: Mapping[str, Any] | None = None) -> None:
    """Load the settings into ``app.config`` and refuse to start on an unsafe configuration."""
    app.config.update(load(overrides=config))
    if not app.config["INTERNAL_TOKEN"]:
        raise ConfigError(
            f"{ENV_PREFIX}INTERNAL_TOKEN is not set. Outside sandbox every service needs it: "
            f"set {ENV_PREFIX}INTERNAL_TOKEN to a long random secret shared by the services, "
            f"or set {ENV_PREFIX}SANDBOX=1 to run against the simulators."
        )


# -- the README's configuration table -------------------------------------------------------------

#: The lines around the generated table in README.md (``make settings-table`` rewrites it).
TABLE_START = "<!-- settings table: made by `make settings-table` from shared/config.py -->"
TABLE_END = "<!-- end of the settings table -->"


def _shown(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "`1`" if value else "`0`"
    if value == "":
        return "empty"
    return "`" + str(value).replace("|", "\\|") + "`"


def settings_table() -> str:
    """Every setting as a Markdown table (variable, default, sandbox default, meaning), from
    :data:`SETTINGS`: the README shows exactly this between :data:`TABLE_START` and
    :data:`TABLE_END` (a test holds them together)."""
    lines = ["| variable | default | in sandbox | what it does |", "|---|---|---|---|"]
    for name, setting in SETTINGS.items():
        sandbox = ("" if setting.sandbox_default is None
                   else _shown(setting.sandbox_default))
        doc = " ".join(setting.doc.split()).replace("|", "\\|")
        lines.append(f"| `{env_name(name)}` | {_shown(setting.default)} | {sandbox} | {doc} |")
    return "\n".join(lines)


def rewrite_readme_table(readme: str) -> str:
    """``readme`` with its settings table made anew."""
    start, end = readme.index(TABLE_START), readme.index(TABLE_END)
    return readme[:start] + TABLE_START + "\n\n" + settings_table() + "\n\n" + readme[end:]
