"""Invariants of deploy/k8s: ports and probes match the server's settings, labels select the pods, rules match."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from server.app import SERVICE_NAME
from server.settings import Settings, load_settings
from tests.deploy.dockerfile import ROOT, env_values, stage

K8S = ROOT / "deploy" / "k8s"
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
MANIFESTS = sorted(K8S.glob("*.yaml"))
KINDS = ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceMonitor", "PrometheusRule")


def _load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


@pytest.fixture(scope="module")
def objects() -> dict[str, dict[str, Any]]:
    """Every Kubernetes object in deploy/k8s by kind (one of each)."""
    found: dict[str, dict[str, Any]] = {}
    for path in MANIFESTS:
        for doc in _load(path):
            if doc["kind"] == "Kustomization":
                continue
            assert doc["kind"] not in found, f"two {doc['kind']} objects"
            found[doc["kind"]] = doc
    assert sorted(found) == sorted(KINDS)
    return found


def _container(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    containers = objects["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _pod_labels(objects: dict[str, dict[str, Any]]) -> dict[str, str]:
    return objects["Deployment"]["spec"]["template"]["metadata"]["labels"]


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _effective_settings(objects: dict[str, dict[str, Any]]) -> Settings:
    """The server's settings in the pod: the image's ENTRYPOINT flags and ENV, then the container's args and env."""
    serving = stage("serving")
    entrypoint = serving.one("ENTRYPOINT").exec_form()
    assert entrypoint[:3] == ["python", "-m", "server"]
    container = _container(objects)
    assert "command" not in container, "the image's ENTRYPOINT starts the server"
    environ = env_values(serving) | {e["name"]: e["value"] for e in container.get("env", [])}
    return load_settings([*entrypoint[3:], *container.get("args", [])], environ)


def _ports(container: dict[str, Any]) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container["ports"]}


@pytest.mark.parametrize("path", MANIFESTS, ids=[p.name for p in MANIFESTS])
def test_every_manifest_parses_and_names_its_object(path: Path) -> None:
    docs = _load(path)
    assert docs, f"{path.name} is empty"
    for doc in docs:
        assert {"apiVersion", "kind"} <= set(doc)
        if doc["kind"] != "Kustomization":
            assert doc["metadata"]["name"] == "dwcp-inference"


def test_kustomization_lists_every_manifest() -> None:
    (kustomization,) = _load(K8S / "kustomization.yaml")
    assert sorted(kustomization["resources"]) == sorted(p.name for p in MANIFESTS if p.name != "kustomization.yaml")


def test_container_ports_are_the_servers_ports(objects: dict[str, dict[str, Any]]) -> None:
    settings = _effective_settings(objects)
    assert _ports(_container(objects)) == {"grpc": settings.grpc_port, "metrics": settings.metrics_port}
    assert (settings.grpc_port, settings.metrics_port) == (Settings.grpc_port, Settings.metrics_port)
    assert settings.host == "0.0.0.0", "the server must listen on the pod's address for probes and clients"
    assert settings.workers == 1, "one process per pod: the ServiceMonitor scrapes one metrics port"
    assert str(settings.model_dir) == "/app/models"


