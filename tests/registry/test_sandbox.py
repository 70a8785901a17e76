"""Every register's URL setting reaches the registers simulator in sandbox: in the settings
table, in ``trace30 run`` on moved ports, and in the compose sandbox overlay."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shared.config import SETTINGS
from tests.deploy.test_compose import UniqueKeyLoader
from trace30.suite import moved_urls

ROOT = Path(__file__).resolve().parents[2]
SIMULATOR = "http://127.0.0.1:8202"
#: Each adapter's base URL setting.
REGISTER_URLS = [name for name in SETTINGS
                 if name.startswith("REGISTRY_") and name.endswith("_URL")]


def test_every_register_has_a_sandbox_url_on_the_simulator() -> None:
    assert {"REGISTRY_CZ_ARES_URL", "REGISTRY_PL_KRS_URL"} <= set(REGISTER_URLS)
    for name in REGISTER_URLS:
        setting = SETTINGS[name]
        assert str(setting.default).startswith(("https://", "http://distribution.virk.dk"))
        assert str(setting.sandbox_default).startswith(SIMULATOR + "/"), name


def test_moved_ports_move_every_register() -> None:
    env = moved_urls({8202: 18202})
    for name in REGISTER_URLS:
        assert env["TRACE30_" + name] == str(SETTINGS[name].sandbox_default).replace(
            SIMULATOR, "http://127.0.0.1:18202")


def test_compose_sandbox_overlay_points_the_registry_at_the_simulator() -> None:
    text = (ROOT / "deploy/compose.sandbox.yml").read_text(encoding="utf-8")
    services = yaml.load(text, Loader=UniqueKeyLoader)["services"]  # noqa: S506 (SafeLoader)
    env = services["registry"]["environment"]
    assert env["TRACE30_SANDBOX"] == "1"
    for name in REGISTER_URLS:
        assert env["TRACE30_" + name] == str(SETTINGS[name].sandbox_default).replace(
            "127.0.0.1", "registers-simulator"), name
    assert "registers-simulator" in services["registry"]["depends_on"]
    assert "vies-simulator" in services["vat"]["depends_on"]


def test_the_loader_refuses_a_key_given_twice() -> None:
    with pytest.raises(yaml.constructor.ConstructorError):
        yaml.load("a:\n  b: 1\na:\n  c: 2\n", Loader=UniqueKeyLoader)  # noqa: S506
