"""Lua scripts, run by hash (EVALSHA) and sent whole (EVAL) only to a node that does not
know them yet.

redis-py's `register_script` answers NOSCRIPT with SCRIPT LOAD, which a cluster client
sends to every primary: with one shard down, a healthy shard that needs the script
loaded (a promoted replica starts with an empty script cache: scripts are not
replicated) would fail its calls too. EVAL goes to the keys' node alone and leaves the
script cached there."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError
from redis.typing import EncodableT

from kit.redis import RedisClient


class LuaScript:
    def __init__(self, client: RedisClient, source: str) -> None:
        self.client = client
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    async def __call__(self, *, keys: Sequence[str], args: Sequence[EncodableT] = ()) -> Any:
        try:
            return await self.client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self.client.eval(self.source, len(keys), *keys, *args)
