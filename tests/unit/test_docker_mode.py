"""Docker mode checked without a Docker engine: docker-compose.yml as compose-go loads it
(schema, `.env` interpolation) must agree with shopctl's topology and the files it
renders, and the Dockerfiles (services, gateway) must pass hadolint."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from shopctl import render
from shopctl.dockercheck import hadolint, load_compose_project, service_dockerfiles
from shopctl.monitoring import (
    ALERTMANAGER_CONFIG,
    JMX_EXPORTER_CONFIG,
    RULES_DIR,
    consul_telemetry_hcl,
    node_exporter_flags,
)
from shopctl.prometheus_build import pinned_version, release_name
from shopctl.render import DOCKER_RULES_DIR, write_docker_configs
from shopctl.topology import (
    CONSUL_SERVERS,
    KAFKA_MIN_INSYNC,
    KAFKA_NODES,
    KAFKA_TOPICS,
    POSTGRES_MEMBERS,
    REDIS_SHARDS,
    ROOT,
    SERVICES,
    Topology,
)
from shopctl.toxiproxy import proxies_json

CONSUL_SERVER_NAMES = [f"consul-{n}" for n in range(1, CONSUL_SERVERS + 1)]
KAFKA_NODE_NAMES = [f"kafka-{n}" for n in range(1, KAFKA_NODES + 1)]
POSTGRES_MEMBER_NAMES = [f"postgres-{n}" for n in range(1, POSTGRES_MEMBERS + 1)]
REDIS_NODE_NAMES = [f"redis-{n}" for n in range(1, 2 * REDIS_SHARDS + 1)]
INFRA_SERVICES = {
    *POSTGRES_MEMBER_NAMES,
    *REDIS_NODE_NAMES,
    "gateway",
    "prometheus",
    "grafana",
    "psp",
    "toxiproxy",
}
INFRA_SERVICES |= {*CONSUL_SERVER_NAMES, *KAFKA_NODE_NAMES}
EXPORTERS = {"redis-exporter", "node-exporter", "nginx-exporter"}
EXPORTERS |= {f"postgres-exporter-{n}" for n in range(1, POSTGRES_MEMBERS + 1)}
INFRA_SERVICES |= {"alertmanager", *EXPORTERS}
# Images built FROM scratch have no program inside to run a healthcheck with; Prometheus's
# `up` for their job is their health, and nothing may wait on them.
SCRATCH_IMAGE_SERVICES = {"redis-exporter", "nginx-exporter"}
ONE_SHOT_SERVICES = {"kafka-init", "postgres-init", "redis-init"}
# Published host ports of each service -> the .env keys that set them. The gateway also
# publishes Locust's web UI, which runs in its network namespace (profile `load`). Of the
# Kafka nodes and Postgres members only the first is published: compose cannot add n - 1
# to a port.
PUBLISHED_PORTS = {
    "gateway": ("GATEWAY_PORT", "LOCUST_WEB_PORT"),
    "prometheus": ("PROMETHEUS_PORT",),
    "alertmanager": ("ALERTMANAGER_PORT",),
    "grafana": ("GRAFANA_PORT",),
    "postgres-1": ("POSTGRES_PORT",),
    "redis-1": ("REDIS_PORT",),
    "kafka-1": ("KAFKA_PORT",),
    "consul-1": ("CONSUL_HTTP_PORT",),
    "toxiproxy": ("TOXIPROXY_PORT",),
}
STATEFUL_SERVICES = {"prometheus", "grafana", "alertmanager", *REDIS_NODE_NAMES}
STATEFUL_SERVICES |= {*CONSUL_SERVER_NAMES, *KAFKA_NODE_NAMES, *POSTGRES_MEMBER_NAMES}
GATEWAY_DOCKERFILE = ROOT / "infra" / "nginx" / "Dockerfile"
PSP_DOCKERFILE = ROOT / "infra" / "psp" / "Dockerfile"
KAFKA_DOCKERFILE = ROOT / "infra" / "kafka" / "Dockerfile"
POSTGRES_DOCKERFILE = ROOT / "infra" / "postgres" / "Dockerfile"
# Files rendered by write_docker_configs (under .run/docker) and where docker-compose.yml
# mounts them.
RENDERED_MOUNTS = {
    "nginx.conf": ("gateway", "/etc/nginx/nginx.conf"),
    "upstreams.ctmpl": ("gateway", "/etc/consul-template/upstreams.ctmpl"),
    "consul-template.hcl": ("gateway", "/etc/consul-template/gateway.hcl"),
    "prometheus.yml": ("prometheus", "/etc/prometheus/prometheus.yml"),
    "databases.sql": ("postgres-init", "/databases.sql"),
    **{f"{name}/patroni.yml": (name, "/etc/patroni/patroni.yml") for name in POSTGRES_MEMBER_NAMES},
    **{
        f"{name}/redis.conf": (name, "/usr/local/etc/redis/redis.conf") for name in REDIS_NODE_NAMES
    },
    "toxiproxy.json": ("toxiproxy", "/config/proxies.json"),
}
# The limits are ceilings above what each part uses (a Kafka node ~430 MiB RSS under its
# 512M). With every stateful part replicated (three Kafka nodes and Consul servers, two
# Postgres members, six Redis nodes) they sum to about 4.1 GiB; what the stack really
# holds is measured as PSS in local mode (issue 15: within 3.5 GB).
MEMORY_BUDGET_BYTES = int(4.5 * 1000**3)

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


def _bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path of a service's bind mounts."""
    binds = [v for v in service.get("volumes") or [] if v["type"] == "bind"]
    return {v["target"]: v["source"] for v in binds}


