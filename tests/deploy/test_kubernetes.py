"""deploy/kubernetes/ (kustomize) is valid Kubernetes and agrees with the code and compose.

No cluster runs here: every object the kustomizations list is checked against the Kubernetes
API schemas (kubernetes-validate ships them, so offline, strict: an unknown field fails), then
against each other (selectors, named ports, probes, the ConfigMaps mounted and read) and against
the project (real settings, the nginx template, the same commands as docker-compose.yml).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from shared.config import SETTINGS
from tests.deploy.test_compose import GUNICORN_VARS, REQUIRED_OUTSIDE_SANDBOX, load

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
TEMPLATE = ROOT / "deploy" / "nginx" / "gateway.conf.template"
#: The oldest Kubernetes still supported upstream when this was written, and the newest schema.
VERSIONS = ("1.31.0", kubernetes_validate.latest_version())


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """The objects of ``directory``'s kustomization, its sub-kustomizations followed."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    objects: list[dict[str, Any]] = []
    for entry in kustomization["resources"]:
        path = directory / entry
        assert path.exists(), f"{path} is listed in {directory}/kustomization.yaml"
        if path.is_dir():
            objects += kustomize(path)
        else:
            objects += [d for d in yaml.safe_load_all(path.read_text()) if d]
    # Nothing beside it that it forgets to list.
    listed = {(directory / e).resolve() for e in kustomization["resources"]}
    for path in directory.iterdir():
        if (path.suffix == ".yaml" and path.name != "kustomization.yaml") or (
                path.is_dir() and (path / "kustomization.yaml").exists()):
            assert path.resolve() in listed, f"{path} is not in its kustomization"
    return objects


@pytest.fixture(scope="module")
def objects() -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for obj in kustomize(KUBE):
        key = (obj["kind"], obj["metadata"]["name"])
        assert key not in found, f"{key} defined twice"
        found[key] = obj
    return found


def test_every_object_is_valid_kubernetes(objects: dict) -> None:
    assert {kind for kind, _ in objects} >= {"Deployment", "Service", "ConfigMap"}
    for obj in objects.values():
        for version in VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)


def test_schema_check_catches_a_mistake(objects: dict) -> None:
    """The validation above can fail: a misspelt field and a wrong type are refused."""
    deployment = yaml.safe_load(yaml.safe_dump(objects["Deployment", "gateway"]))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)
    service = yaml.safe_load(yaml.safe_dump(objects["Service", "gateway"]))
    service["spec"]["ports"][0]["port"] = "eighty"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, VERSIONS[-1], strict=True)


def containers(objects: dict) -> dict[str, dict[str, Any]]:
    pod = objects["Deployment", "gateway"]["spec"]["template"]["spec"]
    return {c["name"]: c for c in pod["containers"]}


def port_of(container: dict[str, Any], name: str) -> int:
    (port,) = [p["containerPort"] for p in container.get("ports", ()) if p["name"] == name]
    return port


def test_service_reaches_nginx_only(objects: dict) -> None:
    deployment, service = objects["Deployment", "gateway"], objects["Service", "gateway"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    pods = containers(objects)
    (port,) = service["spec"]["ports"]
    assert port["port"] == 8080
    assert port_of(pods["nginx"], port["targetPort"]) == 8080
    with pytest.raises(ValueError):  # gunicorn's port is no port of the Service
        port_of(pods["gateway"], port["targetPort"])


def test_probes_use_the_health_routes(objects: dict) -> None:
    gateway, nginx = containers(objects)["gateway"], containers(objects)["nginx"]
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert gateway["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert nginx["readinessProbe"]["httpGet"]["path"] == "/healthz"
    for container in (gateway, nginx):
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            action = container.get(probe, {})
            port = (action.get("httpGet") or action.get("tcpSocket") or {}).get("port")
            if port is not None:
                port_of(container, port)  # a port the container declares


def test_nginx_sidecar_runs_the_projects_template(objects: dict) -> None:
    """The ConfigMap holds deploy/nginx/gateway.conf.template as it is, mounted where the nginx
    image renders templates, with every variable set; the upstream is gunicorn's port."""
    pods = containers(objects)
    nginx, gateway = pods["nginx"], pods["gateway"]
    config = objects["ConfigMap", "trace30-gateway-nginx"]
    assert config["data"]["gateway.conf.template"] == TEMPLATE.read_text(), (
        "deploy/kubernetes/gateway/nginx-configmap.yaml is not a copy of "
        "deploy/nginx/gateway.conf.template: copy the template under its data")
    pod = objects["Deployment", "gateway"]["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["configMap"]["name"] == config["metadata"]["name"]]
    assert volume["configMap"]["items"] == [{"key": "gateway.conf.template",
                                             "path": "default.conf.template"}]
    (mount,) = [m for m in nginx["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["mountPath"] == "/etc/nginx/templates"
    env = {e["name"]: e["value"] for e in nginx["env"]}
    assert env["NGINX_PORT"] == str(port_of(nginx, "http"))
    bind = gateway["command"][gateway["command"].index("-b") + 1]
    assert env["GATEWAY_UPSTREAM"] == f"127.0.0.1:{bind.rsplit(':', 1)[1]}"
    assert bind.rsplit(":", 1)[1] == str(port_of(gateway, "gunicorn"))
    assert nginx["image"] == load("docker-compose.yml")["services"]["nginx"]["image"]


def without_bind(command: list[str]) -> list[str]:
    """``command`` less its ``-b ADDRESS``."""
    at = command.index("-b")
    return command[:at] + command[at + 2:]


def test_gateway_runs_as_compose_runs_it(objects: dict) -> None:
    """Same command as compose but for the port; settings that exist; every setting the gateway
    refuses to start without is in the ConfigMap or the Secret the README has you create."""
    gateway = containers(objects)["gateway"]
    compose = load("docker-compose.yml")["services"]["gateway"]
    assert without_bind(gateway["command"]) == without_bind(compose["command"])
    refs = [(kind, source[kind]["name"]) for source in gateway["envFrom"] for kind in source]
    assert refs == [("configMapRef", "trace30-gateway"), ("secretRef", "trace30-gateway")]
    settings = objects["ConfigMap", "trace30-gateway"]["data"]
    for var in settings:
        assert var in GUNICORN_VARS or var.removeprefix("TRACE30_") in SETTINGS, var
    readme = (KUBE / "README.md").read_text()
    assert "kubectl create secret generic trace30-gateway" in readme
    for setting in REQUIRED_OUTSIDE_SANDBOX["gateway"] | {"DATABASE_URL"}:
        var = f"TRACE30_{setting}"
        assert var in settings or f"--from-literal={var}=" in readme, var
    assert settings["TRACE30_ALLOWED_HOSTS"]  # behind nginx the gateway sees the public name
    assert gateway["securityContext"]["runAsNonRoot"] is True
