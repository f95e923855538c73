import socket
from pathlib import Path

import pytest

from kit.migrations import MigrationError, load_migrations
from shopctl import render
from shopctl.ports import INFRA_PORT_VARS, check_ports_distinct, check_ports_free, stack_ports
from shopctl.progress import StackError
from shopctl.supervisor import Program, render_config
from shopctl.topology import (
    CONSUL_SERVER_PORT_VARS,
    SERVICES,
    Settings,
    Topology,
    read_env_file,
)

pytestmark = pytest.mark.unit


def topology(mode: str = "local", **overrides: str) -> Topology:
    values = read_env_file()
    # Off the defaults, so that a stack the developer is running does not interfere.
    shifted = [*INFRA_PORT_VARS, *CONSUL_SERVER_PORT_VARS]
    for var in [*shifted, *(f"{s.upper()}_PORT" for s in SERVICES)]:
        values[var] = str(int(values[var]) + 31000)
    values.update(overrides)
    return Topology(mode, Settings(values))  # type: ignore[arg-type]


def test_instance_counts_and_ports_come_from_env() -> None:
    t = topology(CART_INSTANCES="3", CART_PORT="9000")
    assert [i.address for i in t.instances("cart")] == [
        "127.0.0.1:9000",
        "127.0.0.1:9001",
        "127.0.0.1:9002",
    ]
    assert len(t.instances()) == 2 + 3 + 2 + 2


def test_every_instance_gets_its_own_database_and_only_its_dependencies() -> None:
    t = topology()
    for instance in t.instances():
        env = t.instance_env(instance)
        url = env["DATABASE_URL"]
        # Its own database, on whichever member takes writes (every member is named).
        assert url.endswith(f"/{instance.service}?target_session_attrs=read-write")
        assert url.count(",") == len(t.postgres_members()) - 1 == 1
        assert env["INSTANCE_ID"] == instance.id
        assert ("KAFKA_BOOTSTRAP_SERVERS" in env) == (instance.service in ("orders", "payments"))


def test_docker_mode_uses_the_same_variable_names() -> None:
    local, docker = topology("local"), topology("docker")
    for a, b in zip(local.instances(), docker.instances(), strict=True):
        assert local.instance_env(a).keys() == docker.instance_env(b).keys()
    assert docker.instance_env(docker.instances("auth")[0])["DATABASE_URL"].startswith(
        "postgresql://auth:auth@toxiproxy:5432,toxiproxy:5433/"
    )


def test_gateway_takes_its_upstreams_from_consul_and_hides_internals(tmp_path: Path) -> None:
    t = topology()
    nginx = render.nginx_conf(t, tmp_path)
    assert f"include {tmp_path / 'nginx' / 'upstreams.conf'};" in nginx
    assert "location ~ ^/(internal|metrics)(/|$) { return 404; }" in nginx
    next_upstream = nginx.split("proxy_next_upstream ")[1].split(";")[0]
    assert "non_idempotent" not in next_upstream
    # A service's 503 (load shed, a shared dependency away) must not disable the instance.
    assert "http_503" not in next_upstream and "error" in next_upstream
    # POSTs go on to the next instance only where a repeat is safe, and never on a timeout.
    repeated = [
        block.split("}")[0]
        for block in nginx.split("location = ")[1:]
        if "non_idempotent" in block.split("}")[0]
    ]
    assert sorted(b.split(" {")[0] for b in repeated) == ["/auth/login", "/orders"]
    assert all("timeout" not in b and "http_503" not in b for b in repeated)
    # A frozen cart instance holds the catalog and carts 10 s, not the gateway's 30 s.
    assert "proxy_read_timeout 30s;" in nginx
    for route in ("/products", "/cart"):
        block = nginx.split(f"location {route} ")[1].split("}")[0]
        assert "proxy_read_timeout 10s;" in block, route
    template = render.upstreams_template()
    for service in SERVICES:
        assert f"upstream {service} {{" in template
        assert f'range service "{service}|passing"' in template
    hcl = render.consul_template_hcl(t, tmp_path, nginx=Path("/usr/sbin/nginx"))
    assert f'address = "127.0.0.1:{t.settings["CONSUL_HTTP_PORT"]}"' in hcl
    assert "attempts = 0" in hcl  # never stops retrying Consul, keeps the last upstreams
    assert f'"/usr/sbin/nginx", "-c", "{tmp_path / "nginx" / "nginx.conf"}"' in hcl


