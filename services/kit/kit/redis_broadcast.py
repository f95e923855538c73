"""A pub/sub channel every instance hears, with one Redis or a Redis Cluster.

A cluster forwards each PUBLISH to every node over its bus, so a channel can be heard
on any node and published on any node. redis-py would route both by the channel
name's hash slot, tying the channel to one shard: that shard's primary down would stop
it everywhere. Here each subscription, and each publish, goes to the next node in turn
(primaries and replicas alike), so losing a node costs one attempt; instances start at
different nodes, so their subscriptions spread over the cluster."""

from __future__ import annotations

import random

from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisError

from kit.redis import RedisClient


class BroadcastChannel:
    def __init__(self, client: RedisClient, name: str) -> None:
        self.client = client
        self.name = name
        self._turn = random.randrange(1 << 16)

    async def publish(self, message: str) -> None:
        if not isinstance(self.client, RedisCluster):
            await self.client.publish(self.name, message)
            return
        # One retry on another node, as every Redis call gets one.
        first, *others = (await self._nodes_in_turn(self.client))[:2]
        try:
            await self.client.publish(self.name, message, target_nodes=first)
        except RedisError:
            if not others:
                raise
            await self.client.publish(self.name, message, target_nodes=others[0])

    async def pubsub(self) -> PubSub:
        """A pub/sub connection, not yet subscribed, on the next node in turn."""
        if not isinstance(self.client, RedisCluster):
            return self.client.pubsub()
        return self.client.pubsub(node=(await self._nodes_in_turn(self.client))[0])

    async def _nodes_in_turn(self, client: RedisCluster) -> list[ClusterNode]:
        await client.initialize()
        nodes = sorted(client.get_nodes(), key=lambda node: node.name)
        start = self._turn % len(nodes)
        self._turn += 1
        return nodes[start:] + nodes[:start]
