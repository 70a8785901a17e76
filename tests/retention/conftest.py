"""The retention tests drive the gateway app of ``tests/gateway/fixtures.py`` (``gateway``)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient


@pytest.fixture
def client(gateway: Flask) -> FlaskClient:
    return gateway.test_client()
