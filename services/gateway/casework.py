"""Casework rules: review decisions, the Art 30(3) states, statements of reasons, complaints.

**Review decisions** (``approve`` | ``reject`` | ``request_information``) are taken by a
``reviewer`` or ``admin`` on the trader's current verification. ``approve`` needs a current
verdict ``needs_review``; ``reject`` and ``request_information`` may also be taken on a
``verified`` trader (staff may act on any trader still trading); on a ``rejected`` or
``pending`` one they are a 409. Each decision makes a NEW verification (``source: manual``)
linked to the automated one it settles, which becomes the trader's current verification
(the trader leaves the review queue), and sends ``verdict.changed`` when the verdict changes —
in one transaction with the review, its statement, the trader's state and the staff action.

**Approvals kept unless the facts change.** An approval stores :func:`facts_fingerprint` of
the automated verification it settled. When a later automated verification of the trader
settles ``needs_review`` with the same facts fingerprint, the approval stays in force: the
automated verification is stored (``approval_kept`` in its view) and the trader's current
verification stays the approved one. A ``pending`` verdict (an upstream fault is not a fact)
keeps it too. Any other outcome — different facts, ``rejected`` or ``verified`` — applies,
and the approval is cleared.

**States** (``traders.state``): ``active`` → ``correction_requested`` (staff's request, a
``request_information`` decision, or a rejection of a trader that could trade) →
``suspended`` (the marketplace confirms, once the due time passed) → ``reinstated`` (staff,
once the current verdict is ``verified``). A ``verified`` verdict closes an open correction
(back to ``active``); so does a ``needs_review`` one for a correction that an automated
rejection opened (the data passes the checks again; a person decides). Every other move is
a 409 naming the current state.

**Complaints** are decided by a person other than the one who took the contested decision
(any reviewer for an automated one). Upheld: a rejection is withdrawn by a new manual
verification ``needs_review`` (the trader is back in the queue for a fresh decision, its
correction closed); a correction request is withdrawn (``active``); a suspension is lifted
(``reinstated``).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from services.gateway.actors import Actor
from services.gateway.evidence import Transaction, VerificationRecord
from services.gateway.i18n import _, negotiate, translate
from services.gateway.reasons import CATALOGUE, ITEMS, Verdict
from shared.errors import BadRequest, Conflict, Forbidden, NotFound

if TYPE_CHECKING:
    from services.gateway.verifications import Verifier

EVENT_CHANGED = "verdict.changed"
EVENT_CORRECTION_REQUESTED = "trader.correction_requested"
EVENT_SUSPENDED = "trader.suspended"
EVENT_REINSTATED = "trader.reinstated"
EVENT_COMPLAINT_RECEIVED = "complaint.received"
EVENT_COMPLAINT_DECIDED = "complaint.decided"

ACTIVE, CORRECTION, SUSPENDED, REINSTATED = ("active", "correction_requested", "suspended",
                                             "reinstated")
#: States from which a correction may be requested.
_MAY_CORRECT = (ACTIVE, REINSTATED)
#: Document kinds that prove 30(1)(b) (an identification document or an eID).
IDENTITY_KINDS = ("identity_document", "eid_assertion")
#: The keys of a check's answer that are its facts (what it found), for the fingerprint.
_FACT_KEYS = ("status", "valid", "format_valid", "active", "found", "holder_match",
              "name_match", "registered")

# Fixed texts of statements and corrections (translated: services/gateway/translations).
T_TITLE = _("Statement of reasons")
T_DECISION = _("Decision")
T_FACTS = _("Facts and circumstances")
T_GROUND = _("Legal ground")
T_SOURCES = _("Sources consulted")
T_AUTOMATED = _("Automated means")
T_REDRESS = _("How to complain")
T_REFERENCE = _("Reference")
T_DATE = _("Date")
T_TRADER = _("Trader")
T_SOURCE = _("Source")
T_CHECKED_AT = _("Checked at")
T_DECISION_REJECTION = _("Your trader account was rejected: the information given does not meet "
                         "the traceability requirements of Article 30 of the Digital Services "
                         "Act.")
T_DECISION_CORRECTION = _("You are asked to correct or complete your trader information by "
                          "%(due)s; after that date the marketplace must suspend your account.")
T_DECISION_SUSPENSION = _("Your trader account is suspended: the information was not corrected "
                          "by %(due)s.")
T_GROUND_TEXT = _("Regulation (EU) 2022/2065 (Digital Services Act), Article 30(3): the online "
                  "marketplace must obtain complete and reliable trader information (Article "
                  "30(1), points %(items)s) and suspend a trader that does not correct it.")
T_AUTOMATED_YES = _("This decision was taken by automated means.")
T_AUTOMATED_NO = _("This decision was taken by a person.")
T_REVIEW_REJECTED = _("A reviewer examined the information for points %(items)s and rejected "
                      "it.")
T_REVIEW_MORE = _("A reviewer needs more information for points %(items)s.")
T_STAFF_REQUEST = _("The marketplace asks for a correction of points %(items)s.")
T_NOTE = _("The reviewer's note: %(note)s")
T_REDRESS_COMPLAINT = _("You may complain about this decision, free of charge, through the "
                        "marketplace's internal complaint-handling system (Article 20 of the "
                        "Digital Services Act), quoting the reference %(statement_id)s.")
T_REDRESS_COURT = _("You may also refer the dispute to a certified out-of-court dispute "
                    "settlement body (Article 21 of the Digital Services Act), and in any case "
                    "bring it before a court under national law.")
T_COMPLAINT_UPHELD = _("Your complaint was upheld: the contested decision is withdrawn.")
T_COMPLAINT_REJECTED = _("Your complaint was rejected: the contested decision stands.")

#: Every fixed text above (the i18n test checks the catalogues hold them).
TEXTS = (T_TITLE, T_DECISION, T_FACTS, T_GROUND, T_SOURCES, T_AUTOMATED, T_REDRESS,
         T_REFERENCE, T_DATE, T_TRADER, T_SOURCE, T_CHECKED_AT, T_DECISION_REJECTION,
         T_DECISION_CORRECTION,
         T_DECISION_SUSPENSION, T_GROUND_TEXT, T_AUTOMATED_YES, T_AUTOMATED_NO,
         T_REVIEW_REJECTED, T_REVIEW_MORE, T_STAFF_REQUEST, T_NOTE, T_REDRESS_COMPLAINT,
         T_REDRESS_COURT, T_COMPLAINT_UPHELD, T_COMPLAINT_REJECTED)


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime | date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds").replace("+00:00", "Z")
    return value.isoformat()


def _new_id() -> str:
    return uuid.uuid4().hex


def facts_fingerprint(record: VerificationRecord) -> str:
    """What a decision on ``record`` was taken on: SHA-256 of the submission's fingerprint
    (the data the trader gave), the reason codes with their items (what the checks flagged)
    and each check's answer (VAT, register, payment: ``status``, ``valid``, ``holder_match``,
    ... and an error code). Times, consultation numbers and the verdict are left out: the same
    data checked again with the same answers has the same fingerprint.

    >>> r = VerificationRecord("v1", "t", "c", "fp", "settled", "needs_review", {}, [
    ...     {"code": "ACCOUNT_SHARED", "item": "30(1)(c)"}], {"vat": {"valid": True,
    ...     "checked_at": "x"}}, None, None, {}, None, None, datetime.now(UTC), None, None, None)
    >>> facts_fingerprint(r) == facts_fingerprint(replace(r, checks={"vat": {"valid": True}}))
    True
    >>> facts_fingerprint(r) == facts_fingerprint(replace(r, checks={"vat": {"valid": False}}))
    False
    """
    checks: dict[str, dict[str, Any] | None] = {}
    for name, answer in sorted((record.checks or {}).items()):
        if isinstance(answer, dict):
            facts = {k: answer.get(k) for k in _FACT_KEYS if k in answer}
            error = answer.get("error")
            if isinstance(error, dict):
                facts["error"] = error.get("code")
            checks[name] = facts
        else:
            checks[name] = None
    reasons = sorted({(r.get("code"), r.get("item")) for r in record.reasons or []},
                     key=lambda x: (str(x[0]), str(x[1])))
    canonical = json.dumps([record.fingerprint, reasons, checks], sort_keys=True,
                           separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def trader_locale(record: VerificationRecord | None, requested: str | None = None) -> str:
    """The language of the trader's messages: ``requested``, else its submission's ``locale``."""
    tag = requested or ((record.submission or {}).get("locale") if record else None)
    return negotiate(tag)


def item_labels(items: list[str]) -> str:
    """``["b", "c"]`` → ``"(b), (c)"`` (points of Art 30(1))."""
    return ", ".join(f"({k})" for k in items)


def person(label: str | None) -> str | None:
    """The person behind an actor label, to compare deciders: ``staff:alice`` and
    ``alice via client:ops`` are both ``alice``; None for an automated decision.

    >>> person("staff:Alice"), person("alice via client:staff"), person(None)
    ('alice', 'alice', None)
    """
    if not label:
        return None
    name = label.split(" via ", 1)[0]
    if name.startswith("staff:"):
        name = name[len("staff:"):]
    return name.strip().casefold()


def reason_messages(reasons: list[dict[str, Any]] | None, locale: str,
                    severities: tuple[str, ...] = ("error", "warning")) -> list[dict[str, Any]]:
    """The reasons of those severities, their ``message`` in the trader's language."""
    out = []
    for r in reasons or []:
        if r.get("severity") not in severities:
            continue
        known = CATALOGUE.get(r.get("code", ""))
        message = translate(locale, known.message) if known else r.get("message")
        out.append({**r, "message": message})
    return out


