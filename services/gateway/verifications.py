"""Running a verification: fan-out, verdict, evidence, cache, webhooks, retries.

:class:`Verifier` is what the API calls. ``submit`` answers from the cache when it can, joins a
running identical verification (single-flight), or starts one: the three service calls run
concurrently (the first in the verification's thread, the others on a process-wide pool), each
with its own timeout and all under one deadline.
The caller waits up to its ``Prefer: wait``; if the verdict is not ready by then the work goes
on and the result is sent to the client's webhook when it settles.

A ``pending`` verdict (an upstream could not answer) is kept with a ``next_retry_at``; the
retry loop (:class:`RetryLoop`) runs it again on the schedule in
``TRACE30_GATEWAY_PENDING_RETRY_S`` and sends ``verdict.changed`` when it settles.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cachetools import LRUCache

from services.gateway import submissions
from services.gateway.answers import Checks
from services.gateway.cache import VerdictCache
from services.gateway.casework import Casework, reason_messages, trader_locale
from services.gateway.evidence import EvidenceLog, Transaction, VerificationRecord
from services.gateway.policy import DEFAULT_POLICY, Policy
from services.gateway.reasons import SEVERITIES, Verdict
from services.gateway.sealing import SealingError
from services.gateway.upstreams import ServiceClient
from services.gateway.verdicts import Link, decide
from shared import context, metrics, tracing

log = logging.getLogger(__name__)

#: How long a request following an identical verification gives its leader to write the
#: record before taking the work over (the leader's process died after taking the lock).
LEADER_GRACE_S = 1.0

EVENT_COMPLETED = "verification.completed"
EVENT_CHANGED = "verdict.changed"
EVENT_SUSPENSION_DUE = "trader.suspension_due"


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat(timespec="seconds").replace("+00:00", "Z") if dt else None


@dataclass
class Outcome:
    """What ``submit`` answers: 200 with a verdict, or 202 with the id to poll."""

    status: int
    result: dict[str, Any]
    #: A cache hit: the verification id and the JSON to send as it is.
    cached_json: tuple[str, str] | None = None


class BodyIndex:
    """Fingerprints of request bodies already validated, by a digest of their exact bytes
    (with the client and content type): a resubmission of the same bytes finds its cached
    verdict without being parsed, validated and normalised again. Bounded, least recently
    used first out (``cachetools.LRUCache``); per process. Holds digests only, no personal
    data."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._fingerprints: LRUCache[bytes, str] = LRUCache(size)
        self._lock = threading.Lock()

    @staticmethod
    def key(client_id: str, content_type: str, body: bytes) -> bytes:
        """The digest of one request body as one client sent it.

        >>> json = "application/json"
        >>> BodyIndex.key("a", json, b"{}") == BodyIndex.key("b", json, b"{}")
        False
        """
        digest = hashlib.sha256(client_id.encode() + b"\0" + content_type.encode() + b"\0")
        digest.update(body)
        return digest.digest()

    def get(self, key: bytes) -> str | None:
        with self._lock:
            fingerprint: str | None = self._fingerprints.get(key)
            return fingerprint

    def put(self, key: bytes, fingerprint: str) -> None:
        with self._lock:
            self._fingerprints[key] = fingerprint


@dataclass(frozen=True)
class Settings:
    """The gateway's timing settings."""

    deadline_s: float
    verdict_ttl_s: int
    retry_schedule_s: tuple[float, ...]
    correction_days: float = 14.0
    #: How long past its deadline a running verification may take to settle before the
    #: sweeper takes it as abandoned (its process died, or lost the database) and runs it again.
    recover_after_s: float = 30.0

    @property
    def lease_s(self) -> float:
        """How long one run may hold a verification it took from the sweeper or the retries."""
        return self.deadline_s + self.recover_after_s


