"""Named staff (issue 12, point 1): accounts with argon2id passwords, the ``trace30 staff``
command, sign-in on the dashboard with its rate limits, roles, and who the audit trail names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from services.gateway import access, actors, sealing
from services.gateway.evidence import EvidenceLog, StaffError
from services.gateway.evidence.schema import ops_sessions_table, staff_table
from tests.gateway.evidence_fixtures import make_record
from tests.gateway.test_dashboard import HTML, csrf_of, evidence, page
from trace30.cli import main as cli
from trace30.retention import SQL_TABLES

PASSWORD = "correct horse battery staple"  # noqa: S105 (a test value)


def add(log: EvidenceLog, username: str, role: str = "reviewer", tenant: str = "default",
        password: str = PASSWORD, name: str | None = None):
    return log.add_staff(tenant=tenant, username=username, role=role, password=password,
                         display_name=name or username.replace(".", " ").title())


def sign_in(client: FlaskClient, username: str, password: str = PASSWORD, **kw):
    token = csrf_of(client.get("/ops/login"))
    return client.post("/ops/login", data={"username": username, "password": password,
                                            "csrf_token": token}, **kw)


def stored_hash(log: EvidenceLog, username: str) -> str:
    with log._read() as conn:
        return conn.execute(sa.select(staff_table.c.password_hash)
                            .where(staff_table.c.username == username)).scalar_one()


# -- accounts -----------------------------------------------------------------------------------


def test_the_password_is_kept_only_as_an_argon2id_hash(evidence_log: EvidenceLog) -> None:
    member = add(evidence_log, "j.martin", name="Jeanne Martin")
    assert (member.display_name, member.role, member.tenant) == ("Jeanne Martin", "reviewer",
                                                                 "default")
    hashed = stored_hash(evidence_log, "j.martin")
    assert hashed.startswith("$argon2id$") and PASSWORD not in hashed
    with evidence_log._read() as conn:
        row = conn.execute(sa.select(staff_table)).mappings().one()
    assert PASSWORD not in json.dumps({k: str(v) for k, v in row.items()})
    assert "password" not in json.dumps(member.as_dict())
    assert "hash" not in json.dumps(member.as_dict())


def test_authenticate(evidence_log: EvidenceLog) -> None:
    add(evidence_log, "j.martin")
    good = evidence_log.authenticate(tenant="default", username="j.martin", password=PASSWORD)
    assert good is not None and good.username == "j.martin"
    assert evidence_log.authenticate(tenant=None, username="j.martin", password=PASSWORD) == good
    assert evidence_log.authenticate(tenant="default", username="j.martin",
                                     password=PASSWORD + "!") is None
    assert evidence_log.authenticate(tenant="other", username="j.martin",
                                     password=PASSWORD) is None
    assert evidence_log.authenticate(tenant=None, username="nobody", password=PASSWORD) is None
    evidence_log.disable_staff(tenant="default", username="j.martin")
    assert evidence_log.authenticate(tenant=None, username="j.martin", password=PASSWORD) is None


def test_an_unknown_username_costs_an_argon2_verification_too(
        evidence_log: EvidenceLog, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    verify = PasswordHasher.verify

    def counted(self: PasswordHasher, hashed: str, password: str) -> bool:
        calls.append(hashed)
        return verify(self, hashed, password)

    monkeypatch.setattr(PasswordHasher, "verify", counted)
    assert evidence_log.authenticate(tenant=None, username="nobody", password=PASSWORD) is None
    assert len(calls) == 1 and calls[0].startswith("$argon2id$")


def test_a_hash_with_old_parameters_is_replaced_at_sign_in(evidence_log: EvidenceLog) -> None:
    add(evidence_log, "j.martin")
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    with evidence_log._write() as conn:
        conn.execute(sa.update(staff_table).values(password_hash=weak))
    assert evidence_log.authenticate(tenant=None, username="j.martin", password=PASSWORD)
    renewed = stored_hash(evidence_log, "j.martin")
    assert renewed != weak and not evidence_log.password_hasher.check_needs_rehash(renewed)
    assert evidence_log.authenticate(tenant=None, username="j.martin", password=PASSWORD)


@pytest.mark.parametrize(("changes", "field"), [
    ({"username": "Jeanne Martin"}, "username"),
    ({"username": "x"}, "username"),
    ({"role": "superuser"}, "role"),
    ({"display_name": "   "}, "display_name"),
    ({"display_name": "Jeanne\x00Martin"}, "display_name"),
    ({"password": "short"}, "password"),
    ({"tenant": "shop a"}, "tenant"),
])
def test_bad_account_values_are_refused_naming_the_field(evidence_log: EvidenceLog,
                                                         changes: dict, field: str) -> None:
    values = {"tenant": "default", "username": "j.martin", "display_name": "Jeanne Martin",
              "role": "reviewer", "password": PASSWORD, **changes}
    with pytest.raises(StaffError) as e:
        evidence_log.add_staff(**values)
    assert e.value.field == field and PASSWORD not in str(e.value)
    assert evidence_log.list_staff() == []


def test_a_username_is_unique_within_its_tenant_only(evidence_log: EvidenceLog) -> None:
    add(evidence_log, "j.martin", tenant="shop-a")
    with pytest.raises(StaffError, match="already exists"):
        add(evidence_log, "j.martin", tenant="shop-a")
    add(evidence_log, "j.martin", tenant="shop-b", password=PASSWORD + " b")
    assert [(m.tenant, m.username) for m in evidence_log.list_staff()] == [
        ("shop-a", "j.martin"), ("shop-b", "j.martin")]
    assert [m.tenant for m in evidence_log.list_staff("shop-b")] == ["shop-b"]
    # without a tenant an ambiguous username signs in nobody; name@tenant (dashboard) does
    assert evidence_log.authenticate(tenant=None, username="j.martin", password=PASSWORD) is None
    assert evidence_log.authenticate(tenant="shop-b", username="j.martin",
                                     password=PASSWORD + " b").tenant == "shop-b"


def test_staff_are_not_trader_data_the_purge_leaves_them(evidence_log: EvidenceLog) -> None:
    assert "staff" not in SQL_TABLES and "ops_sessions" not in SQL_TABLES
    member = add(evidence_log, "j.martin")
    evidence_log.save(make_record("v-1", "trader-1"))
    evidence_log.record_action(tenant="default", actor="staff:j.martin", action="reverify",
                               trader_id="trader-1", staff_id=member.id)
    deleted = evidence_log.purge_trader("trader-1", tenant="default")
    assert deleted["staff_actions"] == 1 and deleted["verifications"] == 1
    assert [m.username for m in evidence_log.list_staff()] == ["j.martin"]


# -- the command line ---------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    return {"TRACE30_SANDBOX": "1", "TRACE30_DATABASE_URL": f"sqlite:///{tmp_path}/cli.sqlite3"}


def test_cli_add_disable_list(cli_env: dict[str, str]) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["staff", "add", "--tenant", "shop-a", "--username", "j.martin",
                                 "--name", "Jeanne Martin", "--role", "reviewer",
                                 "--password-stdin"], input=PASSWORD + "\n", env=cli_env)
    assert result.exit_code == 0, result.output
    assert "added staff:j.martin (Jeanne Martin), reviewer, tenant shop-a" in result.output
    assert PASSWORD not in result.output
    # typed at a prompt (hidden, asked twice)
    result = runner.invoke(cli, ["staff", "add", "--username", "a.admin", "--name", "Ann Admin",
                                 "--role", "admin"], input=f"{PASSWORD}\n{PASSWORD}\n",
                           env=cli_env)
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["staff", "list"], env=cli_env)
    lines = result.output.splitlines()
    assert lines[0].split() == ["TENANT", "USERNAME", "NAME", "ROLE", "STATUS"]
    assert lines[1].split() == ["default", "a.admin", "Ann", "Admin", "admin", "active"]
    assert lines[2].split() == ["shop-a", "j.martin", "Jeanne", "Martin", "reviewer", "active"]
    result = runner.invoke(cli, ["staff", "disable", "--tenant", "shop-a", "--username",
                                 "j.martin"], env=cli_env)
    assert result.exit_code == 0 and "disabled staff:j.martin" in result.output
    listed = json.loads(runner.invoke(cli, ["staff", "list", "--tenant", "shop-a", "--json"],
                                      env=cli_env).output)
    assert [(m["username"], m["role"]) for m in listed] == [("j.martin", "reviewer")]
    assert listed[0]["disabled_at"] and "password_hash" not in listed[0]
    log = EvidenceLog(cli_env["TRACE30_DATABASE_URL"], sealing.check_keys(None, sandbox=True))
    try:
        assert log.authenticate(tenant="default", username="a.admin", password=PASSWORD)
        assert log.authenticate(tenant="shop-a", username="j.martin", password=PASSWORD) is None
    finally:
        log.close()


def test_cli_refuses_bad_values_and_passwords_on_the_command_line(
        cli_env: dict[str, str]) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["staff", "add", "--username", "j.martin", "--name", "J",
                                 "--password", PASSWORD], env=cli_env)
    assert result.exit_code == 2 and "No such option" in result.output
    result = runner.invoke(cli, ["staff", "add", "--username", "J Martin", "--name", "J",
                                 "--password-stdin"], input=PASSWORD + "\n", env=cli_env)
    assert result.exit_code == 1 and "username:" in result.output
    result = runner.invoke(cli, ["staff", "add", "--username", "j.martin", "--name", "J",
                                 "--password-stdin"], input="short\n", env=cli_env)
    assert result.exit_code == 1 and "password: Use at least 12" in result.output
    assert "short" not in result.output.replace("password: Use at least", "")
    result = runner.invoke(cli, ["staff", "disable", "--username", "nobody"], env=cli_env)
    assert result.exit_code == 1 and "No staff member nobody" in result.output
    assert runner.invoke(cli, ["staff", "list"], env=cli_env).output.strip() == \
        "no staff accounts"


# -- the dashboard ------------------------------------------------------------------------------


def test_staff_sign_in_names_the_person_and_role(gateway: Flask, client: FlaskClient) -> None:
    member = add(evidence(gateway), "j.martin", name="Jeanne Martin")
    resp = sign_in(client, "J.Martin")  # usernames are lower-case; typed case does not matter
    assert resp.status_code == 303 and resp.headers["Location"] == "/ops/"
    home = page(client, "/ops/")
    assert "signed in as <strong>Jeanne Martin</strong> (<code>staff:j.martin</code>)" in home
    assert '<span class="role">reviewer</span>' in home
    with evidence(gateway)._read() as conn:
        row = conn.execute(sa.select(ops_sessions_table)).mappings().one()
    assert row["staff_id"] == member.id and row["client_id"] is None


def test_a_wrong_password_opens_no_session(gateway: Flask, client: FlaskClient) -> None:
    add(evidence(gateway), "j.martin")
    for username, password in (("j.martin", "wrong password 123"), ("nobody", PASSWORD),
                               ("j.martin", "")):
        resp = sign_in(client, username, password)
        assert resp.status_code == 401
        body = resp.get_data(as_text=True)
        assert "Wrong username or password." in body and PASSWORD not in body
        assert client.get("/ops/").status_code == 302
    with evidence(gateway)._read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ops_sessions_table)
                            ).scalar_one() == 0


def test_disabling_an_account_ends_its_session(gateway: Flask, client: FlaskClient) -> None:
    add(evidence(gateway), "j.martin")
    assert sign_in(client, "j.martin").status_code == 303
    assert client.get("/ops/").status_code == 200
    evidence(gateway).disable_staff(tenant="default", username="j.martin")
    resp = client.get("/ops/")
    assert resp.status_code == 302 and resp.headers["Location"] == "/ops/login"
    assert sign_in(client, "j.martin").status_code == 401


def test_the_role_is_read_from_the_account_on_every_request(gateway: Flask,
                                                            client: FlaskClient) -> None:
    add(evidence(gateway), "j.martin", role="viewer")
    sign_in(client, "j.martin")
    assert '<span class="role">viewer</span>' in page(client, "/ops/")
    with evidence(gateway)._write() as conn:
        conn.execute(sa.update(staff_table).values(role="admin"))
    assert '<span class="role">admin</span>' in page(client, "/ops/")


@pytest.fixture
def trader(gateway: Flask) -> str:
    evidence(gateway).save(make_record("v-staff-1", "trader-staff"),
                           private_submission={"trader_id": "trader-staff"})
    return "trader-staff"


def test_a_viewer_reads_but_cannot_act(gateway: Flask, client: FlaskClient, trader: str) -> None:
    add(evidence(gateway), "v.viewer", role="viewer")
    sign_in(client, "v.viewer")
    html = page(client, f"/ops/traders/{trader}")
    assert "Re-verify now" not in html and "Record end of relationship" not in html
    assert "Your role (viewer) reads the evidence" in html
    token = csrf_of(client.get("/ops/"))
    for action, data in (("reverify", {}), ("end", {"confirm": "yes"})):
        resp = client.post(f"/ops/traders/{trader}/{action}", headers=HTML,
                           data={"csrf_token": token, **data})
        assert resp.status_code == 403, action
        assert "needs the role reviewer" in resp.get_data(as_text=True)
        problem = client.post(f"/ops/traders/{trader}/{action}",
                              data={"csrf_token": token, **data})
        assert problem.status_code == 403 and problem.json["status"] == 403
    assert evidence(gateway).actions(trader, tenant="default") == []
    assert evidence(gateway).trader_summaries(tenant="default", trader_id=trader)[0].ended_at \
        is None


def test_a_reviewer_acts_and_the_audit_trail_names_the_person(gateway: Flask,
                                                              client: FlaskClient,
                                                              trader: str) -> None:
    member = add(evidence(gateway), "r.reviewer", role="reviewer")
    sign_in(client, "r.reviewer")
    html = page(client, f"/ops/traders/{trader}")
    assert "Record end of relationship" in html and "Re-verify now" in html
    token = csrf_of(client.get("/ops/"))
    resp = client.post(f"/ops/traders/{trader}/end", data={"csrf_token": token,
                                                           "confirm": "yes"})
    assert resp.status_code == 303
    with evidence(gateway)._read() as conn:
        rows = conn.execute(sa.text("SELECT actor, action, staff_id FROM staff_actions")).all()
    assert [tuple(r) for r in rows] == [("staff:r.reviewer", "end_relationship", member.id)]
    assert "staff:r.reviewer" in page(client, f"/ops/traders/{trader}")


def test_the_sandbox_key_is_recorded_as_a_client_never_sandbox_alone(
        gateway: Flask, client: FlaskClient, trader: str) -> None:
    with gateway.app_context():
        sandbox = access.client_by_id("sandbox")
    assert sandbox is not None and actors.of_client(sandbox).label == "client:sandbox"
    token = csrf_of(client.get("/ops/login"))
    client.post("/ops/login", data={"api_key": access.SANDBOX_KEY, "csrf_token": token})
    token = csrf_of(client.get("/ops/"))
    client.post(f"/ops/traders/{trader}/end", data={"csrf_token": token, "confirm": "yes"})
    actions = evidence(gateway).actions(trader, tenant="default")
    assert [a["actor"] for a in actions] == ["client:sandbox"]


def test_staff_see_their_own_tenant_only(gateway: Flask, client: FlaskClient) -> None:
    log = evidence(gateway)
    log.save(make_record("v-a", "trader-a", tenant_id="shop-a"))
    log.save(make_record("v-b", "trader-b", tenant_id="shop-b"))
    add(log, "a.staff", tenant="shop-a")
    sign_in(client, "a.staff")
    listing = page(client, "/ops/")
    assert "trader-a" in listing and "trader-b" not in listing
    assert "tenant <strong>shop-a</strong>" in listing
    assert client.get("/ops/traders/trader-b", headers=HTML).status_code == 404
    assert client.get("/ops/verifications/v-b", headers=HTML).status_code == 404
    assert client.get("/ops/traders/trader-a", headers=HTML).status_code == 200


def test_name_at_tenant_signs_in_a_username_of_several_tenants(gateway: Flask,
                                                               client: FlaskClient) -> None:
    log = evidence(gateway)
    add(log, "j.martin", tenant="shop-a")
    add(log, "j.martin", tenant="shop-b")
    assert sign_in(client, "j.martin").status_code == 401
    assert sign_in(client, "j.martin@shop-b").status_code == 303
    assert "tenant <strong>shop-b</strong>" in page(client, "/ops/")


# -- rate limits --------------------------------------------------------------------------------


@pytest.fixture
def limited(gateway_config: dict) -> dict:
    gateway_config.update(GATEWAY_SIGNIN_MAX_FAILURES=3, GATEWAY_SIGNIN_MAX_FAILURES_PER_IP=5,
                          GATEWAY_SIGNIN_WINDOW_S=600)
    return gateway_config


def test_sign_in_is_limited_per_account(limited: dict, gateway: Flask,
                                        caplog: pytest.LogCaptureFixture) -> None:
    add(evidence(gateway), "j.martin")
    add(evidence(gateway), "o.other")
    client = gateway.test_client()
    for _ in range(3):
        assert sign_in(client, "j.martin", "wrong password 123").status_code == 401
    resp = sign_in(client, "j.martin")  # the right password, too late
    assert resp.status_code == 429
    assert 590 <= int(resp.headers["Retry-After"]) <= 600
    assert "Too many failed sign-in attempts. Try again in 10 minutes." in \
        resp.get_data(as_text=True)
    assert client.get("/ops/").status_code == 302
    # from another address the account stays locked; another account is not
    other_ip = gateway.test_client()
    assert sign_in(other_ip, "j.martin",
                   environ_base={"REMOTE_ADDR": "192.0.2.9"}).status_code == 429
    assert sign_in(client, "o.other").status_code == 303
    assert PASSWORD not in caplog.text and "wrong password 123" not in caplog.text
    assert "too many failed attempts" in [getattr(r, "reason", None) for r in caplog.records]


def test_a_successful_sign_in_forgets_the_accounts_failures(limited: dict,
                                                            gateway: Flask) -> None:
    add(evidence(gateway), "j.martin")
    client = gateway.test_client()
    for _ in range(2):
        sign_in(client, "j.martin", "wrong password 123")
    assert sign_in(client, "j.martin").status_code == 303
    other = gateway.test_client()
    for _ in range(2):
        assert sign_in(other, "j.martin", "wrong password 123",
                       environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 401
    assert sign_in(other, "j.martin", environ_base={"REMOTE_ADDR": "192.0.2.7"}
                   ).status_code == 303


def test_sign_in_is_limited_per_ip(limited: dict, gateway: Flask) -> None:
    add(evidence(gateway), "j.martin")
    client = gateway.test_client()
    ip = {"REMOTE_ADDR": "198.51.100.4"}
    for i in range(4):
        assert sign_in(client, f"guess{i}", environ_base=ip).status_code == 401
    token = csrf_of(client.get("/ops/login"))
    assert client.post("/ops/login", data={"api_key": "wrong", "csrf_token": token},
                       environ_base=ip).status_code == 401
    assert sign_in(client, "j.martin", environ_base=ip).status_code == 429
    assert client.post("/ops/login", data={"api_key": "x", "csrf_token": token},
                       environ_base=ip).status_code == 429
    # another address is not held back
    assert sign_in(gateway.test_client(), "j.martin",
                   environ_base={"REMOTE_ADDR": "198.51.100.5"}).status_code == 303


def test_the_limits_keep_no_username_or_address_in_redis(limited: dict, gateway: Flask,
                                                         store) -> None:
    client = gateway.test_client()
    sign_in(client, "j.martin", "wrong password 123",
            environ_base={"REMOTE_ADDR": "203.0.113.77"})
    keys = [k.decode() if isinstance(k, bytes) else k
            for k in store.client.scan_iter(store.key("gateway", "signin", "*"))]
    assert len(keys) == 2
    assert not any(re.search(r"j\.martin|203\.0\.113", k) for k in keys)


@pytest.mark.parametrize("trust", [True, False])
def test_the_client_address_behind_the_proxy(limited: dict, trust: bool) -> None:
    limited["GATEWAY_SIGNIN_TRUST_FORWARDED_FOR"] = trust
    from services.gateway import create_app, shutdown

    app = create_app(limited)
    try:
        add(evidence(app), "j.martin")
        client = app.test_client()
        proxy = {"REMOTE_ADDR": "10.0.0.2"}  # nginx, for every client
        for i in range(5):
            sign_in(client, f"guess{i}", environ_base=proxy,
                    headers={"X-Forwarded-For": "198.51.100.4"})
        resp = sign_in(client, "j.martin", environ_base=proxy,
                       headers={"X-Forwarded-For": "spoofed, 198.51.100.5"})
        # trusted: another client's address is not held back; else everyone shares nginx's
        assert resp.status_code == (303 if trust else 429)
    finally:
        shutdown(app)