def test_probes_ask_grpc_health_on_the_grpc_port(objects: dict[str, dict[str, Any]]) -> None:
    container = _container(objects)
    grpc_port = _ports(container)["grpc"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert set(container[probe]) & {"grpc", "httpGet", "tcpSocket", "exec"} == {"grpc"}, probe
        assert container[probe]["grpc"]["port"] == grpc_port, probe
        # The server reports health for "" (everything) and for the inference service.
        assert container[probe]["grpc"].get("service", "") in ("", SERVICE_NAME), probe
    assert container["readinessProbe"]["grpc"]["service"] == SERVICE_NAME


def test_termination_outlasts_prestop_and_drain(objects: dict[str, dict[str, Any]]) -> None:
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    command = _container(objects)["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    prestop_s = float(command[1])
    grace_s = _effective_settings(objects).grace_period_s
    assert prestop_s >= 2, "endpoints need a moment to drop before SIGTERM"
    assert pod["terminationGracePeriodSeconds"] > prestop_s + grace_s


def test_pod_runs_as_the_images_non_root_user(objects: dict[str, dict[str, Any]]) -> None:
    security = objects["Deployment"]["spec"]["template"]["spec"]["securityContext"]
    uid = stage("serving").all("USER")[-1].args.split(":")[0]
    assert security["runAsNonRoot"] is True
    assert str(security["runAsUser"]) == uid
    assert _container(objects)["securityContext"]["allowPrivilegeEscalation"] is False


def test_resources_are_set_for_the_autoscaler(objects: dict[str, dict[str, Any]]) -> None:
    resources = _container(objects)["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"])


def test_deployment_selector_matches_its_pods(objects: dict[str, dict[str, Any]]) -> None:
    deployment = objects["Deployment"]
    assert _selects(deployment["spec"]["selector"]["matchLabels"], _pod_labels(objects))


def test_service_is_headless_and_selects_the_pods(objects: dict[str, dict[str, Any]]) -> None:
    service = objects["Service"]["spec"]
    assert service["clusterIP"] == "None", "headless, so dns:/// resolves every pod"
    assert _selects(service["selector"], _pod_labels(objects))
    container_ports = _ports(_container(objects))
    ports = {p["name"]: p for p in service["ports"]}
    assert set(ports) == {"grpc", "metrics"}
    for name, port in ports.items():
        assert port["port"] == container_ports[name]
        assert port["targetPort"] in container_ports


def test_pdb_and_hpa_target_the_deployment(objects: dict[str, dict[str, Any]]) -> None:
    pdb, hpa = objects["PodDisruptionBudget"]["spec"], objects["HorizontalPodAutoscaler"]["spec"]
    assert _selects(pdb["selector"]["matchLabels"], _pod_labels(objects))
    target = hpa["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", objects["Deployment"]["metadata"]["name"])
    assert [m["resource"]["name"] for m in hpa["metrics"]] == ["cpu"]
    assert pdb["maxUnavailable"] < hpa["minReplicas"] <= objects["Deployment"]["spec"]["replicas"] <= hpa["maxReplicas"]


def test_servicemonitor_scrapes_the_metrics_port(objects: dict[str, dict[str, Any]]) -> None:
    monitor = objects["ServiceMonitor"]["spec"]
    assert _selects(monitor["selector"]["matchLabels"], objects["Service"]["metadata"]["labels"])
    assert [e["port"] for e in monitor["endpoints"]] == ["metrics"]
    assert all(e["path"] == "/metrics" for e in monitor["endpoints"])


def test_prometheusrule_groups_are_the_prometheus_rules(objects: dict[str, dict[str, Any]]) -> None:
    assert RULES.is_file(), "deploy/prometheus/rules.yml is the source of the PrometheusRule"
    assert objects["PrometheusRule"]["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]
    check = [sys.executable, str(K8S / "render_rules.py"), "--check"]
    result = subprocess.run(check, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_pod_transport_is_chosen_explicitly(objects: dict[str, dict[str, Any]]) -> None:
    """The pod binds 0.0.0.0, where the server refuses plaintext unless told: the settings must pass that check."""
    from server.security import server_credentials

    settings = _effective_settings(objects)
    assert settings.host == "0.0.0.0"
    assert settings.insecure == 1 or settings.tls_cert_file is not None
    if settings.tls_cert_file is None:
        assert server_credentials(settings) is None  # plaintext, explicitly chosen


def test_image_alone_refuses_plaintext_off_loopback() -> None:
    """`docker run` with no TLS files and no --insecure must not serve plaintext on 0.0.0.0."""
    from server.security import SecurityConfigError, server_credentials

    serving = stage("serving")
    settings = load_settings(serving.one("ENTRYPOINT").exec_form()[3:], env_values(serving))
    with pytest.raises(SecurityConfigError, match="refusing to serve plaintext"):
        server_credentials(settings)


# The mtls overlay (deploy/overlays/mtls): mutual TLS in the server, probed by exec probes that speak it.
MTLS_OVERLAY = ROOT / "deploy" / "overlays" / "mtls"
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
# kustomize is what `kubectl kustomize` and `kubectl apply -k` run; `make test` installs it pinned (Makefile).
KUSTOMIZE = ROOT / ".tools" / "bin" / "kustomize"
needs_kustomize = pytest.mark.skipif(not KUSTOMIZE.exists(), reason="kustomize is installed by `make tools`")


def _kustomize(directory: Path) -> dict[str, dict[str, Any]]:
    """The objects kustomize (as `kubectl kustomize`) renders from a directory, by kind."""
    result = subprocess.run([KUSTOMIZE, "build", str(directory)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return {doc["kind"]: doc for doc in yaml.safe_load_all(result.stdout) if doc is not None}


@pytest.fixture(scope="module")
def mtls_objects() -> dict[str, dict[str, Any]]:
    return _kustomize(MTLS_OVERLAY)


def _secret_mounts(objects: dict[str, dict[str, Any]]) -> dict[str, str]:
    """mountPath -> Secret name for the container's Secret volumes."""
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    mounts = _container(objects)["volumeMounts"]
    return {m["mountPath"]: secrets[m["name"]] for m in mounts if m["name"] in secrets}


@needs_kustomize
def test_base_kustomization_renders_every_object() -> None:
    assert sorted(_kustomize(K8S)) == sorted(KINDS)


@needs_kustomize
def test_mtls_overlay_serves_mutual_tls_from_secrets(mtls_objects: dict[str, dict[str, Any]]) -> None:
    from server.security import describe

    settings = _effective_settings(mtls_objects)
    assert describe(settings) == "mutual TLS" and not settings.insecure
    mounts = _secret_mounts(mtls_objects)
    for path in (settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file):
        assert path is not None and str(path.parent) in mounts, f"{path} is not in a mounted Secret"
    assert all(m["readOnly"] for m in _container(mtls_objects)["volumeMounts"] if m["mountPath"] in mounts)
    # Secret files belong to root: the server's group must own them to read the keys under mode 0440.
    pod = mtls_objects["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]
    # Only the transport changes: the rest of the server's settings are the base's.
    base = _effective_settings(_kustomize(K8S))
    plaintext = dataclasses.replace(
        settings, tls_cert_file=None, tls_key_file=None, tls_client_ca_file=None, insecure=base.insecure
    )
    assert plaintext == base


@needs_kustomize
def test_mtls_overlay_probes_exec_the_health_probe_with_the_base_timing(
    objects: dict[str, dict[str, Any]], mtls_objects: dict[str, dict[str, Any]]
) -> None:
    container, base = _container(mtls_objects), _container(objects)
    for probe in PROBES:
        assert set(container[probe]) & {"grpc", "httpGet", "tcpSocket", "exec"} == {"exec"}, probe
        command = container[probe]["exec"]["command"]
        assert command[:3] == ["python", "-m", "server.healthcheck"], probe
        service = command[command.index("--service") + 1] if "--service" in command else ""
        assert service == base[probe]["grpc"].get("service", ""), probe
        for key in ("periodSeconds", "failureThreshold"):
            assert container[probe][key] == base[probe][key], (probe, key)
        # The kubelet kills an exec probe at its timeout: leave the probe's own deadline (2 s) room to answer.
        assert container[probe]["timeoutSeconds"] > 2, probe


@needs_kustomize
def test_mtls_overlay_probe_passes_against_a_server_configured_like_the_pod(
    mtls_objects: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """The pod's env, with each Secret mount mapped to a directory here, makes a probe that gets SERVING."""
    from bench.tiny_models import write_model_set
    from server import healthcheck
    from tests.server.certs import TestCA
    from tests.server.helpers import running_server

    container = _container(mtls_objects)
    env = {e["name"]: e["value"] for e in container["env"]}
    mounts = _secret_mounts(mtls_objects)
    local = {mount: tmp_path / secret for mount, secret in mounts.items()}

    def here(value: str) -> str:
        for mount, directory in local.items():
            if value.startswith(mount + "/"):
                return str(directory / value.removeprefix(mount + "/"))
        return value

    # The Secrets as cert-manager writes them: the server's certificate names the Service, not 127.0.0.1.
    ca = TestCA()
    server_name = env["DWCP_INFERENCE_PROBE_SERVER_NAME"]
    for directory in local.values():
        directory.mkdir()
    tls, probe = local["/etc/dwcp-inference/tls"], local["/etc/dwcp-inference/probe"]
    ca.issue(server_name, dns_names=(server_name,)).write(tls, "tls")
    ca.write(tls, "ca")
    ca.issue("health-probe").write(probe, "tls")

    pod_env = {name: here(value) for name, value in env.items()}
    files = {
        "tls_cert_file": Path(pod_env["DWCP_INFERENCE_TLS_CERT_FILE"]),
        "tls_key_file": Path(pod_env["DWCP_INFERENCE_TLS_KEY_FILE"]),
        "tls_client_ca_file": Path(pod_env["DWCP_INFERENCE_TLS_CLIENT_CA_FILE"]),
    }
    write_model_set(tmp_path / "models")
    with running_server(tmp_path / "models", **files) as server:
        pod_env["DWCP_INFERENCE_GRPC_PORT"] = str(server.app.grpc_port)  # the pod's 50051, bound to port 0 here
        for name in PROBES:
            assert healthcheck.main(container[name]["exec"]["command"][3:], pod_env) == 0, name
        # Without the probe's Secret the same check fails: the server asks for a client certificate.
        no_client = {k: v for k, v in pod_env.items() if not k.startswith("DWCP_INFERENCE_PROBE_CERT")}
        assert healthcheck.main([], no_client) == 1