def _rendered(filename: str) -> str:
    """Where compose expects shopctl to have rendered a file."""
    return str(ROOT / ".run" / "docker" / filename)


def _hcl_string(hcl: str, key: str, indent: str = "  ") -> str:
    """The string value of `key` at the given indentation ("" = top level)."""
    found = re.findall(rf'^{indent}{key}\s*=\s*"([^"]*)"', hcl, flags=re.MULTILINE)
    assert len(found) == 1, f"expected one `{key} = ...` in consul-template.hcl: {found}"
    return found[0]


def _hcl_list(hcl: str, key: str) -> list[str]:
    found = re.findall(rf"^\s*{key}\s*=\s*(\[.*\])\s*$", hcl, flags=re.MULTILINE)
    assert len(found) == 1, f"expected one `{key} = [...]` in consul-template.hcl: {found}"
    values: list[str] = yaml.safe_load(found[0])
    return values


def _dockerfile_instruction(path: Path, instruction: str) -> list[str]:
    """The JSON-form arguments of the last INSTRUCTION in a Dockerfile."""
    found = re.findall(rf"^{instruction}\s+(\[.*\])\s*$", path.read_text(), flags=re.MULTILINE)
    assert found, f"{path}: no {instruction} in JSON form"
    args: list[str] = yaml.safe_load(found[-1])
    return args


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
def test_the_card_processor_image_passes_hadolint_and_is_built_by_compose(
    services: dict[str, dict[str, Any]],
) -> None:
    hadolint([PSP_DOCKERFILE])
    assert ROOT / services["psp"]["build"]["dockerfile"] == PSP_DOCKERFILE
    assert any(v.get("target") == "/var/lib/psp" for v in services["psp"]["volumes"])


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
def test_gateway_dockerfile_passes_hadolint() -> None:
    hadolint([GATEWAY_DOCKERFILE])


@pytest.mark.unit
def test_gateway_dockerfile_pins_its_images_as_env_does(topology: Topology) -> None:
    text = GATEWAY_DOCKERFILE.read_text()
    for key in ("NGINX_IMAGE", "CONSUL_TEMPLATE_IMAGE"):
        defaults = re.findall(rf"^ARG {key}=(\S+)$", text, flags=re.MULTILINE)
        assert defaults == [topology.settings[key]], f"ARG {key} default: {defaults}"
    assert re.search(r"^FROM \$\{CONSUL_TEMPLATE_IMAGE\} AS (\S+)$", text, flags=re.MULTILINE)
    assert re.search(r"^FROM \$\{NGINX_IMAGE\}$", text, flags=re.MULTILINE)


@pytest.mark.unit
def test_gateway_is_built_from_its_dockerfile(
    services: dict[str, dict[str, Any]], topology: Topology
) -> None:
    build = services["gateway"]["build"]
    assert Path(build["context"]) == ROOT
    assert ROOT / build["dockerfile"] == GATEWAY_DOCKERFILE
    for key in ("NGINX_IMAGE", "CONSUL_TEMPLATE_IMAGE"):
        assert build["args"][key] == topology.settings[key], key


@pytest.mark.unit
def test_gateway_stops_the_way_consul_template_stops_nginx(
    services: dict[str, dict[str, Any]], topology: Topology, tmp_path: Path
) -> None:
    write_docker_configs(topology, tmp_path)
    hcl = (tmp_path / "consul-template.hcl").read_text()
    stop_signal = services["gateway"].get("stop_signal")
    if stop_signal is None:
        found = re.findall(r"^STOPSIGNAL (\S+)$", GATEWAY_DOCKERFILE.read_text(), flags=re.M)
        stop_signal = found[-1] if found else "SIGTERM"
    # consul-template exits on its own kill_signal and passes exec's on to nginx.
    assert stop_signal == _hcl_string(hcl, "kill_signal", indent="")


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
        if name in ONE_SHOT_SERVICES or name in SCRATCH_IMAGE_SERVICES:
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
        wanted = {"postgres-init", "redis-init", *CONSUL_SERVER_NAMES}
        if "KAFKA_BOOTSTRAP_SERVERS" in topology.instance_env(instance):
            wanted |= {*KAFKA_NODE_NAMES, "kafka-init"}
        assert wanted <= depends_on.keys(), instance.id


