"""HTTP routes of the registry service: ``POST /v1/registry/check``."""

from __future__ import annotations

from flask import current_app

from services.registry.checks import CheckRequest, RegistryChecker
from services.registry.kinds import KindError
from services.registry.results import RegistryCheckBody, RegistryCheckResult
from services.registry.schemas import RegistryCheckRequestSchema, RegistryCheckResultSchema
from shared.errors import BadRequest
from shared.openapi import Blueprint

bp = Blueprint(
    "registry", __name__, url_prefix="/v1/registry",
    description="Business-registration numbers: format, live register, legal name",
)

EXTENSION = "trace30.registry"


@bp.post("/check")
@bp.arguments(RegistryCheckRequestSchema)
@bp.response(200, RegistryCheckResultSchema)
def check(body: RegistryCheckBody) -> RegistryCheckResult:
    """Check a business-registration number: format, then the official register.

    ``status`` is active, inactive, not_found, invalid, unverifiable (no register can be
    queried: ask the trader for documents) or unavailable (retryable upstream fault).
    """
    checker: RegistryChecker = current_app.extensions[EXTENSION]
    try:
        return checker.check(CheckRequest(**body))
    except KindError as e:
        raise BadRequest(e.message, errors={e.field: [e.message]}) from e
