"""The verifier is built from the settings alone: the batch workers build theirs without a
Flask app (no dashboard, no request hooks, no sweeper threads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import flask
import pytest

from services.gateway.verifications import Verifier
from services.gateway.wiring import build_verifier
from shared.config import load
from shared.errors import ConfigError
from shared.redis_client import Store
from trace30 import jobs


def sandbox_settings(store: Store, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    return load({}, {"SANDBOX": True, "REDIS_STORE": store,
                     "DATABASE_URL": f"sqlite:///{tmp_path / 'evidence.sqlite3'}", **overrides})


def test_the_worker_builds_its_gateway_without_a_flask_app(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_app(*args: object, **kwargs: object) -> None:
        raise AssertionError("a Flask app was built")

    monkeypatch.setattr(flask.Flask, "__init__", no_app)
    gateway = jobs.Gateway.build(sandbox_settings(store, tmp_path, GATEWAY_API_KEYS=(
        '[{"id": "shop", "key": "k", "scopes": ["batch"], "webhook_url": "http://127.0.0.1:9/h",'
        ' "webhook_secret": "s"}]')))
    try:
        assert isinstance(gateway.verifier, Verifier) and gateway.store is store
        assert gateway.verifier.webhook_target("shop") == "http://127.0.0.1:9/h"
        assert gateway.verifier.webhook_target("nobody") is None
        assert gateway.sender.secret_for("shop") == "s"
        # migrated: the evidence log answers
        assert gateway.verifier.evidence.current("trader-1", tenant="default") is None
    finally:
        gateway.verifier.close()
        gateway.sender.close()
        gateway.verifier.evidence.close()


def test_a_verifier_needs_the_internal_token(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TRACE30_INTERNAL_TOKEN"):
        build_verifier(sandbox_settings(store, tmp_path, INTERNAL_TOKEN=""))