@pytest.mark.unit
def test_gateway_and_prometheus_follow_consul_not_the_instances(
    services: dict[str, dict[str, Any]], topology: Topology
) -> None:
    instances = {instance.id for instance in topology.instances()}
    for name in ("gateway", "prometheus"):
        depends_on = (services[name].get("depends_on") or {}).keys()
        assert set(CONSUL_SERVER_NAMES) <= depends_on, name
        assert not depends_on & instances, f"{name} waits on instances: {depends_on & instances}"


@pytest.mark.unit
def test_every_image_is_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service.get("image", "")
        assert _has_pinned_tag(image), f"{name}: image {image!r} lacks a pinned tag"


@pytest.mark.unit
def test_memory_limits_keep_the_stack_within_its_budget(
    services: dict[str, dict[str, Any]],
) -> None:
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
    expected = {
        name: sorted(topology.settings.port(key) for key in keys)
        for name, keys in PUBLISHED_PORTS.items()
    }
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
    rendered = {
        str(path.relative_to(tmp_path)) for path in write_docker_configs(topology, tmp_path)
    }
    assert rendered == RENDERED_MOUNTS.keys()
    for filename, (service, target) in RENDERED_MOUNTS.items():
        mounts = _bind_mounts(services[service])
        assert mounts.get(target) == _rendered(filename), (
            f"{service} does not mount .run/docker/{filename} at {target}"
        )


@pytest.mark.unit
def test_gateway_mounts_what_its_command_and_config_read(
    services: dict[str, dict[str, Any]], topology: Topology, tmp_path: Path
) -> None:
    """Follow the chain the gateway starts from: the image's command names the
    consul-template config, which names the template and nginx's config, which includes
    the upstreams file consul-template writes. Each file read must be mounted."""
    write_docker_configs(topology, tmp_path)
    mounts = _bind_mounts(services["gateway"])
    command = services["gateway"].get("entrypoint") or _dockerfile_instruction(
        GATEWAY_DOCKERFILE, "ENTRYPOINT"
    )
    command = command + (
        services["gateway"].get("command") or _dockerfile_instruction(GATEWAY_DOCKERFILE, "CMD")
    )
    assert command[0] == "consul-template" and "-config" in command, command
    config = command[command.index("-config") + 1]
    assert mounts.get(config) == _rendered("consul-template.hcl"), f"{config} not mounted"

    hcl = (tmp_path / "consul-template.hcl").read_text()
    source = _hcl_string(hcl, "source")
    assert mounts.get(source) == _rendered("upstreams.ctmpl"), f"{source} not mounted"
    nginx = _hcl_list(hcl, "command")
    assert nginx[0] == "nginx" and "-c" in nginx, nginx
    nginx_conf = nginx[nginx.index("-c") + 1]
    assert mounts.get(nginx_conf) == _rendered("nginx.conf"), f"{nginx_conf} not mounted"

    # nginx reads the upstreams consul-template writes (into the container, not a mount).
    destination = _hcl_string(hcl, "destination")
    includes = re.findall(r"^\s*include\s+(\S+);", (tmp_path / "nginx.conf").read_text(), re.M)
    assert destination in includes, f"nginx.conf does not include {destination}"
    assert destination not in mounts, f"{destination} is mounted: consul-template writes it"
    assert _hcl_string(hcl, "address") == topology.consul_address()


@pytest.mark.unit
def test_gateway_upstreams_follow_every_service_in_consul(
    topology: Topology, tmp_path: Path
) -> None:
    write_docker_configs(topology, tmp_path)
    template = (tmp_path / "upstreams.ctmpl").read_text()
    nginx = (tmp_path / "nginx.conf").read_text()
    for service in SERVICES:
        block = re.search(rf"^upstream {service} \{{(.*?)^\}}", template, re.M | re.S)
        assert block, f"upstreams.ctmpl has no `upstream {service}`"
        ranges = re.findall(r'\[\[-?\s*range service "([^"]+)"', block.group(1))
        assert ranges == [f"{service}|passing"], f"upstream {service} ranges over {ranges}"
    # No instance is written down: every server comes from Consul.
    for instance in topology.instances():
        assert instance.host not in template + nginx, instance.id
    # Every upstream the routes use is one the template defines.
    routed = set(re.findall(r"proxy_pass http://([\w-]+)", nginx))
    assert routed and routed <= set(SERVICES), routed


@pytest.mark.unit
def test_prometheus_finds_every_service_through_consul(topology: Topology, tmp_path: Path) -> None:
    write_docker_configs(topology, tmp_path)
    config = yaml.safe_load((tmp_path / "prometheus.yml").read_text())
    discovered: set[str] = set()
    static_targets: list[str] = []
    for job in config["scrape_configs"]:
        for sd in job.get("consul_sd_configs") or []:
            assert sd["server"] == topology.consul_address(), job["job_name"]
            discovered |= set(sd.get("services") or [])
        for static in job.get("static_configs") or []:
            static_targets += static.get("targets") or []
    # The services, and a load test's Locust run while it goes.
    assert discovered == {*SERVICES, "locust"}
    for instance in topology.instances():
        hosts = {target.rpartition(":")[0] for target in static_targets}
        assert instance.host not in hosts, f"static target for {instance.id}"