def test_prometheus_finds_every_service_through_consul() -> None:
    t = topology()
    prometheus = render.prometheus_yml(t)
    assert "consul_sd_configs" in prometheus
    assert f'server: "127.0.0.1:{t.settings["CONSUL_HTTP_PORT"]}"' in prometheus
    assert f"services: [{', '.join(SERVICES)}]" in prometheus
    for instance in t.instances():
        assert instance.address not in prometheus


def test_instances_know_every_consul_agent() -> None:
    docker = topology("docker")
    first, second = (docker.instance_env(i) for i in docker.instances("cart"))
    assert first["CONSUL_HTTP_ADDRS"] == "consul-1:8500,consul-2:8500,consul-3:8500"
    # Each instance of a service starts at a different server.
    assert second["CONSUL_HTTP_ADDRS"] == "consul-2:8500,consul-3:8500,consul-1:8500"
    assert second["SERVICE_ADDRESS"] == "cart-2"


def test_databases_sql_creates_a_role_and_database_per_service() -> None:
    sql = render.databases_sql()
    for service in SERVICES:
        assert f"CREATE DATABASE {service} OWNER {service}" in sql


def test_supervisor_config_escapes_percent_in_environment(tmp_path: Path) -> None:
    program = Program("x-1", "true", tmp_path, 50, "service", env={"A": "50%"})
    assert 'environment=A="50%%"' in render_config(tmp_path, [program])


def test_a_taken_port_is_named_with_its_variable() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        t = topology(PROMETHEUS_PORT=str(port))
        with pytest.raises(StackError, match=rf"port {port} \(PROMETHEUS_PORT\)"):
            check_ports_free(t)


def test_a_port_past_65535_is_refused_with_its_variable() -> None:
    # Redis node n's bus listens on REDIS_BUS_PORT + n - 1.
    with pytest.raises(StackError, match=r"port 65536 \(REDIS_BUS_PORT\) is past 65535"):
        check_ports_distinct(topology(REDIS_BUS_PORT="65531"))


def test_two_variables_on_one_port_are_refused() -> None:
    t = topology(PROMETHEUS_PORT="39101")
    assert (39101, "AUTH_PORT") in stack_ports(t)
    with pytest.raises(StackError, match="both"):
        check_ports_free(t)


def test_migrations_must_be_numbered_and_unique(tmp_path: Path) -> None:
    (tmp_path / "0001_first.sql").write_text("SELECT 1;")
    (tmp_path / "0002_second.sql").write_text("SELECT 2;")
    assert [m.version for m in load_migrations(tmp_path)] == [1, 2]
    (tmp_path / "0002_again.sql").write_text("SELECT 3;")
    with pytest.raises(MigrationError, match="share a version"):
        load_migrations(tmp_path)
    (tmp_path / "0002_again.sql").unlink()
    (tmp_path / "third.sql").write_text("SELECT 4;")
    with pytest.raises(MigrationError, match="NNNN_description"):
        load_migrations(tmp_path)


def test_every_service_ships_valid_migrations() -> None:
    root = Path(__file__).resolve().parents[2]
    for service in SERVICES:
        assert load_migrations(root / "services" / service / "migrations")


def test_kraft_cluster_ids_never_look_like_an_option() -> None:
    from shopctl.local import new_cluster_id

    ids = [new_cluster_id() for _ in range(2000)]  # about 31 would start with "-" by chance
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
    assert len(set(ids)) == len(ids)


def test_replicas_1_runs_one_copy_of_each_replicated_part() -> None:
    three, one = topology(), topology(REPLICAS="1")
    assert [n.name for n in three.kafka_nodes()] == ["kafka-1", "kafka-2", "kafka-3"]
    assert [c.name for c in three.consul_servers()] == ["consul-1", "consul-2", "consul-3"]
    assert [n.name for n in one.kafka_nodes()] == ["kafka-1"]
    assert [c.name for c in one.consul_servers()] == ["consul-1"]
    assert one.instance_env(one.instances("orders")[0])["KAFKA_BOOTSTRAP_SERVERS"].count(",") == 0
    with pytest.raises(ValueError, match="REPLICAS is 1 or 3"):
        _ = topology(REPLICAS="2").replicas