class Casework:
    """The casework of one verifier (its evidence log, settings, webhook targets)."""

    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier
        self.evidence = verifier.evidence

    # -- views --------------------------------------------------------------------------------

    def trader_view(self, trader_id: str, *, tenant: str) -> dict[str, Any] | None:
        """The trader's Art 30(3) state as ``GET /v1/traders/{id}`` shows it."""
        row = self.evidence.trader_state(trader_id, tenant=tenant)
        return self._state_view(row) if row else None

    @staticmethod
    def _state_view(row: dict[str, Any]) -> dict[str, Any]:
        correction = row.get("correction")
        if correction is None and row.get("correction_due_at") is not None:
            correction = {"items": [], "reasons": None}  # opened before migration 0008
        if correction is not None:
            correction = {**correction, "due_at": _iso(row.get("correction_due_at")),
                          "suspension_due_sent_at": _iso(row.get("suspension_due_sent_at"))}
        return {"state": row.get("state") or ACTIVE,
                "state_changed_at": _iso(row.get("state_changed_at")),
                "correction": correction,
                "suspended_at": _iso(row.get("suspended_at")),
                "reinstated_at": _iso(row.get("reinstated_at")),
                "approval_review_id": row.get("approval_review_id")}

    @staticmethod
    def statement_ref(statement_id: str) -> dict[str, str]:
        """How a webhook names a statement: its id and URL (relative to the gateway)."""
        return {"id": statement_id, "url": f"/v1/statements/{statement_id}"}

    @staticmethod
    def statement_view(row: dict[str, Any]) -> dict[str, Any]:
        """A statement of reasons as ``GET /v1/statements/{id}`` serves it."""
        return {"id": row["id"], "kind": row["kind"], "trader_id": row["trader_id"],
                "verification_id": row["verification_id"], "review_id": row["review_id"],
                "automated": row["automated"], "decided_by": row["decided_by"],
                "locale": row["locale"], "created_at": _iso(row["created_at"]),
                "url": f"/v1/statements/{row['id']}", **row["content"]}

    @staticmethod
    def complaint_view(row: dict[str, Any]) -> dict[str, Any]:
        return {"id": row["id"], "trader_id": row["trader_id"],
                "statement_id": row["statement_id"], "contested_by": row["contested_by"],
                "text": row["text"], "locale": row["locale"],
                "received_at": _iso(row["received_at"]), "status": row["status"],
                "decided_at": _iso(row["decided_at"]), "decided_by": row["decided_by"],
                "decision_note": row["decision_note"]}

    # -- statements ---------------------------------------------------------------------------

    def sources(self, record: VerificationRecord) -> list[dict[str, Any]]:
        """The outside sources a verification consulted, and when."""
        # read loosely: a statement lists whatever a stored verification recorded
        checks = cast(dict[str, Any], record.checks or {})
        ev: dict[str, Any] = record.evidence or {}
        out: list[dict[str, Any]] = [{"source": "trace30 verification",
                                      "reference": record.id,
                                      "checked_at": _iso(record.checked_at)}]
        vat, reg, pay = (checks.get(k) for k in ("vat", "registry", "payment"))
        if isinstance(vat, dict):
            via = vat.get("source")
            out.append({"source": "VAT register (VIES" + (f", {via})" if isinstance(via, str)
                                                          else ")"),
                        "reference": ev.get("vies_consultation_number"),
                        "checked_at": ev.get("vies_checked_at") or vat.get("checked_at"),
                        "status": vat.get("status")})
        if isinstance(reg, dict):
            register = ev.get("register_source")
            out.append({"source": register if isinstance(register, str) and register
                        else "business register",
                        "reference": None,
                        "checked_at": ev.get("register_checked_at") or reg.get("checked_at"),
                        "status": reg.get("status")})
        if isinstance(pay, dict):
            out.append({"source": (pay.get("bank") and f"payee verification ({pay['bank']})")
                        or "payee verification",
                        "reference": None, "checked_at": pay.get("checked_at"),
                        "status": pay.get("status")})
        return out

    def write_statement(self, tx: Transaction, kind: str, record: VerificationRecord, *,
                        locale: str, automated: bool, decided_by: str | None,
                        items: list[str], facts: list[dict[str, Any]], decision: str,
                        review_id: str | None = None,
                        documents: list[dict[str, Any]] | None = None) -> dict[str, str]:
        """Store a statement of reasons (Art 17) in ``tx``; return its reference."""
        statement_id = _new_id()
        content = {
            "title": translate(locale, T_TITLE),
            "decision": decision,
            "facts": facts,
            "legal_ground": {"provision": "DSA Art 30(3)",
                             "items": [ITEMS[k] for k in items],
                             "text": translate(locale, T_GROUND_TEXT,
                                               items=item_labels(items) or "(a)-(e)")},
            "sources": [*self.sources(record),
                        *({"source": f"document: {d['kind']}", "reference": d["sha256"],
                           "checked_at": _iso(d["uploaded_at"])} for d in documents or [])],
            "automated_means": translate(locale, T_AUTOMATED_YES if automated
                                         else T_AUTOMATED_NO),
            "redress": {
                "complaint": {"url": f"/v1/traders/{record.trader_id}/complaints",
                              "text": translate(locale, T_REDRESS_COMPLAINT,
                                                statement_id=statement_id)},
                "out_of_court_and_judicial": translate(locale, T_REDRESS_COURT),
                "provisions": ["DSA Art 20", "DSA Art 21", "DSA Art 30(4)"]},
        }
        tx.insert_statement(id=statement_id, tenant_id=record.tenant_id,
                            trader_id=record.trader_id, kind=kind,
                            verification_id=record.id, review_id=review_id,
                            automated=automated, decided_by=decided_by, locale=locale,
                            content=content, created_at=_now())
        return self.statement_ref(statement_id)

    # -- webhooks -----------------------------------------------------------------------------

    def send(self, tx: Transaction, event: str, record: VerificationRecord,
             body: dict[str, Any]) -> None:
        """A webhook about the trader of ``record`` to its marketplace, in ``tx``."""
        target = self.verifier.webhook_target(record.client_id)
        if not target:
            return
        tx.enqueue_webhook(client_id=record.client_id, url=target, event=event,
                           payload={"event": event, "trader_id": record.trader_id, **body},
                           verification_id=record.id, trader_id=record.trader_id,
                           tenant=record.tenant_id)

    # -- hooks of an automated verification ----------------------------------------------------

    def kept_approval(self, record: VerificationRecord) -> dict[str, Any] | None:
        """The approval in force that ``record`` (settled, automated) leaves in force, or None
        (see the module's doc: same facts and ``needs_review``, or ``pending``)."""
        row = self.evidence.trader_state(record.trader_id, tenant=record.tenant_id)
        review_id = row.get("approval_review_id") if row else None
        if not review_id:
            return None
        review = self.evidence.review(review_id, tenant=record.tenant_id)
        if review is None or not review.get("verification_id"):
            return None
        same = review.get("facts_fingerprint") == facts_fingerprint(record)
        if record.verdict == Verdict.PENDING or (record.verdict == Verdict.NEEDS_REVIEW
                                                 and same):
            return review
        return None

    def on_settled(self, tx: Transaction, record: VerificationRecord,
                   before: str | None) -> dict[str, Any] | None:
        """Art 30(3) after an automated verification settled in ``tx`` (not kept under an
        approval): the approval is cleared; a rejection (of a trader not rejected before: a
        re-verification that confirms one is no new decision) gets its statement and, for a
        trader that could trade, opens a correction; a trader back in order closes its
        correction.
        Returns what ``verdict.changed`` says of the correction (None: nothing)."""
        if record.verdict == Verdict.PENDING:
            return None
        row = tx.lock_trader(record.trader_id, tenant=record.tenant_id) or {}
        if row.get("approval_review_id"):
            tx.update_trader(record.trader_id, tenant=record.tenant_id, approval_review_id=None)
        state = row.get("state") or ACTIVE
        locale = trader_locale(record)
        if record.verdict == Verdict.REJECTED:
            if before == Verdict.REJECTED:
                return None  # confirmed again: the decision and its statement stand
            errors = [r for r in record.reasons or [] if r["severity"] == "error"]
            items = sorted({k for k, v in ITEMS.items() for r in errors if r["item"] == v})
            statement = self.write_statement(
                tx, "rejection", record, locale=locale, automated=True, decided_by=None,
                items=items, facts=reason_messages(errors, locale),
                decision=translate(locale, T_DECISION_REJECTION))
            if before in (Verdict.VERIFIED, Verdict.NEEDS_REVIEW) and state in _MAY_CORRECT:
                due = self._open_correction(
                    tx, record, items=items, reasons=None, opened_by="rejection",
                    statement=statement,
                    due_at=_now() + timedelta(days=self.verifier.settings.correction_days))
                return {"requested": True, "correct_by": _iso(due),
                        "reasons": reason_messages(errors, locale, ("error",)),
                        "statement": statement}
            if state == CORRECTION and row.get("correction_due_at") is not None:
                return {"requested": True, "correct_by": _iso(row["correction_due_at"]),
                        "reasons": reason_messages(errors, locale, ("error",)),
                        "statement": statement}
            return None
        if self._closes(row, record.verdict):
            self._close_correction(tx, record)
            return {"requested": False, "closed": True}
        return None

    @staticmethod
    def _closes(row: dict[str, Any], verdict: str | None) -> bool:
        """Whether a verdict closes the trader's open correction."""
        if row.get("correction_due_at") is None and row.get("state") != CORRECTION:
            return False
        if row.get("state") == SUSPENDED:
            return False  # a suspended trader is reinstated by staff
        opened_by = (row.get("correction") or {}).get("opened_by", "rejection")
        return verdict == Verdict.VERIFIED or (verdict == Verdict.NEEDS_REVIEW
                                               and opened_by == "rejection")

    def _open_correction(self, tx: Transaction, record: VerificationRecord, *,
                         items: list[str], reasons: str | None, opened_by: str,
                         statement: dict[str, str], due_at: datetime,
                         requested_by: str | None = None) -> datetime:
        now = _now()
        tx.update_trader(record.trader_id, tenant=record.tenant_id, state=CORRECTION,
                         state_changed_at=now, correction_due_at=due_at,
                         suspension_due_sent_at=None,
                         correction={"items": items, "reasons": reasons,
                                     "opened_by": opened_by, "requested_by": requested_by,
                                     "requested_at": _iso(now),
                                     "statement_id": statement["id"]})
        return due_at

    @staticmethod
    def _close_correction(tx: Transaction, record: VerificationRecord) -> None:
        tx.update_trader(record.trader_id, tenant=record.tenant_id, state=ACTIVE,
                         state_changed_at=_now(), correction=None, correction_due_at=None,
                         suspension_due_sent_at=None)

    # -- review decisions ---------------------------------------------------------------------

    def decide(self, trader_id: str, actor: Actor, *, reviewer: str, decision: str,
               items: list[str], note: str, document_ids: list[str] | None = None
               ) -> dict[str, Any]:
        """A reviewer's decision on the trader's current verification (module doc)."""
        actor.require("reviewer")
        tenant = actor.tenant
        items, note, document_ids = _check_decision(decision, items, note, document_ids or [])
        current = self.evidence.current(trader_id, tenant=tenant)
        if current is None:
            raise NotFound(f"No settled verification for trader {trader_id}.")
        allowed = ((Verdict.NEEDS_REVIEW,) if decision == "approve"
                   else (Verdict.NEEDS_REVIEW, Verdict.VERIFIED))
        if current.verdict not in allowed:
            raise Conflict(f"A decision '{decision}' needs a current verdict of "
                           f"{' or '.join(allowed)}; the trader's is {current.verdict}.")
        documents = self._check_documents(trader_id, tenant, decision, items, document_ids)
        settles = (current.settles_verification_id if current.source == "manual"
                   and current.settles_verification_id else current.id)
        automated = self.evidence.get(settles) or current
        now = _now()
        review_id = _new_id()
        verdict = {"approve": Verdict.VERIFIED, "reject": Verdict.REJECTED,
                   "request_information": Verdict.NEEDS_REVIEW}[decision]
        statuses = dict(current.items or {})
        for k in items:
            statuses[ITEMS[k]] = {"approve": "verified", "reject": "failed",
                                  "request_information": statuses.get(ITEMS[k], "unverified")
                                  }[decision]
        manual = replace(
            current, id=uuid.uuid4().hex, verdict=verdict.value, items=statuses,
            evidence={**(current.evidence or {}), "approval_kept": None,
                      "review": {"id": review_id, "decision": decision, "items": items,
                                 "reviewer": reviewer, "decided_at": _iso(now),
                                 "document_ids": document_ids}},
            created_at=now, settled_at=now, next_retry_at=None, request_id=None,
            expires_at=now + timedelta(seconds=self.verifier.settings.verdict_ttl_s),
            source="manual", settles_verification_id=settles, review_id=review_id)
        locale = trader_locale(current)
        result = self.verifier.view(manual)
        with self.evidence.transaction() as tx:
            row = tx.lock_trader(trader_id, tenant=tenant) or {}
            if row.get("current_verification_id") != current.id:
                raise Conflict("The trader's current verification changed meanwhile; reload "
                               "and decide again.")
            tx.insert_review(id=review_id, tenant_id=tenant, trader_id=trader_id,
                             decision=decision, items=items, note=note,
                             document_ids=document_ids, reviewer=reviewer,
                             staff_id=actor.staff_id, decided_at=now,
                             settles_verification_id=settles, verification_id=manual.id,
                             facts_fingerprint=facts_fingerprint(automated))
            tx.insert_verification(manual, copy_sealed_from=current.id)
            tx.update_trader(trader_id, tenant=tenant,
                             approval_review_id=review_id if decision == "approve" else None)
            correction = self._after_decision(tx, manual, row, decision, items, note,
                                              reviewer, locale, documents)
            if correction and correction.get("statement"):
                result["statement"] = correction["statement"]
            if current.verdict != manual.verdict:
                self.send(tx, EVENT_CHANGED, manual, {"verification": {
                    **result, "previous_verdict": current.verdict, "correction": correction}})
            tx.add_action(tenant=tenant, actor=actor.label, staff_id=actor.staff_id,
                          action=f"review_{decision}", trader_id=trader_id,
                          verification_id=manual.id,
                          detail={"review_id": review_id, "items": items,
                                  "settles": settles, "reviewer": reviewer})
        # a resubmission of the same data is verified again (and the approval kept), rather
        # than answered the automated verdict from the cache
        self.verifier.cache.drop(current.fingerprint)
        return {"review": {"id": review_id, "decision": decision, "items": items,
                           "note": note, "reviewer": reviewer, "decided_at": _iso(now),
                           "document_ids": document_ids, "settles_verification_id": settles,
                           "verification_id": manual.id},
                "verification": result,
                "trader": self.trader_view(trader_id, tenant=tenant)}

    def _after_decision(self, tx: Transaction, manual: VerificationRecord,
                        row: dict[str, Any], decision: str, items: list[str], note: str,
                        reviewer: str, locale: str, documents: list[dict[str, Any]]
                        ) -> dict[str, Any] | None:
        state = row.get("state") or ACTIVE
        if decision == "approve":
            if self._closes(row, Verdict.VERIFIED):
                self._close_correction(tx, manual)
                return {"requested": False, "closed": True}
            return None
        labels = item_labels(items)
        facts = [{"item": ITEMS[k]} for k in items]
        if decision == "reject":
            facts = [{"text": translate(locale, T_REVIEW_REJECTED, items=labels)},
                     {"text": translate(locale, T_NOTE, note=note)},
                     *reason_messages(manual.reasons, locale)]
            statement = self.write_statement(
                tx, "rejection", manual, locale=locale, automated=False, decided_by=reviewer,
                items=items, facts=facts, decision=translate(locale, T_DECISION_REJECTION),
                review_id=manual.review_id, documents=documents)
        else:
            due_at = _now() + timedelta(days=self.verifier.settings.correction_days)
            facts = [{"text": translate(locale, T_REVIEW_MORE, items=labels)},
                     {"text": translate(locale, T_NOTE, note=note)},
                     *reason_messages(manual.reasons, locale)]
            statement = self.write_statement(
                tx, "correction_request", manual, locale=locale, automated=False,
                decided_by=reviewer, items=items, facts=facts,
                decision=translate(locale, T_DECISION_CORRECTION, due=_iso(due_at.date())),
                review_id=manual.review_id, documents=documents)
        if state not in _MAY_CORRECT:
            return {"requested": state == CORRECTION, "statement": statement}
        due = self._open_correction(
            tx, manual, items=items, reasons=note, opened_by="review", statement=statement,
            requested_by=reviewer,
            due_at=_now() + timedelta(days=self.verifier.settings.correction_days))
        correction = {"requested": True, "correct_by": _iso(due), "items": items,
                      "reasons": note, "statement": statement}
        if decision == "request_information":
            self.send(tx, EVENT_CORRECTION_REQUESTED, manual, {
                "trader": {"state": CORRECTION, "correction": correction},
                "statement": statement})
        return correction

    def _check_documents(self, trader_id: str, tenant: str, decision: str, items: list[str],
                         document_ids: list[str]) -> list[dict[str, Any]]:
        """The documents relied on, checked: the trader's, and for an approval of (b) a
        valid identification document among them."""
        docs = self.evidence.trader_documents(trader_id, document_ids, tenant=tenant)
        unknown = sorted(set(document_ids) - {d["id"] for d in docs})
        if unknown:
            raise BadRequest("Unknown documents for this trader.",
                             errors={"document_ids": [f"No document {i} of the trader."
                                                      for i in unknown]})
        if decision == "approve" and "b" in items:
            today = _now().date()
            valid = [d for d in docs if d["kind"] in IDENTITY_KINDS
                     and (d["expires_on"] is None or _as_date(d["expires_on"]) >= today)
                     and (d.get("name_check") or {}).get("match") is not False]
            if not valid:
                raise BadRequest(
                    "Approving 30(1)(b) needs an identification document or eID assertion of "
                    "the trader, not expired and in the trader's name (no "
                    "DOCUMENT_NAME_MISMATCH), among the documents relied on.",
                    errors={"document_ids": ["Add a valid identity_document or eid_assertion "
                                             "of the trader."]})
        return docs

    # -- corrections and suspension ------------------------------------------------------------

    def request_correction(self, trader_id: str, actor: Actor, *, items: list[str],
                           reasons: str, due_at: datetime | None = None) -> dict[str, Any]:
        """Staff ask the trader to correct ``items`` by ``due_at`` (default: the configured
        correction period): ``correction_requested``, a statement, the webhook."""
        actor.require("reviewer")
        items = _check_items(items)
        if not reasons or not reasons.strip():
            raise BadRequest("Say what to correct.", errors={"reasons": ["Must not be blank."]})
        now = _now()
        due = due_at or now + timedelta(days=self.verifier.settings.correction_days)
        if due <= now:
            raise BadRequest("The due date must be in the future.",
                             errors={"due_at": ["Must be in the future."]})
        record = self._current(trader_id, actor.tenant)
        locale = trader_locale(record)
        with self.evidence.transaction() as tx:
            row = self._locked(tx, trader_id, actor.tenant)
            if row["state"] not in _MAY_CORRECT:
                raise Conflict(f"A correction cannot be requested: the trader is "
                               f"{row['state']}.")
            statement = self.write_statement(
                tx, "correction_request", record, locale=locale, automated=False,
                decided_by=actor.label, items=items,
                facts=[{"text": translate(locale, T_STAFF_REQUEST,
                                          items=item_labels(items))},
                       {"text": reasons.strip()}],
                decision=translate(locale, T_DECISION_CORRECTION, due=_iso(due.date())))
            self._open_correction(tx, record, items=items, reasons=reasons.strip(),
                                  opened_by="staff", statement=statement, due_at=due,
                                  requested_by=actor.label)
            self.send(tx, EVENT_CORRECTION_REQUESTED, record, {
                "trader": {"state": CORRECTION,
                           "correction": {"items": items, "reasons": reasons.strip(),
                                          "due_at": _iso(due)}},
                "statement": statement, "verification": self.verifier.view(record)})
            tx.add_action(tenant=actor.tenant, actor=actor.label, staff_id=actor.staff_id,
                          action="request_correction", trader_id=trader_id,
                          verification_id=record.id,
                          detail={"items": items, "due_at": _iso(due),
                                  "statement_id": statement["id"]})
        return {"trader_id": trader_id, **(self.trader_view(trader_id, tenant=actor.tenant)
                                           or {}), "statement": statement}

    def confirm_suspension(self, trader_id: str, actor: Actor) -> dict[str, Any]:
        """The marketplace confirms it suspended the trader (its correction time passed)."""
        record = self._current(trader_id, actor.tenant)
        locale = trader_locale(record)
        now = _now()
        with self.evidence.transaction() as tx:
            row = self._locked(tx, trader_id, actor.tenant)
            if row["state"] != CORRECTION:
                raise Conflict(f"Only a trader asked for a correction can be suspended; the "
                               f"trader is {row['state']}.")
            due = row.get("correction_due_at")
            if due is not None and due > now:
                raise Conflict(f"The trader may correct its data until {_iso(due)}; the "
                               "suspension is not due yet.")
            items = list((row.get("correction") or {}).get("items") or [])
            statement = self.write_statement(
                tx, "suspension", record, locale=locale, automated=not actor.is_person,
                decided_by=actor.label, items=items,
                facts=[*reason_messages(record.reasons, locale, ("error",)),
                       *([{"text": row["correction"]["reasons"]}]
                         if (row.get("correction") or {}).get("reasons") else [])],
                decision=translate(locale, T_DECISION_SUSPENSION, due=_iso(due)))
            tx.update_trader(trader_id, tenant=actor.tenant, state=SUSPENDED,
                             state_changed_at=now, suspended_at=now)
            self.send(tx, EVENT_SUSPENDED, record, {
                "trader": {"state": SUSPENDED, "suspended_at": _iso(now)},
                "statement": statement})
            tx.add_action(tenant=actor.tenant, actor=actor.label, staff_id=actor.staff_id,
                          action="suspend", trader_id=trader_id, verification_id=record.id,
                          detail={"statement_id": statement["id"]})
        return {"trader_id": trader_id, **(self.trader_view(trader_id, tenant=actor.tenant)
                                           or {}), "statement": statement}

    def reinstate(self, trader_id: str, actor: Actor) -> dict[str, Any]:
        """Lift a suspension once a verification put the trader in order (``verified``)."""
        actor.require("reviewer")
        record = self._current(trader_id, actor.tenant)
        now = _now()
        with self.evidence.transaction() as tx:
            row = self._locked(tx, trader_id, actor.tenant)
            self._reinstate(tx, record, row, actor, now, check_verdict=True)
        return {"trader_id": trader_id, **(self.trader_view(trader_id, tenant=actor.tenant)
                                           or {})}

    def _reinstate(self, tx: Transaction, record: VerificationRecord, row: dict[str, Any],
                   actor: Actor, now: datetime, *, check_verdict: bool) -> None:
        if row["state"] != SUSPENDED:
            raise Conflict(f"Only a suspended trader can be reinstated; the trader is "
                           f"{row['state']}.")
        if check_verdict and row.get("current_verdict") != Verdict.VERIFIED:
            raise Conflict("A verification must put the trader in order first: its current "
                           f"verdict is {row.get('current_verdict')}, not verified.")
        tx.update_trader(record.trader_id, tenant=record.tenant_id, state=REINSTATED,
                         state_changed_at=now, reinstated_at=now, correction=None,
                         correction_due_at=None, suspension_due_sent_at=None)
        self.send(tx, EVENT_REINSTATED, record, {
            "trader": {"state": REINSTATED, "reinstated_at": _iso(now)}})
        tx.add_action(tenant=record.tenant_id, actor=actor.label, staff_id=actor.staff_id,
                      action="reinstate", trader_id=record.trader_id,
                      verification_id=record.id)

    def _current(self, trader_id: str, tenant: str) -> VerificationRecord:
        record = self.evidence.current(trader_id, tenant=tenant)
        if record is None:
            raise NotFound(f"No settled verification for trader {trader_id}.")
        return record

    @staticmethod
    def _locked(tx: Transaction, trader_id: str, tenant: str) -> dict[str, Any]:
        row = tx.lock_trader(trader_id, tenant=tenant)
        if row is None:
            raise NotFound(f"No trader {trader_id}.")
        row["state"] = row.get("state") or ACTIVE
        return row

    # -- complaints ---------------------------------------------------------------------------

    def complain(self, trader_id: str, actor: Actor, *, statement_id: str, text: str,
                 locale: str | None = None) -> dict[str, Any]:
        """Record the trader's complaint against the decision of a statement."""
        record = self._current(trader_id, actor.tenant)  # another tenant's trader: 404
        statement = self.evidence.statement(statement_id, tenant=actor.tenant)
        if statement is None or statement["trader_id"] != trader_id:
            raise BadRequest("No such statement of reasons for this trader.",
                             errors={"statement_id": ["No statement of this trader."]})
        if not text.strip():
            raise BadRequest("Say what is contested.", errors={"text": ["Must not be blank."]})
        complaint_id = _new_id()
        now = _now()
        with self.evidence.transaction() as tx:
            tx.insert_complaint(id=complaint_id, tenant_id=actor.tenant, trader_id=trader_id,
                                statement_id=statement_id,
                                contested_by=statement["decided_by"], text=text.strip(),
                                locale=negotiate(locale or statement["locale"]),
                                received_at=now, status="open")
            self.send(tx, EVENT_COMPLAINT_RECEIVED, record, {
                "complaint": {"id": complaint_id, "statement_id": statement_id,
                              "received_at": _iso(now), "status": "open"},
                "statement": self.statement_ref(statement_id)})
            tx.add_action(tenant=actor.tenant, actor=actor.label, staff_id=actor.staff_id,
                          action="complaint_received", trader_id=trader_id,
                          detail={"complaint_id": complaint_id,
                                  "statement_id": statement_id})
        row = self.evidence.complaint(complaint_id, tenant=actor.tenant)
        assert row is not None
        return self.complaint_view(row)

    def decide_complaint(self, complaint_id: str, actor: Actor, *, decided_by: str,
                         outcome: str, note: str) -> dict[str, Any]:
        """Decide a complaint: ``upheld`` or ``rejected``, by a person other than the one who
        took the contested decision (module doc for what upholding does)."""
        actor.require("reviewer")
        if outcome not in ("upheld", "rejected"):
            raise BadRequest("Unknown outcome.",
                             errors={"outcome": ["Must be one of: upheld, rejected."]})
        if not note or not note.strip():
            raise BadRequest("A note is required.", errors={"note": ["Must not be blank."]})
        complaint = self.evidence.complaint(complaint_id, tenant=actor.tenant)
        if complaint is None:
            raise NotFound(f"No complaint {complaint_id}.")
        if complaint["status"] != "open":
            raise Conflict(f"The complaint was already decided ({complaint['status']}).")
        contested = person(complaint["contested_by"])
        if contested is not None and contested == person(decided_by):
            raise Forbidden("A complaint is decided by a person other than the one who took "
                            f"the contested decision ({complaint['contested_by']}).",
                            errors={"decided_by": ["Must not be who took the decision."]})
        trader_id = complaint["trader_id"]
        statement = self.evidence.statement(complaint["statement_id"], tenant=actor.tenant)
        record = self._current(trader_id, actor.tenant)
        locale = complaint["locale"]
        now = _now()
        with self.evidence.transaction() as tx:
            if not tx.decide_complaint(complaint_id, status=outcome, decided_at=now,
                                       decided_by=decided_by, staff_id=actor.staff_id,
                                       decision_note=note.strip()):
                raise Conflict("The complaint was decided meanwhile.")
            effect = None
            if outcome == "upheld" and statement is not None:
                effect = self._uphold(tx, statement, record, actor, decided_by, now)
            self.send(tx, EVENT_COMPLAINT_DECIDED, record, {
                "complaint": {"id": complaint_id, "statement_id": complaint["statement_id"],
                              "status": outcome, "decided_at": _iso(now), "effect": effect,
                              "message": translate(locale, T_COMPLAINT_UPHELD
                                                   if outcome == "upheld"
                                                   else T_COMPLAINT_REJECTED)},
                "statement": self.statement_ref(complaint["statement_id"])})
            tx.add_action(tenant=actor.tenant, actor=actor.label, staff_id=actor.staff_id,
                          action=f"complaint_{outcome}", trader_id=trader_id,
                          detail={"complaint_id": complaint_id, "effect": effect,
                                  "decided_by": decided_by})
        row = self.evidence.complaint(complaint_id, tenant=actor.tenant)
        assert row is not None
        return {**self.complaint_view(row), "effect": effect}

    def _uphold(self, tx: Transaction, statement: dict[str, Any], record: VerificationRecord,
                actor: Actor, decided_by: str, now: datetime) -> str | None:
        """Withdraw the contested decision; return what was done."""
        row = self._locked(tx, record.trader_id, record.tenant_id)
        kind = statement["kind"]
        if kind == "suspension" and row["state"] == SUSPENDED:
            self._reinstate(tx, record, row, actor, now, check_verdict=False)
            return "reinstated"
        if kind == "correction_request" and row["state"] == CORRECTION:
            self._close_correction(tx, record)
            return "correction_withdrawn"
        if kind == "rejection" and record.verdict == Verdict.REJECTED:
            reopened = replace(
                record, id=uuid.uuid4().hex, verdict=Verdict.NEEDS_REVIEW.value,
                created_at=now, settled_at=now, request_id=None, source="manual",
                settles_verification_id=record.id, review_id=None,
                evidence={**(record.evidence or {}),
                          "complaint_upheld": {"statement_id": statement["id"],
                                               "decided_by": decided_by}})
            tx.insert_verification(reopened, copy_sealed_from=record.id)
            if row["state"] == CORRECTION:
                self._close_correction(tx, reopened)
            self.send(tx, EVENT_CHANGED, reopened, {"verification": {
                **self.verifier.view(reopened), "previous_verdict": record.verdict,
                "correction": {"requested": False, "closed": True}}})
            return "rejection_withdrawn"
        return None


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def _check_items(items: list[str] | None) -> list[str]:
    unknown = [k for k in items or [] if k not in ITEMS]
    if unknown or not items:
        raise BadRequest("Name the points of Art 30(1) concerned.",
                         errors={"items": [f"Must be one or more of {', '.join(ITEMS)}."]})
    return sorted(set(items))


def _check_decision(decision: str, items: list[str], note: str,
                    document_ids: list[str]) -> tuple[list[str], str, list[str]]:
    errors: dict[str, list[str]] = {}
    if decision not in ("approve", "reject", "request_information"):
        errors["decision"] = ["Must be one of: approve, reject, request_information."]
    if not items or any(k not in ITEMS for k in items):
        errors["items"] = [f"Must be one or more of {', '.join(ITEMS)}."]
    if not note or not note.strip():
        errors["note"] = ["A note is required."]
    if errors:
        raise BadRequest(f"The decision has invalid values: {', '.join(sorted(errors))}",
                         errors=errors)
    return sorted(set(items)), note.strip(), list(dict.fromkeys(document_ids))
