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


#: Kustomizations beside the main one that are applied on their own (the release step).
APART = {KUBE / "release"}
#: What the operator fills in and applies first (never listed: it would overwrite the real ones).
EXAMPLES = KUBE / "examples"


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
        if path in APART:
            continue
        if (path.suffix == ".yaml" and path.name != "kustomization.yaml") or (
                path.is_dir() and (path / "kustomization.yaml").exists()):
            assert path.resolve() in listed, f"{path} is not in its kustomization"
    return objects


@pytest.fixture(scope="module")
def objects() -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    examples = [d for path in sorted(EXAMPLES.glob("*.yaml"))
                for d in yaml.safe_load_all(path.read_text()) if d]
    for obj in kustomize(KUBE) + [o for d in sorted(APART) for o in kustomize(d)] + examples:
        key = (obj["kind"], obj["metadata"]["name"])
        assert key not in found, f"{key} defined twice"
        found[key] = obj
    return found


def test_every_object_is_valid_kubernetes(objects: dict) -> None:
    assert {kind for kind, _ in objects} >= {"Deployment", "Service", "ConfigMap", "Secret",
                                             "Job", "CronJob", "HorizontalPodAutoscaler"}
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
    secret = objects["Secret", "trace30-gateway"]["stringData"]
    for setting in REQUIRED_OUTSIDE_SANDBOX["gateway"] | {"DATABASE_URL"}:
        var = f"TRACE30_{setting}"
        assert var in settings or f"--from-literal={var}=" in readme, var
        assert var in settings or var in secret, var
    assert settings["TRACE30_ALLOWED_HOSTS"]  # behind nginx the gateway sees the public name
    assert gateway["securityContext"]["runAsNonRoot"] is True


# -- the whole suite (issue 14, point 5) ---------------------------------------------------------

TRACE30_IMAGE = "trace30"


def pod_specs(objects: dict) -> dict[tuple[str, str], dict[str, Any]]:
    """Every pod template: Deployments, the Job and the CronJob's."""
    pods = {}
    for (kind, name), obj in objects.items():
        if kind in ("Deployment", "Job"):
            pods[kind, name] = obj["spec"]["template"]["spec"]
        elif kind == "CronJob":
            pods[kind, name] = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return pods


def all_containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return pod.get("initContainers", []) + pod["containers"]


def test_the_suite_is_all_there(objects: dict) -> None:
    deployments = {name for kind, name in objects if kind == "Deployment"}
    assert deployments == {"gateway", "vat", "registry", "payment", "worker"}
    assert {name for kind, name in objects if kind == "Service"} == {
        "gateway", "vat", "registry", "payment"}
    assert {name for kind, name in objects if kind == "HorizontalPodAutoscaler"} == {
        "gateway", "worker"}


def test_every_deployment_has_probes_and_resources(objects: dict) -> None:
    check_probes_and_resources(objects)


