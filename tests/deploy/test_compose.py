"""docker-compose.yml, its sandbox overlay and the Dockerfile agree with the code.

No Docker engine runs here, so the files are checked as data: every process of the suite has a
compose service on its port, running a module that exists, with a health check; every
``TRACE30_*`` variable is a real setting; the sandbox overlay points each service at a
simulator service that exists; the gateway is reached only through nginx.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.config import SETTINGS
from trace30.suite import components

ROOT = Path(__file__).resolve().parents[2]
GUNICORN_VARS = {"TRACE30_WORKERS", "TRACE30_THREADS", "TRACE30_BIND"}


class UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping (PyYAML keeps the last one
    silently; docker compose refuses the file)."""


def _mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    # Merge keys (``<<: *env``) are YAML's way to override; only keys written twice count.
    keys = [loader.construct_object(key, deep=deep) for key, _ in node.value
            if key.tag != "tag:yaml.org,2002:merge"]
    duplicates = {k for k in keys if keys.count(k) > 1}
    if duplicates:
        raise yaml.constructor.ConstructorError(None, None, f"duplicate keys {duplicates}",
                                                node.start_mark)
    return loader.construct_mapping(node, deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load(path: str) -> dict:
    """A compose file, refusing a key given twice (as docker compose does)."""
    return yaml.load((ROOT / path).read_text(), Loader=UniqueKeyLoader)  # noqa: S506 (safe)


@pytest.fixture(scope="module")
def compose() -> dict:
    return load("docker-compose.yml")["services"]


@pytest.fixture(scope="module")
def sandbox() -> dict:
    return load("deploy/compose.sandbox.yml")["services"]


def command_target(command: list[str]) -> str:
    """The Python module a compose command runs (``pkg.mod`` of ``pkg.mod:app`` or ``-m``)."""
    if "gunicorn" in command:
        return command[-1].split(":")[0]
    return command[command.index("-m") + 1]


#: Processes of the suite that clients reach through a proxy, and the proxy's compose service.
BEHIND_PROXY = {"gateway": "nginx"}


def test_every_service_of_the_suite_is_in_compose(compose: dict, sandbox: dict) -> None:
    for c in components():
        services = sandbox if c.sandbox_only else compose
        assert c.name in services, f"{c.name} missing from compose"
        svc = services[c.name]
        published_by = services[BEHIND_PROXY.get(c.name, c.name)]
        assert f"{c.port}:{c.port}" in published_by["ports"]
        assert command_target(svc["command"]) == command_target(list(c.argv))
        assert importlib.util.find_spec(command_target(svc["command"])) is not None
        assert "healthcheck" in svc
        assert str(c.port) in " ".join(svc["healthcheck"]["test"])
        probe = " ".join(svc["healthcheck"]["test"])
        assert c.health in probe or "/readyz" in probe


def test_environment_names_real_settings(compose: dict, sandbox: dict) -> None:
    for services in (compose, sandbox):
        for name, svc in services.items():
            if name in ("redis", "nginx", "postgres"):
                continue  # other images, their own variables
            for var in (svc.get("environment") or {}):
                assert var in GUNICORN_VARS or var.removeprefix("TRACE30_") in SETTINGS, (
                    f"{name}: {var} is not a trace30 setting")


def test_services_use_shared_redis(compose: dict) -> None:
    for c in components():
        if not c.sandbox_only:
            env = compose[c.name]["environment"]
            assert env["TRACE30_REDIS_URL"] == "redis://redis:6379/0"
            assert "redis" in compose[c.name]["depends_on"]


def test_sandbox_overlay_points_at_simulator_services(sandbox: dict) -> None:
    for name, svc in sandbox.items():
        for var, value in (svc.get("environment") or {}).items():
            if var.endswith("_URL"):
                host = re.match(r"https?://([^:/]+)", value).group(1)
                assert host in sandbox, f"{name}.{var} points at unknown host {host}"
        assert set(svc.get("depends_on") or {}) <= set(sandbox) | {"redis"}


def test_dockerfile_copies_every_package() -> None:
    text = (ROOT / "deploy/Dockerfile").read_text()
    for package in ("shared", "services", "simulators", "trace30", "deploy"):
        assert f"COPY {package} ./{package}" in text
        assert (ROOT / package).is_dir()
    assert "USER " in text  # not root


def test_gunicorn_conf_is_what_the_commands_name(compose: dict) -> None:
    for c in components():
        if not c.sandbox_only:
            cmd = compose[c.name]["command"]
            assert (ROOT / cmd[cmd.index("-c") + 1]).is_file()


#: Settings each process refuses to start without outside sandbox (see each create_app).
REQUIRED_OUTSIDE_SANDBOX = {
    "vat": {"INTERNAL_TOKEN", "REDIS_URL"},
    "registry": {"INTERNAL_TOKEN", "REDIS_URL"},
    "payment": {"INTERNAL_TOKEN", "PAYMENT_FINGERPRINT_KEY", "REDIS_URL"},
    "gateway": {"INTERNAL_TOKEN", "EVIDENCE_SEALING_KEYS", "GATEWAY_API_KEYS",
                "GATEWAY_SESSION_SECRET", "REDIS_URL"},
    "worker": {"INTERNAL_TOKEN", "EVIDENCE_SEALING_KEYS", "GATEWAY_SESSION_SECRET",
               "DATABASE_URL", "REDIS_URL"},
}


def test_production_compose_passes_every_required_secret(compose: dict) -> None:
    """Without the sandbox overlay each service gets the settings it cannot start without."""
    for name, required in REQUIRED_OUTSIDE_SANDBOX.items():
        env = compose[name]["environment"]
        for setting in required:
            assert f"TRACE30_{setting}" in env, f"{name} lacks TRACE30_{setting}"


def test_batch_workers_share_the_gateways_store(compose: dict, sandbox: dict) -> None:
    worker, gateway = compose["worker"], compose["gateway"]
    assert command_target(worker["command"]) == "trace30.cli"
    assert worker["command"][-1] == "worker"
    assert worker["environment"] == gateway["environment"]
    assert worker["volumes"] == gateway["volumes"]
    assert "profiles" not in worker  # the RQ workers run with the suite
    assert sandbox["worker"]["environment"]["TRACE30_SANDBOX"] == "1"


def test_dashboard_templates_are_package_data() -> None:
    """``pip install .`` (the Dockerfile's) ships the dashboard's templates and stylesheet, and
    the message catalogues."""
    text = (ROOT / "pyproject.toml").read_text()
    gateway = ROOT / "services/gateway"
    shipped = [p for pattern in re.findall(r'"services\.gateway" = \[(.*?)\]', text)
               for p in re.findall(r'"([^"]+)"', pattern)]
    assert shipped
    files = {f for pattern in shipped for f in gateway.glob(pattern)}
    assert {f for f in gateway.rglob("*") if f.suffix in (".html", ".css", ".po")} == files


def published(services: dict) -> dict[str, str]:
    """Host port -> the compose service publishing it."""
    return {str(p).split(":")[0]: name for name, svc in services.items()
            for p in svc.get("ports") or ()}


def test_gateway_is_reached_only_through_nginx(compose: dict, sandbox: dict) -> None:
    """Finding 7: gunicorn's threads wait on idle clients, so clients get nginx, never it."""
    gateway, nginx = compose["gateway"], compose["nginx"]
    assert "ports" not in gateway and "ports" not in sandbox.get("gateway", {})
    assert published(compose)["8080"] == "nginx"
    assert "8080" not in published(sandbox)
    bind = gateway["command"][gateway["command"].index("-b") + 1]
    assert gateway["expose"] == [bind.rsplit(":", 1)[1]]

    assert nginx["image"].startswith("nginx:")
    assert nginx["ports"] == ["8080:8080"]
    assert nginx["depends_on"]["gateway"]["condition"] == "service_healthy"
    assert "8080/healthz" in " ".join(nginx["healthcheck"]["test"])


def test_nginx_runs_the_projects_template(compose: dict) -> None:
    """The template is mounted where the nginx image renders templates, and every variable it
    uses is set: the port nginx publishes, the gateway's service name and port."""
    nginx, gateway = compose["nginx"], compose["gateway"]
    (mount,) = nginx["volumes"]
    source, target, mode = mount.split(":")
    template = ROOT / source
    assert template.is_file() and template.suffix == ".template"
    assert target == "/etc/nginx/templates/default.conf.template"  # replaces the image's site
    assert mode == "ro"
    env = nginx["environment"]
    assert set(re.findall(r"\$\{(\w+)\}", template.read_text())) <= set(env)
    assert env["NGINX_PORT"] == nginx["ports"][0].split(":")[1]
    bind = gateway["command"][gateway["command"].index("-b") + 1]
    assert env["GATEWAY_UPSTREAM"] == "gateway:" + bind.rsplit(":", 1)[1]


def test_gateway_is_told_its_public_names(compose: dict) -> None:
    """Behind nginx the gateway sees the client's Host: the public name must be settable."""
    assert compose["gateway"]["environment"]["TRACE30_ALLOWED_HOSTS"] == (
        "${TRACE30_ALLOWED_HOSTS:-}")
    for name in ("vat", "registry", "payment"):  # called as vat:8101: the default allows it
        assert "TRACE30_ALLOWED_HOSTS" not in compose[name]["environment"]


# -- PostgreSQL and the release step (issue 14, point 5) ----------------------------------------

#: The services that run the gateway's code on the evidence log.
ON_THE_EVIDENCE_LOG = ("gateway", "worker", "migrate", "purge")


def test_the_evidence_log_is_postgresql_with_a_volume_and_a_healthcheck(compose: dict) -> None:
    postgres = compose["postgres"]
    assert postgres["image"] == "postgres:16-alpine"
    assert "ports" not in postgres  # only the services reach it
    (volume,) = postgres["volumes"]
    name, target = volume.split(":")
    assert target == "/var/lib/postgresql/data"
    assert name in load("docker-compose.yml")["volumes"]  # a named volume, kept across ups
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    env = postgres["environment"]
    for name in ON_THE_EVIDENCE_LOG:
        url = compose[name]["environment"]["TRACE30_DATABASE_URL"]
        assert url.startswith("${TRACE30_DATABASE_URL:-postgresql+psycopg://"), name
        user, rest = url.split("postgresql+psycopg://", 1)[1].split(":", 1)
        assert user == env["POSTGRES_USER"]
        assert rest.endswith(f"@postgres:5432/{env['POSTGRES_DB']}}}")
        assert "${POSTGRES_PASSWORD:-" in rest and env["POSTGRES_PASSWORD"].startswith(
            "${POSTGRES_PASSWORD:-")
        assert compose[name]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_migrate_runs_once_before_the_gateway_and_the_workers(compose: dict) -> None:
    """The release step is a one-shot service; what runs the code waits for its success."""
    migrate = compose["migrate"]
    assert migrate["command"] == ["python", "-m", "trace30.cli", "migrate"]
    assert migrate["restart"] == "no"  # one-shot: it must not be restarted after it exits
    assert migrate["environment"] == compose["gateway"]["environment"]
    assert "ports" not in migrate and "healthcheck" not in migrate
    for name in ("gateway", "worker", "purge"):
        assert compose[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"}, name
    # `trace30 migrate` exists, as the command compose runs
    from trace30.cli import main

    assert "migrate" in main.commands and "worker" in main.commands


def test_the_purge_is_a_one_shot_service_for_the_hosts_cron(compose: dict, sandbox: dict) -> None:
    purge = compose["purge"]
    assert purge["command"] == ["python", "-m", "trace30.cli", "purge"]
    assert purge["restart"] == "no" and purge["profiles"] == ["ops"]  # not started by `up`
    assert purge["environment"] == compose["gateway"]["environment"]
    assert purge["volumes"] == compose["gateway"]["volumes"]  # documents on the filesystem
    assert "redis" in purge["depends_on"]


def test_the_sandbox_runs_the_release_step_in_sandbox(sandbox: dict) -> None:
    """Without it the sandbox's migrate would need production keys and the suite never start."""
    for name in ON_THE_EVIDENCE_LOG:
        assert sandbox[name]["environment"]["TRACE30_SANDBOX"] == "1", name
