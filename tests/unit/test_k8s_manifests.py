"""deploy/k8s renders with kubectl's kustomize, matches the Kubernetes schemas and is wired up."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from qa_api.config import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = ROOT / "deploy" / "k8s"
# Oldest and newest versions kubernetes-validate ships schemas for; the manifests use only
# APIs that are GA across that range (apps/v1, autoscaling/v2, policy/v1).
K8S_VERSIONS = ("1.25.0", "1.37.0")
NAMESPACE = "spanish-qa"

Obj = dict[str, Any]


@pytest.fixture(scope="module")
def objects() -> list[Obj]:
    """The stack exactly as `kubectl apply -k deploy/k8s` would send it."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        msg = "kubectl not on PATH: `apt-get install kubernetes-client` (Debian) renders deploy/k8s"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    proc = subprocess.run(
        [kubectl, "kustomize", str(K8S_DIR)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def _find(objects: list[Obj], kind: str, name: str) -> Obj:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def _of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def _container(deployment: Obj) -> Obj:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _env(container: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in container.get("env", [])}


def _backend_config(objects: list[Obj]) -> dict[str, str]:
    (env_from,) = _container(_find(objects, "Deployment", "fastapi"))["envFrom"]
    data: dict[str, str] = _find(objects, "ConfigMap", env_from["configMapRef"]["name"])["data"]
    return data


def _pre_stop_seconds(deployment: Obj) -> int:
    command = _container(deployment)["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    return int(command[1])


def _schema_errors(obj: Obj, version: str) -> str | None:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        return f"{obj['kind']}/{obj['metadata']['name']}: {path}: {exc.message}"
    except kubernetes_validate.SchemaNotFoundError as exc:
        return exc.message
    return None


def test_renders_the_whole_stack(objects: list[Obj]) -> None:
    names = sorted((o["kind"], o["metadata"]["name"].rsplit("-", 1)[0]) for o in objects)
    kinds_names = sorted(
        (o["kind"], o["metadata"]["name"]) for o in objects if o["kind"] != "ConfigMap"
    )
    assert kinds_names == [
        ("Deployment", "fastapi"),
        ("Deployment", "streamlit"),
        ("HorizontalPodAutoscaler", "fastapi"),
        ("HorizontalPodAutoscaler", "streamlit"),
        ("Namespace", NAMESPACE),
        ("PersistentVolumeClaim", "models-cache"),
        ("PodDisruptionBudget", "fastapi"),
        ("PodDisruptionBudget", "streamlit"),
        ("Service", "fastapi"),
        ("Service", "streamlit"),
    ]
    # The generated ConfigMap carries a content hash so a config change rolls the pods.
    assert ("ConfigMap", "fastapi-config") in names
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["metadata"]["name"]


def test_no_secret_is_shipped(objects: list[Obj]) -> None:
    assert _of_kind(objects, "Secret") == []
    for deployment in _of_kind(objects, "Deployment"):
        refs = [
            e["valueFrom"]["secretKeyRef"]
            for e in _container(deployment).get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        ]
        # The API key is opt-in: pods start without the Secret.
        assert refs == [{"name": "qa-api-key", "key": "api-key", "optional": True}]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_object_matches_the_kubernetes_schema(objects: list[Obj], version: str) -> None:
    errors = [err for obj in objects if (err := _schema_errors(obj, version))]
    assert errors == []


@pytest.mark.parametrize("mistake", ["wrong_type", "unknown_field"])
def test_schema_validation_catches_a_broken_manifest(objects: list[Obj], mistake: str) -> None:
    broken = copy.deepcopy(_find(objects, "Deployment", "fastapi"))
    if mistake == "wrong_type":
        _container(broken)["ports"][0]["containerPort"] = "8008"
    else:
        _container(broken)["readinessProbe"]["httpGet"]["pathh"] = "/health/ready"
    assert _schema_errors(broken, K8S_VERSIONS[-1]) is not None


def test_backend_probes_the_health_endpoints(objects: list[Obj]) -> None:
    backend = _container(_find(objects, "Deployment", "fastapi"))
    assert backend["image"] == "spanish-qa-fastapi:latest"
    assert backend["ports"] == [{"name": "http", "containerPort": 8008, "protocol": "TCP"}]
    assert backend["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert backend["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    startup = backend["startupProbe"]
    # A first start downloads the model: give it at least ten minutes before liveness applies.
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600


def test_backend_drains_before_it_is_killed(objects: list[Obj]) -> None:
    deployment = _find(objects, "Deployment", "fastapi")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > _pre_stop_seconds(deployment)
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_services_select_their_deployment_and_port(objects: list[Obj]) -> None:
    for name, port in (("fastapi", 8008), ("streamlit", 8501)):
        service = _find(objects, "Service", name)
        deployment = _find(objects, "Deployment", name)
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= pod_labels.items()
        assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        (service_port,) = service["spec"]["ports"]
        assert service_port["port"] == port
        container_ports = {p["name"]: p["containerPort"] for p in _container(deployment)["ports"]}
        assert container_ports[service_port["targetPort"]] == port
        # No other Deployment's pods may answer on this Service.
        others = [d for d in _of_kind(objects, "Deployment") if d is not deployment]
        for other in others:
            other_labels = other["spec"]["template"]["metadata"]["labels"]
            assert not service["spec"]["selector"].items() <= other_labels.items()


def test_ui_reaches_the_backend_service(objects: list[Obj]) -> None:
    ui = _container(_find(objects, "Deployment", "streamlit"))
    assert ui["image"] == "spanish-qa-streamlit:latest"
    url = urlsplit(_env(ui)["QA_UI_BACKEND_URL"]["value"])
    backend_service = _find(objects, "Service", url.hostname or "")
    assert url.port == backend_service["spec"]["ports"][0]["port"]
    assert backend_service["spec"]["selector"] == {"app.kubernetes.io/name": "spanish-qa-fastapi"}


@pytest.mark.parametrize("name", ["fastapi", "streamlit"])
def test_autoscaler_and_disruption_budget_cover_the_deployment(
    objects: list[Obj], name: str
) -> None:
    deployment = _find(objects, "Deployment", name)
    hpa = _find(objects, "HorizontalPodAutoscaler", name)
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": name,
    }
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    # CPU utilisation is relative to requests, so the container must declare them.
    assert "cpu" in _container(deployment)["resources"]["requests"]
    pdb = _find(objects, "PodDisruptionBudget", name)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


def test_model_cache_is_a_shared_volume_at_hf_home(objects: list[Obj]) -> None:
    deployment = _find(objects, "Deployment", "fastapi")
    backend = _container(deployment)
    mounts = {m["name"]: m["mountPath"] for m in backend["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    claim = volumes["models-cache"]["persistentVolumeClaim"]["claimName"]
    assert _find(objects, "PersistentVolumeClaim", claim)["spec"]["accessModes"] == [
        "ReadWriteMany"
    ]
    assert mounts["models-cache"] == "/models-cache"
    config = _backend_config(objects)
    assert config["HF_HOME"] == "/models-cache/huggingface"
    assert config["QA_ONNX_CACHE_DIR"] == "/models-cache/onnx"


def test_backend_config_is_valid_for_the_backend(
    objects: list[Obj], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _backend_config(objects)
    qa_keys = {k.removeprefix("QA_").lower() for k in config if k.startswith("QA_")}
    # A misspelt QA_* variable would be silently ignored by the backend.
    assert qa_keys <= Settings.model_fields.keys()
    for key in list(os.environ):
        if key.startswith("QA_"):
            monkeypatch.delenv(key)
    for key, value in config.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    deployment = _find(objects, "Deployment", "fastapi")
    grace_s = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    # SIGTERM drains queued requests for up to one request timeout before the kubelet kills.
    assert grace_s > _pre_stop_seconds(deployment) + settings.request_timeout_s


def _init_container(objects: list[Obj]) -> Obj:
    (init,) = _find(objects, "Deployment", "fastapi")["spec"]["template"]["spec"]["initContainers"]
    return init


def test_model_is_prepared_in_the_cache_before_the_server_starts(objects: list[Obj]) -> None:
    deployment = _find(objects, "Deployment", "fastapi")
    server, init = _container(deployment), _init_container(objects)
    assert init["image"] == server["image"]
    assert init["envFrom"] == server["envFrom"]
    assert init["volumeMounts"] == server["volumeMounts"]
    assert init["securityContext"] == server["securityContext"]
    # Measured: a first ONNX export of a BETO-shaped model peaks at ~4.5 GiB; serving ~1.3 GiB.
    assert _memory_mib(init["resources"]["limits"]["memory"]) >= 5 * 1024
    assert _memory_mib(init["resources"]["requests"]["memory"]) <= _memory_mib(
        server["resources"]["requests"]["memory"]
    )


@pytest.mark.parametrize("model_ok", [True, False], ids=["model", "missing-model"])
def test_prepare_model_command_fills_the_cache_or_fails(
    objects: list[Obj], tiny_model_dir: Path, tmp_path: Path, model_ok: bool
) -> None:
    """Run the init container's own command (as the image would, from the package dir)."""
    source = str(tiny_model_dir) if model_ok else str(tmp_path / "missing")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("QA_")},
        **_backend_config(objects),
        "HF_HOME": str(tmp_path / "hf"),
        "QA_ONNX_CACHE_DIR": str(tmp_path / "onnx"),
        "HF_HUB_OFFLINE": "1",
        "QA_MODELS": json.dumps({"tiny": source}),
        "QA_BACKEND": "onnx-fp32",
    }
    command = [sys.executable if c == "python" else c for c in _init_container(objects)["command"]]
    proc = subprocess.run(
        command, cwd=ROOT / "fastapi", env=env, capture_output=True, text=True, timeout=300
    )
    if model_ok:
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert list((tmp_path / "onnx").glob("*/model-fp32.onnx"))
    else:
        # The pod then stays in Init with the reason in `kubectl logs -c prepare-model`.
        assert proc.returncode == 1
        assert "missing" in proc.stderr


def _memory_mib(quantity: str) -> float:
    units = {"Mi": 1.0, "Gi": 1024.0}
    return float(quantity[:-2]) * units[quantity[-2:]]


def test_backend_resources_fit_beto_on_cpu(objects: list[Obj]) -> None:
    resources = _container(_find(objects, "Deployment", "fastapi"))["resources"]
    # measured peak RSS with BETO: 2.1 GiB with openvino-bf16 (`auto` on AMD CPUs), less elsewhere
    assert 2.1 * 1024 * 1.2 <= _memory_mib(resources["limits"]["memory"]) <= 4096
    assert _memory_mib(resources["requests"]["memory"]) <= _memory_mib(
        resources["limits"]["memory"]
    )
    assert resources["limits"]["cpu"] == "2"


@pytest.mark.parametrize("name", ["fastapi", "streamlit"])
def test_pods_run_as_non_root_on_a_read_only_root(objects: list[Obj], name: str) -> None:
    pod = _find(objects, "Deployment", name)["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    # The image's own user, so files it owns (and the volume, via fsGroup) stay writable.
    image_uid = re.search(r"--uid (\d+)", (ROOT / name / "Dockerfile").read_text())
    assert image_uid is not None
    assert pod["securityContext"]["runAsUser"] == int(image_uid[1]) > 0
    for container in pod["containers"]:
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
        # A read-only root still needs a writable /tmp.
        assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= container["resources"][kind].keys()