def test_the_probe_and_settings_checks_can_fail(objects: dict) -> None:
    """A Deployment without a readiness probe, a container without requests, a variable that
    is no setting: each is caught."""
    def copy() -> dict:
        return {key: yaml.safe_load(yaml.safe_dump(obj)) for key, obj in objects.items()}

    broken = copy()
    del broken["Deployment", "vat"]["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    with pytest.raises(AssertionError, match="Deployment vat, container vat"):
        check_probes_and_resources(broken)
    broken = copy()
    pod = broken["CronJob", "trace30-purge"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    del pod["containers"][0]["resources"]["requests"]["cpu"]
    with pytest.raises(AssertionError, match="CronJob trace30-purge"):
        check_probes_and_resources(broken)
    broken = copy()
    broken["ConfigMap", "trace30-registry"]["data"]["TRACE30_REGISTRY_TYPO"] = "1"
    with pytest.raises(AssertionError, match="TRACE30_REGISTRY_TYPO is no trace30 setting"):
        check_settings(broken)
    broken = copy()
    del broken["Secret", "trace30-services"]
    with pytest.raises(KeyError, match="trace30-services"):
        check_settings(broken)


def check_probes_and_resources(objects: dict) -> None:
    for (kind, name), pod in pod_specs(objects).items():
        for container in all_containers(pod):
            where = f"{kind} {name}, container {container['name']}"
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), where
            assert "memory" in resources["limits"], where
            if kind != "Deployment" or container in pod.get("initContainers", []):
                continue
            assert "readinessProbe" in container, where
            if container.get("ports"):  # an HTTP server: the health routes
                assert "livenessProbe" in container, where
                if container["image"] == TRACE30_IMAGE:
                    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", where
                    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", where
                for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                    action = container.get(probe, {})
                    port = (action.get("httpGet") or action.get("tcpSocket") or {}).get("port")
                    if port is not None:
                        port_of(container, port)
            else:  # the workers: the schema check
                assert container["readinessProbe"]["exec"]["command"][-2:] == [
                    "migrate", "--check"]


def test_trace30_containers_run_unprivileged(objects: dict) -> None:
    for (_, name), pod in pod_specs(objects).items():
        for container in all_containers(pod):
            if container["image"] == TRACE30_IMAGE:
                context = container["securityContext"]
                assert context["runAsNonRoot"] is True, name
                assert context["allowPrivilegeEscalation"] is False, name


def env_sources(objects: dict, container: dict[str, Any]) -> dict[str, Any]:
    """The variables ``container`` gets from its ConfigMaps and Secrets, and its own ``env``."""
    found: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            found.update(objects["ConfigMap", source["configMapRef"]["name"]]["data"])
        else:
            found.update(objects["Secret", source["secretRef"]["name"]]["stringData"])
    found.update({e["name"]: e.get("value") for e in container.get("env", [])})
    return found


def test_every_variable_is_a_setting_and_every_reference_exists(objects: dict) -> None:
    check_settings(objects)


def check_settings(objects: dict) -> None:
    for (kind, name), obj in objects.items():
        values = obj.get("data") if kind == "ConfigMap" else obj.get("stringData")
        if kind in ("ConfigMap", "Secret") and name.startswith("trace30-") and (
                not name.endswith("-nginx")):
            for var in values:
                assert var in GUNICORN_VARS or (
                    var.startswith("TRACE30_") and var.removeprefix("TRACE30_") in SETTINGS), (
                    f"{kind} {name}: {var} is no trace30 setting")
    for (_, name), pod in pod_specs(objects).items():
        for container in all_containers(pod):
            if container["image"] != TRACE30_IMAGE:
                continue
            env = env_sources(objects, container)  # KeyError: a ConfigMap or Secret missing
            for var in env:
                assert var in GUNICORN_VARS or var.removeprefix("TRACE30_") in SETTINGS, var
            assert "TRACE30_INTERNAL_TOKEN" in env, name
            assert "TRACE30_REDIS_URL" in env, name


def test_each_process_gets_the_settings_it_cannot_start_without(objects: dict) -> None:
    pods = pod_specs(objects)
    for name in ("vat", "registry", "payment", "gateway", "worker"):
        (container,) = [c for c in pods["Deployment", name]["containers"]
                        if c["image"] == TRACE30_IMAGE]
        env = env_sources(objects, container)
        for setting in REQUIRED_OUTSIDE_SANDBOX[name]:
            assert f"TRACE30_{setting}" in env, f"{name} lacks TRACE30_{setting}"
    # the internal services never see the evidence log's secrets
    for name in ("vat", "registry", "payment"):
        (container,) = pods["Deployment", name]["containers"]
        assert "TRACE30_DATABASE_URL" not in env_sources(objects, container)
        assert "TRACE30_EVIDENCE_SEALING_KEYS" not in env_sources(objects, container)


def test_the_example_secrets_hold_placeholders_only(objects: dict) -> None:
    secrets = [obj for (kind, _), obj in objects.items() if kind == "Secret"]
    assert len(secrets) == 2
    for secret in secrets:
        for var, value in secret["stringData"].items():
            assert value == "" or "<" in value, f"{var} looks like a real secret"
    readme = (KUBE / "README.md").read_text()
    assert "examples/secret.example.yaml" in readme
    assert "kubectl create secret generic trace30-services" in readme


def cli_command(command: list[str]) -> list[str]:
    """The ``trace30`` subcommand and its options of ``python -m trace30.cli ...``."""
    assert command[:3] == ["python", "-m", "trace30.cli"], command
    return command[3:]


def test_the_release_job_migrates_and_the_cronjob_purges(objects: dict) -> None:
    from trace30.cli import main

    pods = pod_specs(objects)
    (job,) = pods["Job", "trace30-migrate"]["containers"]
    assert cli_command(job["command"]) == ["migrate"]
    assert pods["Job", "trace30-migrate"]["restartPolicy"] == "Never"
    cron = objects["CronJob", "trace30-purge"]
    (purge,) = pods["CronJob", "trace30-purge"]["containers"]
    assert cli_command(purge["command"]) == ["purge"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert "migrate" in main.commands and "purge" in main.commands
    # the Job and the CronJob run the gateway's code: its settings and Secret
    for container in (job, purge):
        assert container["envFrom"] == containers(objects)["gateway"]["envFrom"]
    # the Deployments that run the gateway's code wait for the release step
    for name in ("gateway", "worker"):
        (init,) = pods["Deployment", name]["initContainers"]
        assert cli_command(init["command"]) == ["migrate", "--check"]
        assert init["envFrom"] == containers(objects)["gateway"]["envFrom"]
    # the release step is applied on its own, never with the Deployments
    assert ("Job", "trace30-migrate") not in {(o["kind"], o["metadata"]["name"])
                                              for o in kustomize(KUBE)}


def test_images_are_consistent(objects: dict) -> None:
    nginx_image = load("docker-compose.yml")["services"]["nginx"]["image"]
    for (_, name), pod in pod_specs(objects).items():
        for container in all_containers(pod):
            assert container["image"] in (TRACE30_IMAGE, nginx_image), name
    main = yaml.safe_load((KUBE / "kustomization.yaml").read_text())["images"]
    for apart in APART:
        assert yaml.safe_load((apart / "kustomization.yaml").read_text())["images"] == main
    assert [i["name"] for i in main] == [TRACE30_IMAGE]


def test_services_run_as_compose_runs_them_and_are_reached_where_the_gateway_calls(
        objects: dict) -> None:
    compose = load("docker-compose.yml")["services"]
    settings = objects["ConfigMap", "trace30-gateway"]["data"]
    pods = pod_specs(objects)
    for name in ("vat", "registry", "payment"):
        (container,) = pods["Deployment", name]["containers"]
        assert container["command"] == compose[name]["command"], name
        service = objects["Service", name]
        labels = objects["Deployment", name]["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items()
        (port,) = service["spec"]["ports"]
        assert port_of(container, port["targetPort"]) == port["port"]
        assert settings[f"TRACE30_GATEWAY_{name.upper()}_URL"] == f"http://{name}:{port['port']}"
    (worker,) = pods["Deployment", "worker"]["containers"]
    assert worker["command"] == compose["worker"]["command"]
    assert worker["envFrom"] == containers(objects)["gateway"]["envFrom"]


def test_the_autoscalers_scale_the_gateway_and_the_workers_on_cpu(objects: dict) -> None:
    pods = pod_specs(objects)
    for name in ("gateway", "worker"):
        hpa = objects["HorizontalPodAutoscaler", name]
        assert hpa["apiVersion"] == "autoscaling/v2"
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
        assert ("Deployment", target["name"]) in objects
        # a replica count in the Deployment would undo the HPA's at every `kubectl apply`
        assert "replicas" not in objects["Deployment", target["name"]]["spec"]
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        (metric,) = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
        # Utilization is a share of the requests: every container must request CPU
        for container in pods["Deployment", target["name"]]["containers"]:
            assert "cpu" in container["resources"]["requests"]