@pytest.mark.unit
def test_consul_runs_as_a_raft_cluster_of_the_topology_size(
    services: dict[str, dict[str, Any]], topology: Topology
) -> None:
    servers = sorted(name for name in services if re.fullmatch(r"consul-\d+", name))
    assert servers == sorted(CONSUL_SERVER_NAMES)
    alias, _, port = topology.consul_address().rpartition(":")
    assert port == "8500"
    for name in servers:
        service = services[name]
        assert service["image"] == topology.settings["CONSUL_IMAGE"], name
        aliases = ((service.get("networks") or {}).get("default") or {}).get("aliases") or []
        assert alias in aliases, f"{name} does not answer to {alias!r}"
        command = service.get("command") or []
        assert command[:2] == ["agent", "-server"], f"{name}: {command}"
        assert f"-bootstrap-expect={CONSUL_SERVERS}" in command, f"{name}: {command}"
        joins = sorted(arg.partition("=")[2] for arg in command if arg.startswith("-retry-join="))
        assert joins == sorted(CONSUL_SERVER_NAMES), f"{name} retry-joins {joins}"
        assert "-client=0.0.0.0" in command, f"{name}: HTTP API not reachable from the network"
        assert "-ui" in command, f"{name}: no UI"
        targets = [v["target"] for v in service.get("volumes") or [] if v["type"] == "volume"]
        assert "/consul/data" in targets, f"{name} keeps its Raft data in the container"


@pytest.mark.unit
def test_instances_register_with_every_consul_server(
    services: dict[str, dict[str, Any]], topology: Topology
) -> None:
    for instance in topology.instances():
        env = services[instance.id]["environment"]
        agents = env["CONSUL_HTTP_ADDRS"].split(",")
        assert sorted(a.rpartition(":")[0] for a in agents) == CONSUL_SERVER_NAMES, instance.id
        assert all(a.rpartition(":")[2] == "8500" for a in agents), instance.id
        # Consul's health check dials the address the instance registers.
        assert env["SERVICE_ADDRESS"] == instance.id, instance.id


