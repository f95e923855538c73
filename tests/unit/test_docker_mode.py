"""Docker mode checked without a Docker engine: docker-compose.yml as compose-go loads it
(schema, `.env` interpolation) must agree with shopctl's topology, and the service
Dockerfiles must pass hadolint and stay identical but for the service name."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from shopctl.dockercheck import hadolint, load_compose_project, service_dockerfiles
from shopctl.render import write_docker_configs
from shopctl.topology import KAFKA_TOPICS, ROOT, SERVICES, Topology

INFRA_SERVICES = {"postgres", "redis", "kafka", "gateway", "prometheus", "grafana"}
ONE_SHOT_SERVICES = {"kafka-init"}
# Published host port of each service -> the .env key that sets it.
PUBLISHED_PORTS = {
    "gateway": "GATEWAY_PORT",
    "prometheus": "PROMETHEUS_PORT",
    "grafana": "GRAFANA_PORT",
    "postgres": "POSTGRES_PORT",
    "redis": "REDIS_PORT",
    "kafka": "KAFKA_PORT",
}
STATEFUL_SERVICES = {"postgres", "redis", "kafka", "prometheus", "grafana"}
# Files rendered by write_docker_configs and where docker-compose.yml mounts them.
RENDERED_MOUNTS = {
    "nginx.conf": ("gateway", "/etc/nginx/nginx.conf"),
    "prometheus.yml": ("prometheus", "/etc/prometheus/prometheus.yml"),
    "databases.sql": ("postgres", "/docker-entrypoint-initdb.d/10-databases.sql"),
}
MEMORY_BUDGET_BYTES = 3 * 1000**3

pytestmark = pytest.mark.static


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    return load_compose_project()


@pytest.fixture(scope="module")
def services(project: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = project["services"]
    return found


@pytest.fixture(scope="module")
def topology() -> Topology:
    return Topology.load("docker")


def _is_instance(name: str) -> bool:
    return re.fullmatch(rf"({'|'.join(SERVICES)})-\d+", name) is not None


def _has_pinned_tag(image: str) -> bool:
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in {"", "latest"}


@pytest.mark.unit
def test_every_service_has_a_dockerfile_that_passes_hadolint() -> None:
    dockerfiles = service_dockerfiles()
    missing = [service for service, path in dockerfiles.items() if not path.is_file()]
    assert not missing, f"services without a Dockerfile: {missing}"
    hadolint(dockerfiles.values())


@pytest.mark.unit
def test_service_dockerfiles_differ_only_by_the_service_name() -> None:
    normalized = {}
    for service, path in service_dockerfiles().items():
        text, count = re.subn(
            rf"^ARG SERVICE={re.escape(service)}$",
            "ARG SERVICE=<service>",
            path.read_text(),
            flags=re.MULTILINE,
        )
        assert count == 2, f"{path}: expected `ARG SERVICE={service}` in both stages"
        normalized[service] = text
    reference = normalized[SERVICES[0]]
    drifted = [service for service, text in normalized.items() if text != reference]
    assert not drifted, f"drifted from services/{SERVICES[0]}/Dockerfile: {drifted}"


@pytest.mark.unit
def test_service_dockerfiles_pin_their_base_image() -> None:
    for path in service_dockerfiles().values():
        defaults = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", path.read_text(), flags=re.MULTILINE)
        assert defaults and all(_has_pinned_tag(image) for image in defaults), path


@pytest.mark.unit
def test_compose_file_loads_with_compose_go(project: dict[str, Any]) -> None:
    assert project["name"] == "shopstack"
    assert project["services"]


@pytest.mark.unit
def test_compose_runs_the_infrastructure_and_exactly_the_topology_instances(
    services: dict[str, dict[str, Any]], topology: Topology
) -> None:
    assert services.keys() >= INFRA_SERVICES
    in_compose = sorted(name for name in services if _is_instance(name))
    assert in_compose == sorted(instance.id for instance in topology.instances())
    unexpected = services.keys() - INFRA_SERVICES - ONE_SHOT_SERVICES - set(in_compose)
    assert not unexpected


@pytest.mark.unit
def test_instances_are_built_from_their_service_dockerfile(
    services: dict[str, dict[str, Any]], topology: Topology
) -> None:
    for instance in topology.instances():
        build = services[instance.id]["build"]
        assert Path(build["context"]) == ROOT, instance.id
        assert build["dockerfile"] == f"services/{instance.service}/Dockerfile", instance.id
        assert build["args"]["PYTHON_IMAGE"] == topology.settings["PYTHON_IMAGE"], instance.id


@pytest.mark.unit
def test_instance_environment_is_exactly_the_topology_environment(
    services: dict[str, dict[str, Any]], topology: Topology
) -> None:
    for instance in topology.instances():
        assert services[instance.id]["environment"] == topology.instance_env(instance), instance.id


@pytest.mark.unit
def test_every_long_running_container_has_a_healthcheck(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        if name in ONE_SHOT_SERVICES:
            continue
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"


@pytest.mark.unit
def test_every_dependency_waits_on_a_condition(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for dependency, spec in (service.get("depends_on") or {}).items():
            condition = spec.get("condition")
            one_shot = dependency in ONE_SHOT_SERVICES
            expected = "service_completed_successfully" if one_shot else "service_healthy"
            assert condition == expected, f"{name} -> {dependency}: {condition}"


@pytest.mark.unit
def test_instances_wait_for_the_infrastructure_they_use(
    services: dict[str, dict[str, Any]], topology: Topology
) -> None:
    for instance in topology.instances():
        depends_on = services[instance.id].get("depends_on") or {}
        wanted = {"postgres", "redis"}
        if "KAFKA_BOOTSTRAP_SERVERS" in topology.instance_env(instance):
            wanted |= {"kafka", "kafka-init"}
        assert wanted <= depends_on.keys(), instance.id
    assert {i.id for i in topology.instances()} <= services["gateway"]["depends_on"].keys()


@pytest.mark.unit
def test_every_image_is_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service.get("image", "")
        assert _has_pinned_tag(image), f"{name}: image {image!r} lacks a pinned tag"


@pytest.mark.unit
def test_memory_limits_keep_the_stack_under_3_gb(services: dict[str, dict[str, Any]]) -> None:
    total = 0
    for name, service in services.items():
        limits = ((service.get("deploy") or {}).get("resources") or {}).get("limits") or {}
        limit = limits.get("memory")
        assert limit, f"{name} has no memory limit"
        total += int(limit)
    assert total < MEMORY_BUDGET_BYTES, f"memory limits sum to {total / 2**20:.0f} MiB"


@pytest.mark.unit
def test_only_the_documented_ports_are_published(
    services: dict[str, dict[str, Any]], topology: Topology
) -> None:
    published = {
        name: sorted(int(port["published"]) for port in service.get("ports") or [])
        for name, service in services.items()
        if service.get("ports")
    }
    expected = {name: [topology.settings.port(key)] for name, key in PUBLISHED_PORTS.items()}
    assert published == expected


@pytest.mark.unit
def test_stateful_services_keep_data_in_named_volumes(
    project: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    for name in STATEFUL_SERVICES:
        volumes = [v for v in services[name].get("volumes") or [] if v["type"] == "volume"]
        assert volumes, f"{name} has no named volume"
        assert all(v["source"] in project["volumes"] for v in volumes), name


@pytest.mark.unit
def test_kafka_init_creates_the_topology_topics(services: dict[str, dict[str, Any]]) -> None:
    specs = services["kafka-init"]["environment"]["TOPICS"].split()
    topics = {name: int(partitions) for name, _, partitions in (s.partition(":") for s in specs)}
    assert topics == KAFKA_TOPICS


@pytest.mark.unit
def test_compose_mounts_every_rendered_config(
    services: dict[str, dict[str, Any]], topology: Topology, tmp_path: Path
) -> None:
    rendered = {path.name for path in write_docker_configs(topology, tmp_path)}
    assert rendered == RENDERED_MOUNTS.keys()
    for filename, (service, target) in RENDERED_MOUNTS.items():
        binds = [v for v in services[service]["volumes"] if v["type"] == "bind"]
        mounts = {(v["source"], v["target"]) for v in binds}
        source = str(ROOT / ".run" / "docker" / filename)
        assert (source, target) in mounts, f"{service} does not mount .run/docker/{filename}"


@pytest.mark.unit
def test_rendered_gateway_and_prometheus_reach_every_instance(
    topology: Topology, tmp_path: Path
) -> None:
    write_docker_configs(topology, tmp_path)
    nginx = (tmp_path / "nginx.conf").read_text()
    prometheus = (tmp_path / "prometheus.yml").read_text()
    for instance in topology.instances():
        assert f"server {instance.address} " in nginx, instance.id
        assert f'"{instance.address}"' in prometheus, instance.id
