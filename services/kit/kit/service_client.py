"""Calls to other services: an instance from discovery, a timeout on every call, a
circuit breaker per instance, and retries only where repeating is harmless.

Retries use exponential backoff with full jitter and go to an instance not yet tried.
Safe methods (GET, HEAD, OPTIONS, PUT, DELETE) are retried on errors and 5xx; other
calls only when the connection was refused, i.e. the request never left this process.
When every attempt fails the caller gets `DependencyUnavailable`: a 503 with Retry-After.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from circuitbreaker import STATE_CLOSED, STATE_HALF_OPEN, CircuitBreaker
from prometheus_client import Counter, Gauge
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from kit.discovery import Endpoint, EndpointSource
from kit.errors import DependencyUnavailable
from kit.http import Answer, Failed, HttpClient, Refused, Sender

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

CALLS = Counter(
    "service_client_requests_total",
    "Attempts to call another service, by outcome.",
    ["service", "target", "outcome"],
)
RETRIES = Counter(
    "service_client_retries_total",
    "Calls to another service that were tried again on another instance.",
    ["service", "target"],
)
BREAKER_STATE = Gauge(
    "circuit_breaker_state",
    "Circuit breaker per target instance: 0 closed, 1 half-open, 2 open.",
    ["service", "target", "target_instance"],
)


class AttemptFailed(Exception):
    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.retryable = retryable


class ServiceClient:
    def __init__(
        self,
        discovery: EndpointSource,
        *,
        caller: str,
        timeout: float = 2.0,
        attempts: int = 3,
        breaker_failures: int = 5,
        breaker_recovery_seconds: int = 10,
        send: Sender | None = None,
    ) -> None:
        """`send` replaces the HTTP client (unit tests)."""
        self.discovery = discovery
        self.caller = caller
        self.attempts = attempts
        self.http = HttpClient(timeout=timeout)
        self.send = send or self.http.send
        self._breaker_settings = (breaker_failures, breaker_recovery_seconds)
        self._breakers: dict[str, CircuitBreaker] = {}
        self._turns: defaultdict[str, itertools.count[int]] = defaultdict(itertools.count)

    def breaker(self, endpoint: Endpoint) -> CircuitBreaker:
        if endpoint.id not in self._breakers:
            failures, recovery = self._breaker_settings
            self._breakers[endpoint.id] = CircuitBreaker(
                failure_threshold=failures,
                recovery_timeout=recovery,
                expected_exception=AttemptFailed,
                name=endpoint.id,
            )
        return self._breakers[endpoint.id]

    def _pick(self, target: str, turn: int, tried: set[str]) -> Endpoint:
        """Round-robin over instances whose breaker is not open, preferring ones this
        call has not tried yet."""
        known = self.discovery.endpoints(target)
        usable = [e for e in known if not self.breaker(e).opened]
        fresh = [e for e in usable if e.id not in tried]
        choices = fresh or usable
        if not choices:
            raise DependencyUnavailable(target)
        return choices[turn % len(choices)]

    async def request(
        self,
        target: str,
        method: str,
        path: str,
        *,
        idempotent: bool | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> Answer:
        method = method.upper()
        safe = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        tried: set[str] = set()
        turn = next(self._turns[target])
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_random_exponential(multiplier=0.05, max=1.0),
            retry=retry_if_exception(lambda e: isinstance(e, AttemptFailed) and e.retryable),
            before_sleep=lambda _: RETRIES.labels(self.caller, target).inc(),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    endpoint = self._pick(target, turn, tried)
                    tried.add(endpoint.id)
                    return await self._attempt(target, endpoint, method, path, safe, headers, json)
        except AttemptFailed as exc:
            raise DependencyUnavailable(target) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _attempt(
        self,
        target: str,
        endpoint: Endpoint,
        method: str,
        path: str,
        safe: bool,
        headers: Mapping[str, str] | None,
        json: Any,
    ) -> Answer:
        breaker = self.breaker(endpoint)
        try:
            with breaker:
                try:
                    response = await self.send(method, endpoint.base_url + path, headers, json)
                except Refused as exc:
                    raise AttemptFailed(f"{endpoint.id}: {exc}", retryable=True) from exc
                except Failed as exc:
                    raise AttemptFailed(f"{endpoint.id}: {exc}", retryable=safe) from exc
                if response.status_code >= 500:
                    raise AttemptFailed(
                        f"{endpoint.id} answered {response.status_code}", retryable=safe
                    )
        except AttemptFailed:
            CALLS.labels(self.caller, target, "error").inc()
            raise
        finally:
            state = breaker.state
            code = 0 if state == STATE_CLOSED else 1 if state == STATE_HALF_OPEN else 2
            BREAKER_STATE.labels(self.caller, target, endpoint.id).set(code)
        CALLS.labels(self.caller, target, "success").inc()
        return response

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.http.close()