@pytest.mark.unit
def test_nothing_waits_on_an_image_without_a_healthcheck(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        waits_on = (service.get("depends_on") or {}).keys() & SCRATCH_IMAGE_SERVICES
        assert not waits_on, f"{name} waits on {waits_on}, which cannot report healthy"
    for name in SCRATCH_IMAGE_SERVICES:
        assert not services[name].get("healthcheck", {}).get("test"), name


@pytest.mark.unit
def test_kafka_dockerfile_passes_hadolint_and_pins_as_env_does(
    services: dict[str, dict[str, Any]], topology: Topology
) -> None:
    hadolint([KAFKA_DOCKERFILE])
    text = KAFKA_DOCKERFILE.read_text()
    for key in ("KAFKA_IMAGE", "JMX_EXPORTER_VERSION"):
        defaults = re.findall(rf"^ARG {key}=(\S+)$", text, flags=re.MULTILINE)
        assert defaults == [topology.settings[key]], f"ARG {key} default: {defaults}"
    for name in KAFKA_NODE_NAMES:
        build = services[name]["build"]
        assert ROOT / build["dockerfile"] == KAFKA_DOCKERFILE, name
        for key in ("KAFKA_IMAGE", "JMX_EXPORTER_VERSION"):
            assert build["args"][key] == topology.settings[key], f"{name}: {key}"
    # One image for every node, whichever node's build made it.
    assert len({services[name]["image"] for name in KAFKA_NODE_NAMES}) == 1


def _kafka_agent(service: dict[str, Any]) -> tuple[str, str, str]:
    """(jar, port, config) of a node's -javaagent option."""
    options = service["environment"]["KAFKA_OPTS"].split()
    agents = [o.removeprefix("-javaagent:") for o in options if o.startswith("-javaagent:")]
    assert len(agents) == 1, options
    jar, _, rest = agents[0].partition("=")
    port, _, config = rest.partition(":")
    return jar, port, config


@pytest.mark.unit
def test_kafka_nodes_attach_the_jmx_agent_the_image_adds_with_the_mounted_rules(
    services: dict[str, dict[str, Any]], topology: Topology, tmp_path: Path
) -> None:
    added = re.findall(r"^ADD .*\s(\S+\.jar)$", KAFKA_DOCKERFILE.read_text(), flags=re.M)
    ports = {}
    for name in KAFKA_NODE_NAMES:
        jar, ports[name], config = _kafka_agent(services[name])
        assert added == [jar], name
        assert _bind_mounts(services[name]).get(config) == str(JMX_EXPORTER_CONFIG), name
        # The healthcheck's second JVM must not start another agent on the same port.
        assert "KAFKA_OPTS= " in " ".join(services[name]["healthcheck"]["test"]), name
    write_docker_configs(topology, tmp_path)
    expected = {f"{name}:{port}": name for name, port in ports.items()}
    assert _static_targets(tmp_path)["kafka"] == expected


def _listeners(value: str) -> dict[str, str]:
    """A listeners setting (`NAME://host:port,...`) as name -> host:port."""
    pairs = (item.split("://", 1) for item in value.split(","))
    return {name: address for name, address in pairs}


@pytest.mark.unit
def test_kafka_runs_as_a_kraft_cluster_of_the_topology_size(
    services: dict[str, dict[str, Any]], topology: Topology
) -> None:
    nodes = topology.kafka_nodes()
    in_compose = sorted(name for name in services if re.fullmatch(r"kafka-\d+", name))
    assert in_compose == sorted(node.name for node in nodes) == sorted(KAFKA_NODE_NAMES)
    voters = ",".join(f"{n.index}@{n.host}:{n.controller_port}" for n in nodes)
    cluster_ids = set()
    for node in nodes:
        env = services[node.name]["environment"]
        assert env["KAFKA_NODE_ID"] == str(node.index), node.name
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller", node.name
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == voters, node.name
        listeners = _listeners(env["KAFKA_LISTENERS"])
        assert listeners["PLAINTEXT"] == f":{node.port}", node.name
        assert listeners["CONTROLLER"] == f":{node.controller_port}", node.name
        advertised = _listeners(env["KAFKA_ADVERTISED_LISTENERS"])
        # The other nodes and kafka-init reach it by its service name.
        assert advertised["PLAINTEXT"] == f"{node.host}:{node.port}", node.name
        assert node.host == node.name
        cluster_ids.add(env["CLUSTER_ID"])
        volumes = [v for v in services[node.name]["volumes"] if v["type"] == "volume"]
        assert [v["target"] for v in volumes] == [env["KAFKA_LOG_DIRS"]], node.name
    # Formatted with different ids, the nodes would refuse each other.
    assert len(cluster_ids) == 1
    data = [
        v["source"] for n in nodes for v in services[n.name]["volumes"] if v["type"] == "volume"
    ]
    assert len(set(data)) == len(nodes), f"nodes share a data volume: {data}"


@pytest.mark.unit
def test_kafka_nodes_are_configured_as_local_modes_nodes(
    services: dict[str, dict[str, Any]],
) -> None:
    """Every setting of infra/kafka/server.properties.j2 that is not about one node's
    addresses or files is the same env var (the image's KAFKA_<NAME> convention) here:
    replication, failover timing, consumer groups."""
    local = Topology.load("local")
    nodes = local.kafka_nodes()
    rendered = render.templates.get_template("kafka/server.properties.j2").render(
        node=nodes[0],
        voters="",
        replicas=KAFKA_NODES,
        min_insync=KAFKA_MIN_INSYNC,
        data_dir="/tmp/x",
    )
    properties = dict(
        line.split("=", 1) for line in rendered.splitlines() if line and not line.startswith("#")
    )
    per_node = {
        "node.id",
        "controller.quorum.voters",
        "listeners",
        "advertised.listeners",
        "listener.security.protocol.map",  # Docker mode adds EXTERNAL
        "log.dirs",
    }
    assert per_node <= properties.keys()
    assert properties["default.replication.factor"] == str(KAFKA_NODES)
    assert properties["min.insync.replicas"] == str(KAFKA_MIN_INSYNC)
    for name in KAFKA_NODE_NAMES:
        env = services[name]["environment"]
        for key, value in properties.items():
            if key in per_node:
                continue
            var = "KAFKA_" + key.upper().replace(".", "_")
            assert env.get(var) == value, f"{name}: {var} is {env.get(var)!r}, local {value!r}"


@pytest.mark.unit
def test_only_kafka_1_is_published_and_advertises_its_host_port(
    services: dict[str, dict[str, Any]], topology: Topology
) -> None:
    first, *others = KAFKA_NODE_NAMES
    env = services[first]["environment"]
    (port,) = services[first]["ports"]
    assert int(port["published"]) == topology.settings.port("KAFKA_PORT")
    assert _listeners(env["KAFKA_LISTENERS"])["EXTERNAL"] == f":{port['target']}"
    external = _listeners(env["KAFKA_ADVERTISED_LISTENERS"])["EXTERNAL"]
    assert external == f"localhost:{topology.settings['KAFKA_PORT']}"
    # An unpublished EXTERNAL would send host clients to an address nobody answers on.
    for name in others:
        env = services[name]["environment"]
        assert not services[name].get("ports"), name
        assert "EXTERNAL" not in _listeners(env["KAFKA_LISTENERS"]), name
        assert "EXTERNAL" not in _listeners(env["KAFKA_ADVERTISED_LISTENERS"]), name


@pytest.mark.unit
def test_kafka_init_waits_for_every_node_and_replicates_to_each(
    services: dict[str, dict[str, Any]], topology: Topology
) -> None:
    init = services["kafka-init"]
    assert set(KAFKA_NODE_NAMES) <= (init.get("depends_on") or {}).keys()
    script = " ".join(init["command"])
    assert re.findall(r"--bootstrap-server (\S+)", script) == [topology.kafka_bootstrap()]
    assert re.findall(r"--replication-factor (\d+)", script) == [str(KAFKA_NODES)]


def _static_targets(out_dir: Path) -> dict[str, dict[str, str]]:
    """Each static job of the rendered prometheus.yml: target address -> instance label."""
    config = yaml.safe_load((out_dir / "prometheus.yml").read_text())
    jobs: dict[str, dict[str, str]] = {}
    for job in config["scrape_configs"]:
        for static in job.get("static_configs") or []:
            for target in static["targets"]:
                jobs.setdefault(job["job_name"], {})[target] = static["labels"]["instance"]
    return jobs


def _prometheus_config(topology: Topology, out_dir: Path) -> dict[str, Any]:
    write_docker_configs(topology, out_dir)
    config: dict[str, Any] = yaml.safe_load((out_dir / "prometheus.yml").read_text())
    return config


@pytest.mark.unit
def test_both_modes_scrape_the_same_jobs_with_the_same_instance_names(
    topology: Topology, tmp_path: Path
) -> None:
    local_topology = Topology("local", topology.settings)
    (tmp_path / "local").mkdir()
    local_config = yaml.safe_load(render.prometheus_yml(local_topology))
    (tmp_path / "local" / "prometheus.yml").write_text(yaml.safe_dump(local_config))
    docker_config = _prometheus_config(topology, tmp_path)

    def shape(config: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
        return {
            job["job_name"]: (job.get("metrics_path"), job.get("params"))
            for job in config["scrape_configs"]
        }

    assert shape(local_config) == shape(docker_config)
    assert {"alertmanager", "postgres", "redis", "kafka", "nginx", "consul", "node"} <= set(
        shape(docker_config)
    )
    local_names = {j: set(t.values()) for j, t in _static_targets(tmp_path / "local").items()}
    docker_names = {j: set(t.values()) for j, t in _static_targets(tmp_path).items()}
    assert docker_names["consul"] == set(CONSUL_SERVER_NAMES)
    assert local_names == docker_names


@pytest.mark.unit
def test_every_scrape_target_is_a_service_compose_runs(
    services: dict[str, dict[str, Any]], topology: Topology, tmp_path: Path
) -> None:
    write_docker_configs(topology, tmp_path)
    # A container sharing another's network namespace answers on that one's name.
    hosts_of = {name: {name} for name in services}
    for name, service in services.items():
        shared = (service.get("network_mode") or "").removeprefix("service:")
        if shared in services:
            hosts_of[shared].add(name)
    config = yaml.safe_load((tmp_path / "prometheus.yml").read_text())
    exporters = {
        job["job_name"]: rule["replacement"]
        for job in config["scrape_configs"]
        for rule in job.get("relabel_configs") or []
        if rule.get("target_label") == "__address__"
    }
    for job, targets in _static_targets(tmp_path).items():
        if job == "prometheus":
            continue
        # A multi-target exporter's targets are what it watches; the scrape goes to it.
        for address in [*targets, *([exporters[job]] if job in exporters else [])]:
            host = address.removeprefix("redis://").rpartition(":")[0]
            assert host in services, f"job {job} scrapes {address}: no such service"
    assert exporters["redis"] == "redis-exporter:9121"
    assert "nginx-exporter" in hosts_of["gateway"]
    assert services["nginx-exporter"]["network_mode"] == "service:gateway"
    # It reads stub_status over the gateway's loopback, where nginx.conf serves it.
    scrape_uri = next(
        a for a in services["nginx-exporter"]["command"] if a.startswith("-nginx.scrape-uri=")
    )
    listen = re.findall(r"listen (127\.0\.0\.1:\d+);", (tmp_path / "nginx.conf").read_text())
    assert scrape_uri == f"-nginx.scrape-uri=http://{listen[0]}/stub_status"


@pytest.mark.unit
def test_prometheus_loads_the_rules_and_sends_alerts_to_alertmanager(
    services: dict[str, dict[str, Any]], topology: Topology, tmp_path: Path
) -> None:
    config = _prometheus_config(topology, tmp_path)
    mounts = _bind_mounts(services["prometheus"])
    assert config["rule_files"] == [f"{DOCKER_RULES_DIR}/*.yml"]
    assert mounts.get(DOCKER_RULES_DIR) == str(RULES_DIR)
    statics = [s for am in config["alerting"]["alertmanagers"] for s in am["static_configs"]]
    assert [t for s in statics for t in s["targets"]] == ["alertmanager:9093"]
    alertmanager = services["alertmanager"]
    assert _bind_mounts(alertmanager).get("/etc/alertmanager/alertmanager.yml") == str(
        ALERTMANAGER_CONFIG
    )
    assert "--cluster.listen-address=" in alertmanager["command"]


@pytest.mark.unit
def test_monitoring_images_are_the_versions_local_mode_runs(
    services: dict[str, dict[str, Any]], topology: Topology
) -> None:
    images = {
        "prometheus": "PROMETHEUS_IMAGE",
        "alertmanager": "ALERTMANAGER_IMAGE",
        **{f"postgres-exporter-{n}": "POSTGRES_EXPORTER_IMAGE" for n in (1, 2)},
        "redis-exporter": "REDIS_EXPORTER_IMAGE",
        "node-exporter": "NODE_EXPORTER_IMAGE",
        "nginx-exporter": "NGINX_EXPORTER_IMAGE",
    }
    for service, key in images.items():
        assert services[service]["image"] == topology.settings[key], service
    # Local mode builds Prometheus from its Go module; Docker mode runs that release.
    tag = topology.settings["PROMETHEUS_IMAGE"].rpartition(":")[2]
    assert tag == f"v{release_name(pinned_version())}"


@pytest.mark.unit
def test_exporter_images_match_the_debian_packages_when_installed(topology: Topology) -> None:
    """Local mode's exporters are bookworm's packages; the images pin the same versions."""
    packages = {
        "ALERTMANAGER_IMAGE": "prometheus-alertmanager",
        "POSTGRES_EXPORTER_IMAGE": "prometheus-postgres-exporter",
        "REDIS_EXPORTER_IMAGE": "prometheus-redis-exporter",
        "NODE_EXPORTER_IMAGE": "prometheus-node-exporter",
        "NGINX_EXPORTER_IMAGE": "prometheus-nginx-exporter",
    }
    if not shutil.which("dpkg-query"):
        pytest.skip("no dpkg here")
    compared = 0
    for key, package in packages.items():
        found = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True
        )
        if found.returncode != 0 or not found.stdout:
            continue
        upstream = found.stdout.split(":")[-1].split("-")[0]
        tag = topology.settings[key].rpartition(":")[2].removeprefix("v")
        assert tag == upstream, f"{key} is {tag}, {package} is {upstream}"
        compared += 1
    if not compared:
        pytest.skip("local mode's exporter packages are not installed")


@pytest.mark.unit
def test_consul_servers_keep_prometheus_metrics_as_local_mode_does(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in CONSUL_SERVER_NAMES:
        assert f"-hcl={consul_telemetry_hcl()}" in services[name]["command"], name


@pytest.mark.unit
def test_node_exporter_runs_the_collectors_local_mode_runs(
    services: dict[str, dict[str, Any]],
) -> None:
    command = services["node-exporter"]["command"]
    collectors = [a for a in command if a.startswith("--collector.")]
    assert collectors == node_exporter_flags()
    assert "--path.rootfs=/host" in command
    assert _bind_mounts(services["node-exporter"]).get("/host") == "/"


@pytest.fixture(scope="module")
def load_services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = load_compose_project(profiles=["load"])["services"]
    return found


@pytest.mark.unit
def test_locust_runs_only_under_the_load_profile(
    services: dict[str, dict[str, Any]], load_services: dict[str, dict[str, Any]]
) -> None:
    assert "locust" not in services
    assert load_services.keys() - services.keys() == {"locust"}
    assert load_services["locust"]["profiles"] == ["load"]


@pytest.mark.unit
def test_locust_image_passes_hadolint_and_carries_the_locustfile_and_its_modules(
    load_services: dict[str, dict[str, Any]], topology: Topology
) -> None:
    locust = load_services["locust"]
    assert _has_pinned_tag(locust["image"])
    assert locust["build"]["dockerfile"] == "loadtest/Dockerfile"
    assert locust["build"]["args"]["PYTHON_IMAGE"] == topology.settings["PYTHON_IMAGE"]
    dockerfile = ROOT / "loadtest" / "Dockerfile"
    hadolint([dockerfile])
    copied = set(re.findall(r"loadtest/(\w+\.py)", dockerfile.read_text()))
    imported = {"locustfile.py"} | {
        f"{name}.py"
        for name in re.findall(
            r"^(?:import|from) (\w+)", (ROOT / "loadtest" / "locustfile.py").read_text(), re.M
        )
        if (ROOT / "loadtest" / f"{name}.py").exists()
    }
    assert imported <= copied, f"the image lacks {imported - copied}"
    assert "-r loadtest/requirements.txt" in (ROOT / "requirements-dev.txt").read_text()
    assert "loadtest/requirements.txt" in dockerfile.read_text()


@pytest.mark.unit
def test_locust_shares_the_gateways_network_and_registers_where_prometheus_finds_it(
    load_services: dict[str, dict[str, Any]], topology: Topology, tmp_path: Path
) -> None:
    locust = load_services["locust"]
    # Loopback source addresses per shopper only reach the gateway from its namespace.
    assert locust["network_mode"] == "service:gateway"
    assert locust["depends_on"]["gateway"]["condition"] == "service_healthy"
    env = locust["environment"]
    assert env["CONSUL_HTTP_ADDR"].rpartition(":")[0] in CONSUL_SERVER_NAMES
    assert env["LOCUST_METRICS_PORT"] == topology.settings["LOCUST_METRICS_PORT"]
    assert env["LOCUST_METRICS_HOST"] == "0.0.0.0"
    assert env["LOCUST_METRICS_ADDRESS"] == "gateway"
    assert _bind_mounts(locust) == {"/load": str(ROOT / ".run" / "load")}
    config = _prometheus_config(topology, tmp_path)
    assert "locust" in {job["job_name"] for job in config["scrape_configs"]}
    limits = locust["deploy"]["resources"]["limits"]
    assert int(limits["memory"]) > 0


@pytest.mark.unit
def test_every_process_an_experiment_acts_on_is_a_compose_service_or_local_only(
    services: dict[str, dict[str, Any]],
) -> None:
    from shopctl.chaos.actions import LOCAL_ONLY
    from shopctl.chaos.run import experiments

    for name, experiment in experiments().items():
        for activity in [*experiment["method"], *experiment.get("rollbacks", [])]:
            for target in activity["provider"].get("arguments", {}).get("targets", []):
                assert target in services or target in LOCAL_ONLY, f"{name}: {target}"


@pytest.mark.unit
def test_postgres_members_run_patroni_from_one_image_with_their_own_configuration(
    services: dict[str, dict[str, Any]], topology: Topology, tmp_path: Path
) -> None:
    hadolint([POSTGRES_DOCKERFILE])
    text = POSTGRES_DOCKERFILE.read_text()
    for key in ("POSTGRES_IMAGE", "PATRONI_VERSION"):
        defaults = re.findall(rf"^ARG {key}=(\S+)$", text, flags=re.MULTILINE)
        assert defaults == [topology.settings[key]], f"ARG {key} default: {defaults}"
        for name in POSTGRES_MEMBER_NAMES:
            assert services[name]["build"]["args"][key] == topology.settings[key], name
    assert len({services[name]["image"] for name in POSTGRES_MEMBER_NAMES}) == 1
    write_docker_configs(topology, tmp_path)
    for member in topology.postgres_members():
        config = yaml.safe_load((tmp_path / member.name / "patroni.yml").read_text())
        assert config["name"] == member.name
        assert config["consul"]["host"] == "consul:8500"
        assert config["postgresql"]["connect_address"] == f"{member.name}:5432"
        assert config["bootstrap"]["dcs"]["synchronous_mode"] is True
    # The init job and the exporter reach every member; the services go through Toxiproxy.
    init = " ".join(services["postgres-init"]["command"])
    for name in POSTGRES_MEMBER_NAMES:
        assert f"{name}:5432" in init, name
    # An exporter per member, each scraped as the member it watches.
    scraped = {job.name: job.targets for job in render.scrape_jobs(topology)}["postgres"]
    for (exporter, member, port), target in zip(
        topology.postgres_exporters(), scraped, strict=True
    ):
        dsn = services[exporter]["environment"]["DATA_SOURCE_NAME"]
        assert f"@{member}:5432/" in dsn and target == (f"{exporter}:{port}", member)
    proxies = {p["name"]: p for p in json.loads(proxies_json(topology))}
    for name in POSTGRES_MEMBER_NAMES:
        assert proxies[name]["upstream"] == f"{name}:5432"


@pytest.mark.unit
def test_redis_nodes_announce_their_names_and_the_services_reach_each_through_its_proxy(
    services: dict[str, dict[str, Any]], topology: Topology, tmp_path: Path
) -> None:
    write_docker_configs(topology, tmp_path)
    proxies = {p["name"]: p for p in json.loads(proxies_json(topology))}
    init = " ".join(services["redis-init"]["command"])
    cart = next(i for i in topology.instances() if i.service == "cart")
    mapping = dict(
        pair.split("=") for pair in services[cart.id]["environment"]["REDIS_ADDRESS_MAP"].split(",")
    )
    for name in REDIS_NODE_NAMES:
        conf = (tmp_path / name / "redis.conf").read_text()
        assert f"cluster-announce-hostname {name}\n" in conf and "cluster-enabled yes" in conf
        assert f"getent hosts {name} " in init, name
        # What the node announces is mapped to the proxy that forwards to that node.
        proxy = mapping[f"{name}:6379"]
        assert proxies[name]["upstream"] == f"{name}:6379"
        assert proxies[name]["listen"].rsplit(":", 1)[1] == proxy.rsplit(":", 1)[1]


@pytest.mark.unit
def test_no_consul_server_holds_every_instance_of_a_service(
    services: dict[str, dict[str, Any]], topology: Topology
) -> None:
    # Docker mode has no client agents: an entry lives on the server it was made on and
    # goes when that server goes, so a service's instances start at different servers.
    for service in SERVICES:
        first = {
            services[i.id]["environment"]["CONSUL_HTTP_ADDRS"].split(",")[0]
            for i in topology.instances()
            if i.service == service
        }
        assert len(first) == min(int(topology.settings[f"{service.upper()}_INSTANCES"]), 3), service
