"""The Host check and relative redirects (shared/hosts.py) on the gateway and the three services.

A redirect built from the ``Host`` header sends browsers (and caches in front) to whatever host
the client named: ``Host: evil.example`` on ``/ops`` answered ``Location:
http://evil.example/ops/``. Each app is built as its service builds it, in sandbox (every host
answered) and outside (only allowed hosts).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from flask import Flask

from shared.errors import PROBLEM_JSON, ConfigError
from tests.conftest import REDIS_URL

SERVICES = ("gateway", "vat", "registry", "payment")
EVIL = {"Host": "evil.example"}


def settings(tmp_path: Path, sandbox: bool, **extra: Any) -> dict[str, Any]:
    """What each service needs to start, in or outside sandbox (nothing is called upstream)."""
    return {
        "TESTING": True, "SANDBOX": sandbox, "INTERNAL_TOKEN": "i" * 32,
        "DATABASE_URL": f"sqlite:///{tmp_path}/evidence.sqlite3",
        "EVIDENCE_SEALING_KEYS": Fernet.generate_key().decode(),
        "GATEWAY_API_KEYS": '[{"id": "staff", "key": "k", "scopes": ["ops"]}]',
        "GATEWAY_SESSION_SECRET": "s" * 40, "PAYMENT_FINGERPRINT_KEY": "f" * 40,
        "GATEWAY_BACKGROUND": False, "REDIS_URL": REDIS_URL,
        # a fresh SQLite file outside sandbox too (the release step is tests/trace30/test_migrate)
        "MIGRATE_ON_START": True, **extra,
    }


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Any]:
    """``make_app(service, sandbox, **settings)``: the service's app, shut down afterwards."""
    made: list[tuple[Any, Flask]] = []

    def make(service: str, sandbox: bool, **extra: Any) -> Flask:
        module = importlib.import_module(f"services.{service}")
        app = module.create_app(settings(tmp_path, sandbox, **extra))
        made.append((module, app))
        return app

    yield make
    for module, app in made:
        if hasattr(module, "shutdown"):
            module.shutdown(app)


@pytest.mark.parametrize("sandbox", [True, False])
def test_ops_redirect_never_names_the_requests_host(make_app: Any, sandbox: bool) -> None:
    """The finding: werkzeug's strict-slashes 308 of /ops named the Host it was sent."""
    client = make_app("gateway", sandbox).test_client()
    for host in ("evil.example", "evil.example:8080", "localhost:8080"):
        resp = client.get("/ops?next=1", headers={"Host": host})
        location = resp.headers.get("Location", "")
        assert "evil" not in location, (host, resp.status_code, location)
        if resp.status_code == 308:
            assert location == "/ops/?next=1"
    # The redirect itself still works for an allowed host (in sandbox: any).
    resp = client.get("/ops", headers={"Host": "localhost:8080" if not sandbox else "evil.example"})
    assert (resp.status_code, resp.headers["Location"]) == (308, "/ops/")


@pytest.mark.parametrize("service", SERVICES)
def test_every_services_redirects_are_relative(make_app: Any, service: str) -> None:
    """Every app of the suite gets the guard: a strict-slashes route added to it redirects to a
    path, not to the Host it was asked for (in sandbox every Host is answered)."""
    app = make_app(service, True)
    app.add_url_rule("/probe-dir/", "probe_dir", lambda: "ok")
    resp = app.test_client().get("/probe-dir?a=b", headers=EVIL)
    assert resp.status_code == 308
    assert resp.headers["Location"] == "/probe-dir/?a=b"


@pytest.mark.parametrize("service", SERVICES)
def test_host_not_allowed_is_a_400_problem(make_app: Any, service: str) -> None:
    """Outside sandbox a public name nobody listed is refused before auth, routing or a
    redirect: a 400 problem, whatever the path."""
    client = make_app(service, False).test_client()
    for path in ("/ops", "/ops/", "/openapi.json", "/v1/anything", "/no-such-page"):
        resp = client.get(path, headers=EVIL)
        assert resp.status_code == 400, (path, resp.status_code)
        assert resp.mimetype == PROBLEM_JSON
        body = resp.get_json()
        assert "TRACE30_ALLOWED_HOSTS" in body["detail"]
        assert "Location" not in resp.headers
        assert "Traceback" not in resp.get_data(as_text=True)
    for host in ("", "bad host", "a/b", "[zz]", "10.0.0.1", "evil.example."):
        assert client.get("/openapi.json", headers={"Host": host}).status_code == 400, host
    # The default still answers the names the suite calls itself by: the compose and
    # Kubernetes service names (``vat:8101``) and loopback (``trace30 run``, the tests).
    for host in ("vat:8101", "gateway", "localhost", "127.0.0.1:8103", "[::1]:8080"):
        assert client.get("/openapi.json", headers={"Host": host}).status_code == 200, host


@pytest.mark.parametrize("service", SERVICES)
def test_probes_answer_any_host(make_app: Any, service: str) -> None:
    """Kubernetes probes come with the pod IP as Host, which no setting can list."""
    client = make_app(service, False, ALLOWED_HOSTS="trace30.example.com").test_client()
    for path in ("/healthz", "/readyz"):
        resp = client.get(path, headers={"Host": "10.42.0.17:8080"})
        assert resp.status_code in (200, 503), (path, resp.status_code)
        assert resp.status_code != 400
    assert client.get("/openapi.json", headers={"Host": "10.42.0.17:8080"}).status_code == 400


def test_allowed_hosts_setting(make_app: Any) -> None:
    """Names exactly, a leading dot for subdomains, '*' for any; the setting replaces the
    default (loopback is no longer implied), in sandbox as outside."""
    for sandbox in (True, False):
        client = make_app("gateway", sandbox,
                          ALLOWED_HOSTS="trace30.example.com, .corp.example").test_client()
        for host, status in (("trace30.example.com", 200), ("TRACE30.example.com:443", 200),
                             ("corp.example", 200), ("ops.corp.example:8443", 200),
                             ("evil.example", 400), ("notcorp.example", 400),
                             ("trace30.example.com.evil.example", 400), ("vat:8101", 400)):
            assert client.get("/openapi.json", headers={"Host": host}).status_code == status, (
                sandbox, host)
    client = make_app("gateway", False, ALLOWED_HOSTS="*").test_client()
    assert client.get("/openapi.json", headers=EVIL).status_code == 200


@pytest.mark.parametrize("value", ["http://trace30.example.com", "trace30.example.com:443",
                                   "trace30.example.com/ops", "bad host"])
def test_malformed_allowed_hosts_stop_start_up(make_app: Any, value: str) -> None:
    with pytest.raises(ConfigError, match="TRACE30_ALLOWED_HOSTS"):
        make_app("vat", False, ALLOWED_HOSTS=value)
