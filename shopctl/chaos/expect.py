"""What clients may see while an experiment's fault lasts, and the check of it against
every request that failed.

Each experiment says it in its file, as a Chaos Toolkit extension:
`{"name": "shopstack", "clients": ..., "checkouts": ...}` where `clients` is

- `unaffected`: no request fails (losing one instance of anything: the others serve);
- `fast-503`: only fast, honest failures: 503 with a Retry-After, answered before the
  gateway's timeout, i.e. never a hang (a dependency every instance shares is away or
  slow). How fast they came is in the summary (the slowest failure), for a person to see;
- `any`: clients may see anything (the whole stack restarts); what counts is that no
  acknowledged order is lost and the invariants hold,

and `checkouts: unaffected` adds that no POST /orders fails (Kafka and the card processor
are not needed to take an order). A failover experiment (shopctl/chaos/failover.py) adds
`writes_resume_within_s`: the part it kills the leader of takes writes again within it,
and the old leader is back as a follower. In every case no answer may take longer than the
gateway's timeout, and every followed order must end as expected.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from shopctl.chaos.shard_carts import describe, not_honest

CLIENTS = ("unaffected", "fast-503", "any")
HONEST = "503 with Retry-After"
# The gateway's proxy_read_timeout (infra/nginx/nginx.conf.j2): no answer takes longer.
GATEWAY_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class Expectation:
    clients: str = "fast-503"
    checkouts_unaffected: bool = False
    writes_resume_within_s: float | None = None

    @classmethod
    def of(cls, experiment: dict[str, Any]) -> Expectation:
        found = [e for e in experiment.get("extensions", []) if e.get("name") == "shopstack"]
        if len(found) != 1:
            raise ValueError(f"{experiment['title']}: no `shopstack` extension with expectations")
        clients, checkouts = found[0]["clients"], found[0].get("checkouts", "any")
        if clients not in CLIENTS or checkouts not in ("unaffected", "any"):
            raise ValueError(f"{experiment['title']}: unknown expectation {found[0]}")
        within = found[0].get("writes_resume_within_s")
        return cls(clients, checkouts == "unaffected", None if within is None else float(within))

    def describe(self) -> str:
        said = {
            "unaffected": "no failed request",
            "fast-503": "only fast 503s with Retry-After",
            "any": "anything (no order lost)",
        }[self.clients]
        said += "; no failed checkout" if self.checkouts_unaffected else ""
        if self.writes_resume_within_s is not None:
            said += f"; writes again within {self.writes_resume_within_s:.0f} s"
        return said


def kind(failure: dict[str, Any]) -> str:
    """A failure as one short label: what the client got back."""
    if failure["method"] == "JOURNEY":
        return "order not ended in time"
    status = failure["status"]
    if not status:
        return "no answer"
    if failure["ms"] >= GATEWAY_TIMEOUT_MS:
        return f"{status} after the gateway's timeout"
    if status == 503:
        return HONEST if failure.get("retry_after") else "503 without Retry-After"
    return str(status)


def summary(failures: list[dict[str, Any]]) -> str:
    """E.g. "98 x 503 with Retry-After, 2 x 502 (the slowest in 40 ms)"; "none" when
    nothing failed."""
    if not failures:
        return "none"
    counts = Counter(kind(f) for f in failures)
    kinds = ", ".join(f"{n} x {label}" for label, n in counts.most_common())
    answered = [f["ms"] for f in failures if f["method"] != "JOURNEY"]
    if not answered:
        return kinds
    slowest = max(answered)
    said = f"{slowest:.0f} ms" if slowest < 1000 else f"{slowest / 1000:.1f} s"
    return f"{kinds} (the slowest in {said})"


def judge(expectation: Expectation, failures: list[dict[str, Any]], slowest_ms: float) -> list[str]:
    """What the clients saw that the experiment's expectation does not allow."""
    problems = []
    if slowest_ms > GATEWAY_TIMEOUT_MS:
        problems.append(f"an answer took {slowest_ms / 1000:.1f} s, past the gateway's timeout")
    if expectation.clients == "any":
        return problems
    journeys = [f for f in failures if f["method"] == "JOURNEY"]
    if journeys:
        problems.append(f"{len(journeys)} followed orders did not end as expected in time")
    requests = [f for f in failures if f["method"] != "JOURNEY"]
    if expectation.clients == "unaffected" and requests:
        problems.append(f"clients saw failures: {summary(requests)}")
    if expectation.clients == "fast-503":
        dishonest = [f for f in requests if kind(f) != HONEST]
        if dishonest:
            problems.append(f"failures other than a 503 with Retry-After: {summary(dishonest)}")
    checkouts = [f for f in requests if f["method"] == "POST" and f["name"] == "/orders"]
    if expectation.checkouts_unaffected and checkouts:
        problems.append(f"{len(checkouts)} checkouts failed: {summary(checkouts)}")
    return problems


def failover_of(journal: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """What a failover experiment's actions returned: the kill's figures, and who came
    back when (None and {} for any other experiment)."""
    killed: dict[str, Any] | None = None
    back: dict[str, Any] = {}
    for entry in journal.get("run", []):
        output = entry.get("output")
        if isinstance(output, dict) and "writes_resumed_s" in output:
            killed = output
        elif isinstance(output, dict) and "returned" in output:
            back = output
    return killed, back


def judge_failover(
    expectation: Expectation, killed: dict[str, Any] | None, back: dict[str, Any]
) -> list[str]:
    if expectation.writes_resume_within_s is None:
        return []
    if killed is None:
        return ["the failover action reported nothing"]
    problems = []
    resumed, floor = killed["writes_resumed_s"], expectation.writes_resume_within_s
    if resumed is None or resumed > floor:
        took = "never" if resumed is None else f"after {resumed:.1f} s"
        problems.append(f"writes resumed {took}, not within {floor:.0f} s")
    if carts := killed.get("carts"):
        others = carts["others"]
        if others["failed"] or not others["count"]:
            problems.append(f"reads of carts on the other shards: {describe(others)}")
        if wrong := not_honest(carts["shard"]):
            problems.append(f"{len(wrong)} reads of carts on its shard failed slowly or not 503")
    returned = back.get("returned", [])
    if killed["killed"] not in back.get("following", []) or any(
        r["rejoined_s"] is None for r in returned
    ):
        problems.append(f"{killed['killed']} did not rejoin as a follower")
    return problems


def describe_failover(killed: dict[str, Any] | None, back: dict[str, Any]) -> str:
    """E.g. "consul-1 killed: writes again after 1.1 s (11 refused), consul-2 leads;
    consul-1 back as a follower 2.3 s after its restart"."""
    if killed is None:
        return "-"
    resumed = killed["writes_resumed_s"]
    said = f"{killed['killed']} killed: writes " + (
        "never resumed" if resumed is None else f"again after {resumed:.1f} s"
    )
    said += f" ({killed['writes_refused']} refused), {killed['new_leader'] or 'nobody'} leads"
    if carts := killed.get("carts"):
        said += (
            f"; reads of carts on the other shards: {describe(carts['others'])}, "
            f"on its shard: {describe(carts['shard'])}"
        )
    returned = back.get("returned", [])
    for member in returned:
        rejoined = member["rejoined_s"]
        said += f"; {member['name']} " + (
            "not back as a follower"
            if rejoined is None
            else f"back as a follower {rejoined:.1f} s after its restart"
        )
    if killed["killed"] not in {r["name"] for r in returned}:
        following = killed["killed"] in back.get("following", [])
        said += f"; {killed['killed']} " + (
            "back as a follower by itself" if following else "not back as a follower"
        )
    return said