class Verifier:
    """Runs verifications; one per process, shared by its threads."""

    policy: Policy = DEFAULT_POLICY  # the verdict policy (TRACE30_GATEWAY_POLICY)

    def __init__(self, *, clients: dict[str, ServiceClient], evidence: EvidenceLog,
                 cache: VerdictCache, settings: Settings, webhook_target: Any,
                 threads: int = 32) -> None:
        self.clients = clients
        self.evidence = evidence
        self.cache = cache
        self.settings = settings
        self.webhook_target = webhook_target  # client_id -> (url, secret) | None
        self.bodies = BodyIndex()
        self.casework = Casework(self)
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="verification")
        self.calls = ThreadPoolExecutor(threads * 3, thread_name_prefix="upstream")

    # -- entry points ---------------------------------------------------------------------------

    def cached_body(self, body_key: bytes) -> Outcome | None:
        """The cached verdict of a request body seen before (:class:`BodyIndex`), or None."""
        fp = self.bodies.get(body_key)
        cached = self.cache.get(fp) if fp is not None else None
        return Outcome(200, {"id": cached[0]}, cached_json=cached) if cached else None

    def submit(self, submission: dict[str, Any], client_id: str, *, tenant: str, wait_s: float,
               request_id: str | None = None, force: bool = False,
               priority: str = "interactive", body_key: bytes | None = None,
               received_at: datetime | None = None) -> Outcome:
        """Verify ``submission`` for ``client_id`` of ``tenant``, waiting up to ``wait_s`` for
        the verdict.

        The trader is the tenant's: its verdict is cached under a fingerprint of the tenant
        (the tenant's clients share it; another tenant never gets it) and linkage looks only
        at the tenant's traders.

        ``priority="batch"`` (re-verification jobs) lets interactive checks go first where
        the services queue for an upstream's capacity (VIES slots per member state).
        ``body_key``: the :class:`BodyIndex` key of the request body it was read from.
        ``received_at``: when the gateway received the submission (default: now), the time a
        self-certification without ``accepted_at`` is recorded with (:func:`submissions.stamp`,
        after the fingerprint, which leaves the stamp out).
        """
        received_at = received_at or _now()
        sub = submissions.normalise(submission)
        fp = submissions.fingerprint(sub, tenant)
        if body_key is not None:
            self.bodies.put(body_key, fp)
        if force:
            self.cache.drop(fp)
        else:
            cached = self.cache.get(fp)
            if cached:
                return Outcome(200, {"id": cached[0]}, cached_json=cached)
        vid = uuid.uuid4().hex
        leader = self.cache.lead(fp, vid, take_over=force)
        if leader is not None:
            outcome = self._follow(leader, wait_s)
            if outcome is not None:
                return outcome
            # The lock names a verification the log does not hold: its process died between
            # taking the lock and writing the record. Nothing runs it: take over.
            self.cache.lead(fp, vid, take_over=True)
        sub = submissions.stamp(sub, received_at)
        now = _now()
        record = VerificationRecord(
            id=vid, trader_id=sub["trader_id"], client_id=client_id, fingerprint=fp,
            state="running", verdict=None, items=None, reasons=None, checks=None,
            name_consistency=None, evidence=None, submission=submissions.redact(sub),
            account_fingerprint=None, request_id=request_id, created_at=now,
            settled_at=None, checked_at=None, expires_at=None, tenant_id=tenant,
            # running: by then it must have settled, or the sweeper runs it again
            next_retry_at=now + timedelta(seconds=self.settings.lease_s),
        )
        try:
            self.evidence.save(record, private_submission=sub)
        except Exception:
            self.cache.release(fp, vid)
            raise
        future = context.submit(self.pool, self._run, record, sub, request_id, priority)
        future.add_done_callback(_log_failure)
        return self._await(record, future, wait_s)

    def reverify(self, trader_id: str, client_id: str, *, tenant: str, wait_s: float,
                 request_id: str | None = None,
                 priority: str = "interactive") -> Outcome | None:
        """Verify the trader's last submission again, bypassing the cache; None if ``tenant``
        has no such trader.

        The new verification is the trader's marketplace client's (whose submission it is):
        it replaces the tenant's cached verdict and its webhooks go to that client, whoever
        of the tenant asked (``client_id``: staff, a batch job).
        """
        current = self.evidence.current(trader_id, tenant=tenant)
        if current is None:
            return None
        private = self.evidence.private_submission(current.id)
        if private is None:
            return None
        log.info("re-verification", extra={"verification": current.id,
                                           "requested_by": client_id})
        # A submission kept before accepted_at was stamped: the gateway received it then.
        return self.submit(private, current.client_id, tenant=current.tenant_id, wait_s=wait_s,
                           request_id=request_id, force=True, priority=priority,
                           received_at=current.created_at)

    def retry(self, record: VerificationRecord) -> None:
        """Run a verification again: a due ``pending`` one, or a running one its process
        abandoned (called by :class:`RetryLoop` with the record it leased).

        Raises :class:`~services.gateway.sealing.SealingError` if its submission no longer
        opens; a record without a sealed submission (purged meanwhile) is left alone.
        """
        private = self.evidence.private_submission(record.id)
        if private is None:
            log.warning("no sealed submission to run again", extra={"verification": record.id})
            return
        self._run(record, private, record.request_id, "batch")

    # -- waiting ----------------------------------------------------------------------------------

    def _await(self, record: VerificationRecord, future: Future[dict[str, Any]],
               wait_s: float) -> Outcome:
        try:
            return Outcome(200, future.result(timeout=wait_s))
        except FutureTimeout:
            pass
        except Exception as e:
            # The run failed after the record was written (the evidence log failed while
            # settling, say): the work is accepted all the same; the sweeper settles it.
            log.warning("verification left to the sweeper",
                        extra={"verification": record.id, "error": type(e).__name__})
        return self._stop_waiting(record.id, record.trader_id)

    def _stop_waiting(self, verification_id: str, trader_id: str | None) -> Outcome:
        """The caller waited long enough: 202, with the verdict promised by webhook, if the
        verification still runs; its verdict if it settled meanwhile.

        The promise is written to the evidence log before the 202 is answered, and the run
        that settles the verification (this process's, or the sweeper's after a crash) sends
        the webhook in its settling transaction: a 202 is never forgotten.
        """
        if self.evidence.request_notification(verification_id):
            record = self.evidence.get(verification_id)
            if record is not None:
                return Outcome(202, self._running(record))
            return Outcome(202, self._placeholder(verification_id, trader_id))  # purged
        record = self.evidence.get(verification_id)
        if record is not None and record.state == "settled":
            return Outcome(200, self.view(record))
        return Outcome(202, self._placeholder(verification_id, trader_id))

    def _follow(self, leader_id: str, wait_s: float) -> Outcome | None:
        """Wait for the identical verification another request leads; None if the log does
        not hold it (its process died before writing it: the caller takes over at once,
        rather than after its whole wait)."""
        end = time.monotonic() + wait_s
        # The leader writes its record right after taking the lock: a short grace for that.
        result = self.cache.wait(leader_id, min(wait_s, LEADER_GRACE_S))
        if result is not None:
            return Outcome(200, result)
        record = self.evidence.get(leader_id)
        if record is None:
            result = self.cache.wait(leader_id, max(0.0, LEADER_GRACE_S - wait_s))
            if result is not None:
                return Outcome(200, result)
            record = self.evidence.get(leader_id)
            if record is None:
                return None
        if record.state == "running":
            result = self.cache.wait(leader_id, max(0.0, end - time.monotonic()))
            if result is not None:
                return Outcome(200, result)
            record = self.evidence.get(leader_id) or record
        if record.state == "settled":
            return Outcome(200, self.view(record))
        return self._stop_waiting(leader_id, record.trader_id)

    # -- the work ---------------------------------------------------------------------------------

    def _run(self, record: VerificationRecord, sub: dict[str, Any], request_id: str | None,
             priority: str = "interactive") -> dict[str, Any]:
        """Fan out, decide, and settle the verification with its webhooks in one transaction."""
        expected_attempts = record.attempts
        previous = self.evidence.current(record.trader_id, tenant=record.tenant_id)
        try:
            checks = self._fan_out(sub, request_id, priority)
            pay = checks["payment"]
            account = pay["account_fingerprint"] if pay and "checked_at" in pay else None
            vat_key, registration_key = identity_keys(checks)
            links = self.evidence.linked_traders(
                record.trader_id, tenant=record.tenant_id, account_fingerprint=account,
                vat_key=vat_key,
                registration_key=registration_key)
            decision = decide(sub, checks, links, self.policy)
            now = _now()
            record.state = "settled"
            record.verdict = decision.verdict
            record.items = decision.items
            # the messages in the trader's language (the submission's locale)
            record.reasons = reason_messages(decision.reasons, trader_locale(None,
                                                                            sub.get("locale")),
                                             SEVERITIES)
            record.checks = checks
            record.name_consistency = decision.name_consistency
            record.evidence = {**evidence_of(checks, links), **decision.evidence}
            record.account_fingerprint = account
            record.vat_key, record.registration_key = vat_key, registration_key
            record.checked_at = now
            record.settled_at = now
            record.attempts = expected_attempts + 1
            record.evidence["self_certification"] = certification_of(sub)
            if decision.verdict == Verdict.PENDING:
                record.expires_at = None
                record.next_retry_at = now + timedelta(seconds=self._backoff(record.attempts))
            else:
                record.expires_at = now + timedelta(seconds=self.settings.verdict_ttl_s)
                record.next_retry_at = None
            kept = self.casework.kept_approval(record)
            if kept is not None:  # the approval in force stays: the facts did not change
                record.evidence["approval_kept"] = {"review_id": kept["id"],
                                                    "verification_id": kept["verification_id"]}
            result = self.view(record)
            old = previous.verdict if previous else None
            before_pending = self._verdict_before_pending(record) if old == Verdict.PENDING else old
            with self.evidence.transaction() as tx:
                notify = tx.settle(record, expected_attempts=expected_attempts)
                if notify is not None:
                    if notify:
                        self._webhook(tx, EVENT_COMPLETED, record, result)
                    if kept is not None:
                        tx.point_trader_at(kept["verification_id"], Verdict.VERIFIED.value,
                                           tenant=record.tenant_id, trader_id=record.trader_id)
                    else:
                        correction = self._correction(tx, record, before_pending)
                        if old is not None and old != record.verdict:
                            statement = (correction or {}).get("statement")
                            self._webhook(tx, EVENT_CHANGED, record, {
                                **result, "previous_verdict": old, "correction": correction,
                                **({"statement": statement} if statement else {})})
            if notify is None:  # another run of it settled first: its answer stands
                log.info("verification settled by another run",
                         extra={"verification": record.id})
                settled = self.evidence.get(record.id)
                return self.view(settled) if settled is not None else result
            metrics.verdict(record.verdict, priority)
            if previous is not None and previous.fingerprint != record.fingerprint:
                # Only the trader's current submission may answer from the cache: a trader
                # going back to earlier data is verified again, not told an old verdict.
                self.cache.drop(previous.fingerprint)
            if decision.verdict != Verdict.PENDING:
                self.cache.put(record.fingerprint, result)
            self.cache.publish(record.id, result)
        finally:
            self.cache.release(record.fingerprint, record.id)
        log.info("verification settled", extra={
            "verification": record.id, "verdict": record.verdict, "attempts": record.attempts})
        return result

    def _verdict_before_pending(self, record: VerificationRecord) -> str:
        """The trader's last verdict other than ``pending`` (an upstream fault in between)."""
        return next((r.verdict for r in self.evidence.history(record.trader_id, limit=20,
                                                              tenant=record.tenant_id)
                     if r.id != record.id and r.verdict not in (None, Verdict.PENDING)),
                    Verdict.PENDING)

    def _fan_out(self, sub: dict[str, Any], request_id: str | None,
                 priority: str = "interactive") -> Checks:
        deadline = time.monotonic() + self.settings.deadline_s
        bodies = upstream_bodies(sub, priority)
        asked = [(name, body) for name, body in bodies.items() if body is not None]
        # The first service is asked from this thread, which would only wait for the others
        # (one thread hand-off less a verification); the others at once on the pool. A call's
        # read timeout is bounded by the deadline, so this one ends by it too.
        futures = {name: context.submit(self.calls, self.clients[name].call, body,
                                        deadline=deadline, request_id=request_id)
                   for name, body in asked[1:]}
        # The services' JSON: each is read as its answer type (services.gateway.answers).
        answers: dict[str, Any] = dict.fromkeys(bodies)
        if asked:
            first, body = asked[0]
            answers[first] = self.clients[first].call(body, deadline=deadline,
                                                      request_id=request_id)
        for name, fut in futures.items():
            try:
                answers[name] = fut.result(timeout=max(0.0, deadline - time.monotonic()) + 1)
            except FutureTimeout:
                answers[name] = {"status": "unavailable", "error": {
                    "code": "GATEWAY_DEADLINE", "retryable": True,
                    "message": "The service did not answer within the deadline."}}
        return {"vat": answers["vat"], "registry": answers["registry"],
                "payment": answers["payment"]}

    def _correction(self, tx: Transaction, record: VerificationRecord,
                    old: str | None) -> dict[str, Any] | None:
        """Art 30(3): a trader that could trade and is now rejected must correct its data by
        a date, after which the marketplace is told to suspend it; a trader back in order
        closes its correction; every rejection gets its statement of reasons
        (:meth:`casework.Casework.on_settled`). Written in the settling transaction ``tx``;
        returns what the ``verdict.changed`` webhook says of it. ``old``: the verdict before,
        ``pending`` looked through."""
        return self.casework.on_settled(tx, record, old)

    def send_due_suspensions(self) -> int:
        """Send ``trader.suspension_due`` for every trader whose correction time has passed
        while still rejected (once per trader, across processes); return how many.

        Each trader is claimed and its webhook written in one transaction: a crash between
        the two can neither lose the notice nor send it twice."""
        sent = 0
        now = _now()
        for tenant, trader_id, verification_id, due_at in self.evidence.due_suspensions(now):
            record = self.evidence.get(verification_id)
            if record is None:
                continue
            state = self.evidence.trader_state(trader_id, tenant=tenant) or {}
            correction = state.get("correction") or {}
            statement_id = correction.get("statement_id")
            with self.evidence.transaction() as tx:
                if not tx.claim_suspension(trader_id, now, tenant=tenant):
                    continue  # another process took it
                log.warning("trader not corrected after its correction time: suspension due",
                            extra={"verification": record.id})
                self._webhook(tx, EVENT_SUSPENSION_DUE, record, {
                    **self.view(record), "correction": {
                        "requested": True,
                        "correct_by": _iso(due_at),
                        "items": correction.get("items"),
                        "reasons": [r for r in record.reasons or []
                                    if r["severity"] == "error"],
                        # what staff or a reviewer wrote the trader must correct, if they did
                        "staff_reasons": correction.get("reasons"),
                        **({"statement": self.casework.statement_ref(statement_id)}
                           if statement_id else {})}})
            sent += 1
        return sent

    def _backoff(self, attempts: int) -> float:
        schedule = self.settings.retry_schedule_s
        return schedule[min(attempts - 1, len(schedule) - 1)]

    def _webhook(self, tx: Transaction, event: str, record: VerificationRecord,
                 result: dict[str, Any]) -> None:
        target = self.webhook_target(record.client_id)
        if not target:
            return
        tx.enqueue_webhook(
            client_id=record.client_id, url=target, event=event,
            payload={"event": event, "verification": result},
            verification_id=record.id, trader_id=record.trader_id, tenant=record.tenant_id,
        )

    # -- views ------------------------------------------------------------------------------------

    def view(self, record: VerificationRecord) -> dict[str, Any]:
        """The API's representation of a verification."""
        return {
            "id": record.id,
            "trader_id": record.trader_id,
            "state": record.state,
            "verdict": record.verdict,
            "items": record.items,
            "reasons": record.reasons,
            "checks": record.checks,
            "name_consistency": record.name_consistency,
            "evidence": record.evidence,
            "created_at": _iso(record.created_at),
            "checked_at": _iso(record.checked_at),
            "expires_at": _iso(record.expires_at),
            "fingerprint": record.fingerprint,
            "attempts": record.attempts,
            "cached": False,
            "source": record.source,
            "settles_verification_id": record.settles_verification_id,
            "review_id": record.review_id,
            "approval_kept": (record.evidence or {}).get("approval_kept"),
        }

    def _running(self, record: VerificationRecord) -> dict[str, Any]:
        return {**self.view(record), "state": "running"}

    @staticmethod
    def _placeholder(verification_id: str, trader_id: str | None) -> dict[str, Any]:
        """A running verification the log no longer shows (purged meanwhile)."""
        return {"id": verification_id, "trader_id": trader_id, "state": "running",
                "verdict": None, "items": None, "reasons": None, "checks": None,
                "name_consistency": None, "evidence": None, "cached": False}

    def close(self) -> None:
        """Stop taking work (tests and shutdown)."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.calls.shutdown(wait=False, cancel_futures=True)


def _log_failure(future: Future[dict[str, Any]]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("verification failed", exc_info=future.exception())


def upstream_bodies(sub: dict[str, Any],
                    priority: str = "interactive") -> dict[str, dict[str, Any] | None]:
    """What to ask each service, or None where the trader gave nothing to check.

    >>> upstream_bodies({"vat_number": "DE100"}, "batch")["vat"]
    {'vat_number': 'DE100', 'priority': 'batch'}
    >>> upstream_bodies({"vat_number": "DE100"})["vat"]
    {'vat_number': 'DE100'}
    """
    address = sub.get("address") or {}
    vat = None
    if sub.get("vat_number"):
        trader = {k: v for k, v in {"name": sub.get("name"), "street": address.get("street"),
                                    "postcode": address.get("postcode"),
                                    "city": address.get("city")}.items() if v}
        vat = {"vat_number": sub["vat_number"], **({"trader": trader} if trader else {})}
        if priority != "interactive":
            vat["priority"] = priority
    registry = None
    if (sub.get("registration") or {}).get("number"):  # not {"not_registered": true}
        reg = sub["registration"]
        registry = {k: v for k, v in {
            "country_code": reg.get("country_code") or address.get("country_code"),
            "number": reg.get("number"), "kind": reg.get("kind"),
            "register": reg.get("register"), "name": sub.get("name")}.items() if v}
    payment = None
    if sub.get("payment"):
        pay = sub["payment"]
        # kind iban (the default) sends no kind: the payment service's default too
        payment = {k: v for k, v in {"kind": pay.get("kind"), "iban": pay.get("iban"),
                                     "bic": pay.get("bic"),
                                     "account_number": pay.get("account_number"),
                                     "country_code": pay.get("country_code"),
                                     "reference": pay.get("reference"),
                                     "provider": pay.get("provider"),
                                     "account_holder": pay.get("account_holder"),
                                     "trader_name": sub.get("name")}.items() if v}
        # Ask the payee's bank (Verification of Payee) whenever there is a name to check.
        payment["verify_payee"] = bool(payment.get("account_holder") or payment.get("trader_name"))
    return {"vat": vat, "registry": registry, "payment": payment}


def identity_keys(checks: Checks) -> tuple[str | None, str | None]:
    """The VAT number and the registration ("CC:kind:number") the checks read, where their
    format was valid: the keys that link traders sharing an identity.

    >>> identity_keys({"vat": {"format_valid": True, "vat_number": "FR19812345676"},
    ...                "registry": {"format_valid": True, "country_code": "FR",
    ...                             "kind": "siren", "normalised": "812345676"}})
    ('FR19812345676', 'FR:siren:812345676')
    >>> identity_keys({"vat": {"format_valid": False, "vat_number": "FR1"}, "registry": None})
    (None, None)
    """
    vat, reg = checks["vat"], checks["registry"]
    vat_key = vat["vat_number"] if vat and "format_valid" in vat and vat["format_valid"] else None
    registration_key = None
    if reg and "format_valid" in reg and reg["format_valid"] and reg["normalised"]:
        registration_key = f"{reg['country_code'] or ''}:{reg['kind']}:{reg['normalised']}"
    return vat_key, registration_key


def certification_of(sub: dict[str, Any]) -> dict[str, Any] | None:
    """The self-certification on record (30(1)(e)): accepted or not, when (``accepted_at``,
    with ``accepted_at_source``: ``client`` or ``gateway``, the time it received the
    submission) and the version of the text accepted; None when the trader gave none.

    >>> certification_of({"self_certification": {"accepted": True, "text_version": "v2"}})
    {'accepted': True, 'accepted_at': None, 'accepted_at_source': None, 'text_version': 'v2'}
    """
    cert = sub.get("self_certification")
    if not cert:
        return None
    return {k: cert.get(k) for k in ("accepted", "accepted_at", "accepted_at_source",
                                     "text_version")}


def evidence_of(checks: Checks, links: Sequence[Link] = ()) -> dict[str, Any]:
    """The proof of each check a regulator may ask for, pulled out of the answers, and the
    other traders this one shares a payment account, VAT number or registration with."""
    vat_answer, reg_answer, pay_answer = checks["vat"], checks["registry"], checks["payment"]
    # the services' own results (None: not asked, or the service gave no answer of its own)
    vat = vat_answer if vat_answer and "checked_at" in vat_answer else None
    reg = reg_answer if reg_answer and "checked_at" in reg_answer else None
    pay = pay_answer if pay_answer and "checked_at" in pay_answer else None
    return {
        "vies_consultation_number": vat["consultation_number"] if vat else None,
        "vies_request_date": vat["request_date"] if vat else None,
        "vies_checked_at": vat["checked_at"] if vat else None,
        "vies_status": vat_answer["status"] if vat_answer else None,
        "register_source": reg["source"] if reg else None,
        "register_status_raw": reg["status_raw"] if reg else None,
        "register_checked_at": reg["checked_at"] if reg else None,
        "payment_bank": pay["bank"] if pay else None,
        "payee_verification": pay["holder_match"] if pay else None,
        "sandbox": bool((vat and vat["sandbox"]) or (reg and reg["sandbox"])
                        or (pay and pay["sandbox"])),
        "linked_traders": [{"trader_id": link.trader_id, "verdict": link.verdict,
                            "via": sorted(link.via)} for link in links],
    }


class RetryLoop(threading.Thread):
    """The gateway's sweeper: in the background of each gateway process, it runs again the
    verifications that are due — ``pending`` ones on their retry schedule, and running ones
    whose process abandoned them (it died, or lost the database while settling) — and sends
    the suspensions that fell due (Art 30(3)).

    Work is leased in SQL (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so any number of gateway
    processes share it and each verification runs in one of them; a lease that runs out (the
    process died) frees it for the others. One record that fails (its sealed submission no
    longer opens, say) is reported for that record and the pass goes on.
    """

    def __init__(self, verifier: Verifier, poll_s: float = 5.0, batch: int = 16) -> None:
        super().__init__(name="pending-retries", daemon=True)
        self.verifier = verifier
        self.poll_s = poll_s
        self.batch = batch
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.poll_s):
            try:
                self.run_once()
            except Exception:  # the loop must survive a failing pass (the database is down)
                log.exception("sweeper pass failed")

    def run_once(self) -> int:
        """Run again every abandoned or due verification this process can lease (in parallel,
        on the verifier's pool), and send the suspensions that fell due; return how many
        verifications were run again."""
        evidence, lease_s = self.verifier.evidence, self.verifier.settings.lease_s
        done, more = 0, True
        while more and not self._stop_event.is_set():
            # A batch of each kind in turn: a long backlog of pending retries must not starve
            # the recovery of abandoned verifications, nor the other way round.
            records = [*evidence.claim_stale_running(_now(), self.batch, lease_s),
                       *evidence.claim_due_retries(_now(), self.batch, lease_s)]
            futures = [context.submit(self.verifier.pool, self._run_one, r) for r in records]
            done += sum(f.result() for f in futures)
            more = self._full(records)
        self.verifier.send_due_suspensions()
        # The evidence chain's back-stop: entries a dead process left in the inbox.
        evidence.sequence_chain()
        return done

    def _full(self, records: list[VerificationRecord]) -> bool:
        """Whether one of the two claims came back full (more may be waiting)."""
        running = sum(1 for r in records if r.state == "running")
        return self.batch in (running, len(records) - running)

    def _run_one(self, record: VerificationRecord) -> bool:
        """Run one leased verification; report a failure for this record only."""
        what = "recovered" if record.state == "running" else "retried"
        # Its log lines and service calls carry the id of the request that submitted it.
        with tracing.background("verification.retry", request_id=record.request_id):
            return self._retry(record, what)

    def _retry(self, record: VerificationRecord, what: str) -> bool:
        try:
            self.verifier.retry(record)
        except SealingError:
            # Left leased: it is tried again after the lease, e.g. once the key is back.
            log.error("sealed submission does not open: verification cannot be run again "
                      "(configure the key it was sealed with)",
                      extra={"verification": record.id})
            return False
        except Exception:
            log.exception("verification could not be run again",
                          extra={"verification": record.id})
            return False
        log.info("verification %s", what, extra={"verification": record.id})
        return True

    def stop(self) -> None:
        """End the loop after the current pass."""
        self._stop_event.set()
