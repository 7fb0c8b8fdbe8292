"""Deployment files: example configs pass check-config; manifests, unit and Dockerfile hold up."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.fernet import Fernet

from ccc_gateway.runtime.tls import ensure_self_signed

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
EXAMPLES = sorted((DEPLOY / "examples").glob("*.yaml"))
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
UNIT = DEPLOY / "ccc-gateway.service"
DOCKERFILE = DEPLOY / "Dockerfile"
SHUTDOWN_TIMEOUT = 30  # listen.shutdown_timeout's default, in seconds
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - what a container must listen on


def check_config(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ccc_gateway", "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
        check=False,
    )


@pytest.fixture
def secrets_env(tmp_path: Path) -> dict[str, str]:
    """The environment a deployment provides: secrets and a real certificate pair."""
    cert, key = ensure_self_signed(tmp_path / "tls")
    return {
        "ALIYUN_CLIENT_ID": "client-id",
        "ALIYUN_CLIENT_SECRET": "client-secret",
        "SESSION_KEY": Fernet.generate_key().decode(),
        "CCC_INSTANCE_ID": "ccc-instance",
        "TLS_CERT": str(cert),
        "TLS_KEY": str(key),
    }


def with_certificate(text: str, env: dict[str, str]) -> str:
    """Point fixed certificate paths (the sidecar's mount) at the test's pair."""
    text = text.replace("/etc/ccc-gateway/tls/tls.crt", env["TLS_CERT"])
    return text.replace("/etc/ccc-gateway/tls/tls.key", env["TLS_KEY"])


def test_there_are_three_examples():
    """minimal, behind-a-load-balancer and kubernetes-sidecar examples exist."""
    names = {path.stem for path in EXAMPLES}
    assert names == {"minimal", "behind-load-balancer", "kubernetes-sidecar"}


@pytest.mark.parametrize("path", [*EXAMPLES, ROOT / "gateway.yaml"], ids=lambda p: p.name)
def test_config_passes_check_config(path: Path, secrets_env: dict[str, str], tmp_path: Path):
    """Every example and the root gateway.yaml are valid once the environment is set."""
    copy = tmp_path / path.name
    copy.write_text(with_certificate(path.read_text(), secrets_env))
    result = check_config(copy, secrets_env)
    assert result.returncode == 0, result.stderr
    # No example weakens the gateway (config_warnings); what an operator must still adapt in
    # a template (its placeholder host, an internal CRM name, the screen-pop page) is said.
    weakening = [
        line
        for line in result.stderr.splitlines()
        if "warning" in line and not any(word in line for word in _TEMPLATE_WARNINGS)
    ]
    assert weakening == []
    assert "configuration OK" in result.stdout


_TEMPLATE_WARNINGS = ("placeholder host", "does not resolve", "screen_pop_url")


def test_configs_need_their_secrets(tmp_path: Path):
    """Without the environment, check-config names each missing secret (nothing is baked in)."""
    env = {name: "" for name in ("ALIYUN_CLIENT_ID", "ALIYUN_CLIENT_SECRET", "SESSION_KEY")}
    result = check_config(DEPLOY / "examples" / "minimal.yaml", {**env, "CCC_INSTANCE_ID": ""})
    assert result.returncode == 2
    for name in ("ALIYUN_CLIENT_ID", "ALIYUN_CLIENT_SECRET", "SESSION_KEY", "CCC_INSTANCE_ID"):
        assert name in result.stderr


def documents() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in MANIFESTS:
        found.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return found


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in documents() if doc["kind"] == kind]


def test_manifests_parse_with_the_expected_kinds():
    """The Kubernetes directory holds a Deployment, Secrets, ConfigMap, Service and PDB."""
    kinds = sorted(doc["kind"] for doc in documents())
    assert kinds == sorted(
        [
            "ConfigMap",
            "Deployment",
            "Kustomization",
            "PodDisruptionBudget",
            "Secret",
            "Secret",
            "Service",
        ]
    )
    kustomized = by_kind("Kustomization")[0]["resources"]
    assert sorted(kustomized) == sorted(p.name for p in MANIFESTS if p.name != "kustomization.yaml")


def gateway_container() -> dict[str, Any]:
    pod = by_kind("Deployment")[0]["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "ccc-gateway"]
    return container


def test_sidecar_probes_match_the_contract():
    """Liveness asks /aliyun/healthz, readiness /aliyun/readyz, both over HTTPS on 8443."""
    container = gateway_container()
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"https": 8443}
    live, ready = container["livenessProbe"]["httpGet"], container["readinessProbe"]["httpGet"]
    assert (live["path"], live["scheme"], ports[live["port"]]) == ("/aliyun/healthz", "HTTPS", 8443)
    assert (ready["path"], ready["scheme"], ports[ready["port"]]) == (
        "/aliyun/readyz",
        "HTTPS",
        8443,
    )
    assert container["args"] == ["run", "--config", "/etc/ccc-gateway/gateway.yaml"]


def test_pod_is_locked_down():
    """Non-root, read-only root filesystem, no capabilities, resources bounded."""
    deployment = by_kind("Deployment")[0]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["capabilities"]["drop"] == ["ALL"]
        assert context["allowPrivilegeEscalation"] is False
        assert "memory" in container["resources"]["limits"]
        assert container["resources"]["requests"]
    assert gateway_container()["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["terminationGracePeriodSeconds"] > 20  # the sidecar's shutdown_timeout


def test_crm_runs_beside_the_gateway_on_localhost_8080():
    """The CRM container listens on 8080 in the pod; the sidecar config points there."""
    pod = by_kind("Deployment")[0]["spec"]["template"]["spec"]
    (crm,) = [c for c in pod["containers"] if c["name"] != "ccc-gateway"]
    assert [p["containerPort"] for p in crm["ports"]] == [8080]
    config = yaml.safe_load(by_kind("ConfigMap")[0]["data"]["gateway.yaml"])
    assert config["upstream"]["url"] == "http://127.0.0.1:8080"
    assert config["listen"]["port"] == 8443


def test_service_and_budget_select_the_pods():
    """The Service sends 443 to the gateway port; the PDB keeps one replica up."""
    labels = by_kind("Deployment")[0]["spec"]["template"]["metadata"]["labels"]
    service = by_kind("Service")[0]["spec"]
    assert service["selector"].items() <= labels.items()
    assert service["ports"] == [
        {"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}
    ]
    budget = by_kind("PodDisruptionBudget")[0]["spec"]
    assert budget["selector"]["matchLabels"].items() <= labels.items()
    assert budget["minAvailable"] == 1


def test_secret_holds_exactly_the_contract_variables():
    """The Secret provides the four variables the configs read; values are placeholders."""
    secrets = {doc["metadata"]["name"]: doc for doc in by_kind("Secret")}
    values = secrets["ccc-gateway"]["stringData"]
    assert set(values) == {
        "ALIYUN_CLIENT_ID",
        "ALIYUN_CLIENT_SECRET",
        "SESSION_KEY",
        "CCC_INSTANCE_ID",
    }
    assert all(value.startswith("REPLACE_") for value in values.values())
    assert secrets["ccc-gateway-tls"]["type"] == "kubernetes.io/tls"


def test_configmap_matches_the_sidecar_example():
    """The ConfigMap's gateway.yaml is the kubernetes-sidecar example, verbatim."""
    embedded = by_kind("ConfigMap")[0]["data"]["gateway.yaml"]
    assert embedded == (DEPLOY / "examples" / "kubernetes-sidecar.yaml").read_text()


def test_compose_file_has_gateway_crm_and_emulator():
    """compose.yaml parses; the gateway reaches the CRM by service name; no secret inline."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"gateway", "crm", "emulator"}
    assert services["gateway"]["ports"] == ["8443:8443"]
    assert services["gateway"]["environment"]["CRM_URL"] == "http://crm:8080"
    assert "--host" in services["crm"]["command"] and ALL_INTERFACES in services["crm"]["command"]
    assert services["crm"]["entrypoint"][-1] == "sample_crm"
    assert services["emulator"]["command"][:3] == ["emulator", "--host", ALL_INTERFACES]
    for service in services.values():
        for name in service.get("environment", {}):
            assert "SECRET" not in name and "KEY" not in name.replace("TLS_KEY", "")


def unit_directives() -> dict[str, list[str]]:
    """`Section.Key` → every value given (systemd keys may repeat, so not configparser)."""
    found: dict[str, list[str]] = {}
    section = ""
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.setdefault(f"{section}.{key}", []).append(value)
    return found


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("User", "ccc-gateway"),
        ("EnvironmentFile", "/etc/ccc-gateway/env"),
        (
            "ExecStart",
            "/opt/ccc-gateway/.venv/bin/ccc-gateway run --config /etc/ccc-gateway/gateway.yaml",
        ),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("AmbientCapabilities", "CAP_NET_BIND_SERVICE"),
        ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("SystemCallFilter", "@system-service"),
        ("Restart", "on-failure"),
        ("KillSignal", "SIGTERM"),
    ],
)
def test_unit_has_directive(key: str, value: str):
    """The systemd unit sets each required directive."""
    assert value in unit_directives()[f"Service.{key}"]


def test_unit_stop_timeout_exceeds_the_drain():
    """TimeoutStopSec leaves the drain (shutdown_timeout) time to finish; W^X is not forced."""
    directives = unit_directives()
    (timeout,) = directives["Service.TimeoutStopSec"]
    assert int(timeout.removesuffix("s")) > SHUTDOWN_TIMEOUT
    assert "Service.MemoryDenyWriteExecute" not in directives  # libffi closures need it off
    assert directives["Install.WantedBy"] == ["multi-user.target"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_unit_passes_systemd_analyze_verify(tmp_path: Path):
    """`systemd-analyze verify` accepts the unit (binary paths pointed at /bin/true)."""
    text = UNIT.read_text().replace("/opt/ccc-gateway/.venv/bin/ccc-gateway", "/bin/true")
    copy = tmp_path / "ccc-gateway.service"
    copy.write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "ccc-gateway.service" not in result.stderr, result.stderr


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def test_dockerfile_runs_as_a_non_root_user():
    """The final stage is python:3.11-slim and ends with a numeric non-root USER."""
    instructions = dockerfile_instructions()
    froms = [args for name, args in instructions if name == "FROM"]
    assert all(args.startswith("python:3.11-slim") for args in froms)
    users = [args for name, args in instructions if name == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert users[-1].split(":")[0].isdigit()  # runAsNonRoot can check a numeric id


def test_dockerfile_healthcheck_uses_python_not_curl():
    """HEALTHCHECK asks https://127.0.0.1:8443/aliyun/healthz with Python's stdlib."""
    (check,) = [args for name, args in dockerfile_instructions() if name == "HEALTHCHECK"]
    assert "https://127.0.0.1:8443/aliyun/healthz" in check
    assert "urllib.request" in check and "curl" not in check and "wget" not in check
    command = check.split("CMD", 1)[1]
    snippet = yaml.safe_load(command)[-1]  # the exec-form list is valid YAML flow syntax
    compile(snippet, "<healthcheck>", "exec")


def test_dockerfile_bakes_in_no_secret():
    """No ENV/ARG carries a secret, no key or env file is copied, the config is env-driven."""
    instructions = dockerfile_instructions()
    for name, args in instructions:
        if name in ("ENV", "ARG"):
            assert not re.search(r"SECRET|SESSION_KEY|PASSWORD|TOKEN", args, re.I), args
        if name in ("COPY", "ADD"):
            assert not re.search(r"\.key\b|\.pem\b|\benv\b|\.env\b", args), args
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text()
    for pattern in (".venv", "demo-data", "**/*.key", "**/.env"):
        assert pattern in ignored
    copied = [args for name, args in instructions if name == "COPY" and "minimal.yaml" in args]
    assert copied, "the image ships the env-driven minimal config"
