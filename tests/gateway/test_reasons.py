"""The verdict vocabulary: one :class:`Verdict` that every list of verdicts is made from."""

from __future__ import annotations

import json

from marshmallow import validate

from services.gateway.dashboard import TradersQuery
from services.gateway.reasons import Verdict
from services.gateway.schemas import VerificationSchema
from tests.gateway.test_verdicts import run
from trace30.cli import main


def choices(validator: object) -> list[str]:
    assert isinstance(validator, validate.OneOf)
    return list(validator.choices)


def test_every_list_of_verdicts_is_the_enum() -> None:
    assert Verdict.values() == ["verified", "needs_review", "rejected", "pending"]
    [api] = VerificationSchema().fields["verdict"].validators
    [ops] = TradersQuery().fields["verdict"].validators
    assert choices(api) == choices(ops) == Verdict.values()
    [option] = [p for p in main.commands["reverify"].params if p.name == "verdicts"]
    assert list(option.type.choices) == Verdict.values()  # type: ignore[attr-defined]


def test_a_decided_verdict_is_the_enum_and_travels_as_its_plain_string() -> None:
    decision = run()
    assert decision.verdict is Verdict.VERIFIED
    assert json.dumps({"verdict": decision.verdict}) == '{"verdict": "verified"}'
    assert f"{decision.verdict}" == str(decision.verdict) == "verified"
    dumped = VerificationSchema(only=("verdict",)).dump({"verdict": decision.verdict})
    assert json.dumps(dumped) == '{"verdict": "verified"}'
