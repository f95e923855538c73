"""The Redis Cluster client: redis-py's asyncio `RedisCluster`, set up so that one shard
going away costs only the calls on that shard, each a fast error, and the shard is used
again as soon as its replica is promoted, with no restart.

How redis-py gets there: a connection error on a node makes the next call fetch the
slot map again (CLUSTER SLOTS from another node) before its one retry, so calls find
a promoted replica by themselves. What `ClusterClient` adds to redis-py:

- a deadline on every call: refreshing the slot map asks the known nodes one after
  another, each within the socket timeout, and calls queue behind one refresh; with
  every node silent that adds up to far more than a fast 503;
- at most one refresh of the slot map per `REFRESH_INTERVAL_SECONDS`: redis-py refreshes
  it after every connection error, while every call on every shard waits, and each
  refresh makes every pooled connection reconnect; with a primary dead, each call on its
  shard would start one, and the healthy shards would spend the outage queueing;
- every way the client reports "no node answers" is a `RedisError`, as it is with one
  Redis, so callers handle one family of errors in both modes;
- DEL goes one command per hash slot through the same path as every other command:
  redis-py sends it as a cluster pipeline, whose answer to a connection error is to
  close every connection to every node, failing calls in flight on the healthy shards;
- a MOVED redirect names a node by the address it announces, which redis-py follows
  without the address map (redis-py issue #3382): it is mapped here, so no connection
  ever bypasses a node's proxy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from redis.asyncio.cluster import ClusterNode, NodesManager, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    AskError,
    ClusterError,
    MovedError,
    RedisClusterException,
    SlotNotCoveredError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import EncodableT, KeyT

from kit.addresses import Address
from kit.settings import ServiceSettings

log = logging.getLogger("kit.redis")

# A dead shard's calls fail fast without a fresh map; its promoted replica is found at
# most this long after the promotion (which itself takes about 3 s).
REFRESH_INTERVAL_SECONDS = 0.25


def cluster_client(settings: ServiceSettings) -> ClusterClient:
    timeout = settings.dependency_timeout_seconds
    mapping = settings.redis_address_remap
    return ClusterClient(
        # The configured nodes go through the map too: they may be named by the
        # addresses the nodes announce.
        startup_nodes=[
            ClusterNode(*mapping.get(node, node)) for node in settings.redis_startup_nodes
        ],
        address_remap=address_remap(mapping),
        # A failed call costs at most what one Redis's two attempts cost.
        deadline_seconds=2 * timeout,
        # One immediate retry, after the slot map was fetched again (redis-py uses the
        # retry's count, not its backoff, for cluster calls). More retries would only
        # spend the deadline on a primary that is still dead: until its replica is
        # promoted (cluster-node-timeout and an election, about 3 s) the call fails.
        retry=Retry(NoBackoff(), 1),
        # The servers run with cluster-require-full-coverage no so that the healthy
        # shards keep serving; the client must agree, or a slot map with a hole (slots
        # being moved, a shard with no node left) would stop it using any shard.
        require_full_coverage=False,
        # After the first slot map the cluster's own list of nodes is used to fetch the
        # next one, so the configured nodes dying later costs nothing.
        dynamic_startup_nodes=True,
        # On a MOVED redirect redis-py patches the slot's owner in place; every
        # `reinitialize_steps`-th redirect it instead closes every connection to every
        # node, failing the calls in flight on every shard. A connection error (a dead
        # primary) always refetches the whole map, so nothing is lost by never doing it.
        reinitialize_steps=0,
        # Per node. Past it redis-py refuses a call rather than waiting for a connection;
        # its default, 100, is a burst an instance can have in flight, and one Redis's
        # pool has no limit at all.
        max_connections=1000,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=10,
        decode_responses=True,
    )


def address_remap(mapping: dict[Address, Address]) -> Callable[[Address], Address]:
    """The address to connect to for the address a node announces: its mapped one, or
    itself when the map does not name it (said once per address in the log, since
    that connection bypasses the proxies the map exists for)."""
    unmapped: set[Address] = set()
    proxies = set(mapping.values())

    def remap(address: Address) -> Address:
        announced = (str(address[0]).lower(), int(address[1]))
        target = mapping.get(announced)
        if target is not None:
            return target
        if mapping and announced not in proxies and announced not in unmapped:
            unmapped.add(announced)
            log.warning(
                "redis node not in REDIS_ADDRESS_MAP; connecting to it directly",
                extra={"address": f"{announced[0]}:{announced[1]}"},
            )
        return announced

    return remap


class ClusterClient(RedisCluster):
    def __init__(self, *, deadline_seconds: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deadline_seconds = deadline_seconds
        self.refreshed_at = -REFRESH_INTERVAL_SECONDS
        # The manager redis-py built, with MOVED redirects mapped; the class adds no
        # state, so the object built with redis-py's own arguments is kept as it is.
        self.nodes_manager.__class__ = _MappedRedirects

    async def initialize(
        self,
        additional_startup_nodes_info: list[tuple[str, int]] | None = None,
        last_failed_node_name: str | None = None,
    ) -> ClusterClient:
        # `_initialize` is redis-py's "fetch the map before the next call" flag. A map
        # fetched a moment ago is kept (unless the client was closed: no default node).
        if not self._initialize:
            return self
        recent = time.monotonic() - self.refreshed_at < REFRESH_INTERVAL_SECONDS
        if recent and self.nodes_manager.default_node is not None:
            self._initialize = False
            return self
        # redis-py raises RedisClusterException, not a RedisError, when no node gives
        # it a slot map (every node down). A cluster not formed yet (the stack starting)
        # answers with no slots at all: redis-py then replaces its startup nodes with the
        # nodes of that empty map, i.e. none, and fails on an IndexError; with the
        # configured nodes put back, the next call asks them again.
        startup = dict(self.nodes_manager.startup_nodes)
        try:
            await super().initialize(additional_startup_nodes_info, last_failed_node_name)
        except (RedisClusterException, IndexError) as exc:
            self.nodes_manager.startup_nodes.update(startup)
            self._initialize = True
            raise RedisConnectionError(f"no Redis Cluster node serves slots: {exc!r}") from exc
        self.refreshed_at = time.monotonic()
        return self

    async def execute_command(self, *args: EncodableT, **kwargs: Any) -> Any:
        try:
            async with asyncio.timeout(self.deadline_seconds):
                return await super().execute_command(*args, **kwargs)
        except TimeoutError as exc:  # the deadline's (a socket's is redis-py's own)
            raise RedisTimeoutError(
                f"Redis Cluster did not answer within {self.deadline_seconds:g}s"
            ) from exc
        except SlotNotCoveredError as exc:
            # A map fetched from a node whose view was partial (the cluster forming, a
            # failover under way) would otherwise answer this slot with errors for good.
            self._initialize = True
            raise ClusterError(str(exc)) from exc

    async def delete(self, *keys: KeyT) -> int:
        by_slot: dict[int, list[KeyT]] = {}
        for key in keys:
            by_slot.setdefault(self.keyslot(key), []).append(key)
        deleted = 0
        for slot_keys in by_slot.values():
            deleted += int(await self.execute_command("DEL", *slot_keys))
        return deleted


class _MappedRedirects(NodesManager):
    __slots__ = ()

    def get_node_from_slot(self, slot: int, *args: Any, **kwargs: Any) -> ClusterNode:
        # redis-py 8.1 means to raise SlotNotCoveredError for a slot its map lacks, but
        # catches the IndexError of a list where its map is now a dict: a KeyError
        # escaped as a 500, and nothing fetched the map again.
        try:
            return super().get_node_from_slot(slot, *args, **kwargs)
        except KeyError:
            raise SlotNotCoveredError(f"slot {slot} is not in the client's slot map") from None

    async def move_slot(self, e: AskError | MovedError) -> None:
        e.host, e.port = self.remap_host_port(e.host, e.port)
        e.node_addr = (e.host, e.port)
        await super().move_slot(e)
