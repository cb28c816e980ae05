"""The deployment files (deploy/): checked here, since no container runtime runs on this machine.

The compose file against the Compose specification's JSON schema (vendored by
check-jsonschema), the Kubernetes manifests against the Kubernetes API schemas
(kubernetes-validate), the Dockerfile parsed (dockerfile-parse); and each
against the network its hosts file writes: the names, addresses and ports
the nodes are given must be the ones the services and pods have.
"""

from __future__ import annotations

import json
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from node.config import load_config
from node.lab.consortium import load_consortium
from node.lab.testnet import generate_testnet, load_hosts

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
VALIDATORS = [o.id for o in load_consortium(ROOT / "configs" / "consortium-4.toml").validators]
K8S_VERSION = "1.30.0"


def manifests() -> list[dict[str, Any]]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_the_compose_file_is_valid_compose() -> None:
    schema = json.loads(files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text())
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    jsonschema.validate(compose, schema)
    broken = {**compose, "services": {"x": {"image": "medchain", "ports": 26601, "restart": "sometimes"}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_the_compose_services_are_the_network_its_hosts_file_writes(tmp_path: Path) -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert sorted(services) == sorted(VALIDATORS)
    generate_testnet(tmp_path / "net", 0, consortium=load_consortium(ROOT / "configs" / "consortium-4.toml"),
                     hosts=DEPLOY / "hosts-compose.toml")
    published = []
    for name, service in services.items():
        assert service["command"] == ["node", "start", "--home", f"/net/{name}"]
        assert f"./net/{name}:/net/{name}" in service["volumes"]
        assert "./net/genesis.json:/net/genesis.json:ro" in service["volumes"]
        config = load_config(tmp_path / "net" / name)
        assert config.p2p_listen == "0.0.0.0:26600" and config.api_listen == "0.0.0.0:26601"
        assert {p.address for p in config.peers} == {f"{other}:26600" for other in services if other != name}
        (port,) = service["ports"]
        host_port, container_port = re.fullmatch(r"127\.0\.0\.1:(\d+):(\d+)", port).groups()  # type: ignore[union-attr]
        assert container_port == "26601"
        published.append(host_port)
    assert len(set(published)) == len(published), "two services publish the same port"


def test_the_dockerfile_is_small_runs_as_a_user_and_checks_health() -> None:
    parser = DockerfileParser(path=str(DEPLOY / "Dockerfile"))
    assert parser.baseimage == "python:3.11-slim"
    instructions = [(i["instruction"], i["value"]) for i in parser.structure]
    users = [v for k, v in instructions if k == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    (health,) = [v for k, v in instructions if k == "HEALTHCHECK"]
    assert "MEDCHAIN_HEALTH_URL" in health and parser.envs["MEDCHAIN_HEALTH_URL"].endswith(":26601/health")
    assert ("EXPOSE", "26600 26601") in instructions
    copied = {v.split()[0] for k, v in instructions if k == "COPY"}
    assert {"primitives", "consensus", "storage", "node"} <= copied
    assert "tests" in (DEPLOY / "Dockerfile.dockerignore").read_text().split()


def test_the_kubernetes_manifests_are_valid_kubernetes() -> None:
    docs = manifests()
    assert {d["kind"] for d in docs} == {"Namespace", "Service", "StatefulSet"}
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    sts = next(d for d in docs if d["kind"] == "StatefulSet")
    broken = json.loads(json.dumps(sts))
    broken["spec"]["replicas"] = "four"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_the_statefulset_its_services_and_its_hosts_file_agree() -> None:
    docs = manifests()
    sts = next(d for d in docs if d["kind"] == "StatefulSet")
    headless = next(d for d in docs if d["kind"] == "Service" and d["spec"].get("clusterIP") == "None")
    namespace = sts["metadata"]["namespace"]
    assert sts["spec"]["serviceName"] == headless["metadata"]["name"]
    assert sts["spec"]["replicas"] == len(VALIDATORS)
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    pod = sts["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (node,) = pod["containers"]
    assert node["readinessProbe"]["httpGet"]["path"] == "/health"
    assert node["livenessProbe"]["httpGet"]["path"] == "/health"
    assert "node-folders" not in {m["name"] for m in node["volumeMounts"]}, "only the init container sees every key"
    (init,) = pod["initContainers"]
    order = next(e["value"] for e in init["env"] if e["name"] == "MEDCHAIN_NODES").split()
    hosts = load_hosts(DEPLOY / "k8s" / "hosts.toml")
    assert list(hosts) == order and sorted(order) == sorted(VALIDATORS)
    for i, name in enumerate(order):
        expected = f"{sts['metadata']['name']}-{i}.{headless['metadata']['name']}.{namespace}.svc.cluster.local"
        assert hosts[name].host == expected
        assert (hosts[name].p2p_port, hosts[name].api_port) == (26600, 26601)
    ports = {p["name"]: p["containerPort"] for p in node["ports"]}
    assert ports == {"p2p": 26600, "api": 26601}
