"""`make verify`: the platform's invariants (ARCHITECTURE.md), read from the real state:
orders', payments' and cart's databases, the card processor's own ledger, and a sample
through the gateway of who may read what. Each is reported with its counts; the exit
status is 0 only when all hold."""

from __future__ import annotations

from collections import Counter, defaultdict

from shopctl.check import Check
from shopctl.isolation import probe_isolation
from shopctl.shop_state import Capture, Payment, ShopState, read_state
from shopctl.topology import Settings

SAGA_TIMEOUT_SECONDS = 60  # orders younger than this may still be PENDING
SETTLE_SECONDS = 30  # how long to wait for the stack to be quiet before reading it


def _some(items: list[str] | set[str], n: int = 3) -> str:
    listed = sorted(items)
    return ", ".join(listed[:n]) + (f" (+{len(listed) - n})" if len(listed) > n else "") or "none"


def check_state(state: ShopState) -> list[Check]:
    orders = state.orders
    statuses = Counter(o.status for o in orders.values())
    stranded = [o.id for o in orders.values() if o.status == "PENDING" and not o.young]
    confirmed = {o.id: o.total_cents for o in orders.values() if o.status == "CONFIRMED"}
    cancelled = {o.id for o in orders.values() if o.status == "CANCELLED"}

    per_reference: defaultdict[str, list[int]] = defaultdict(list)
    net: defaultdict[str, int] = defaultdict(int)
    for capture in state.captures:
        per_reference[capture.reference].append(capture.amount_cents)
        net[capture.reference] += capture.amount_cents - capture.refunded_cents
    doubled = {ref for ref, amounts in per_reference.items() if len(amounts) > 1}
    # A capture belongs to a confirmed order, a cancelled one (then refunded), or an
    # order still in flight; anything else is money taken for nothing.
    misplaced = {
        ref
        for ref in per_reference
        if ref not in orders
        or (orders[ref].status == "PENDING" and not orders[ref].young)
        or (orders[ref].status == "CANCELLED" and net[ref] != 0)
    }
    captured_net = sum(net[ref] for ref in per_reference if ref in confirmed or ref in cancelled)
    cancelled_kept = [o for o in cancelled if net.get(o, 0) != 0]

    by_charge = {c.id: c for c in state.captures}
    payment_off = [p.id for p in state.payments if not _agrees(p, by_charge.get(p.charge_id or ""))]
    paid_charges = {p.charge_id for p in state.payments if p.charge_id}
    unrecorded = [c.id for c in state.captures if c.id not in paid_charges]

    negative = [p for p, (_i, on_hand, _r, _s) in state.stock.items() if on_hand < 0]
    unaccounted = [p for p, (i, on_hand, r, s) in state.stock.items() if i != on_hand + r + s]
    reservations = state.reservations
    wrong_reservations = [o for o in confirmed if _status(state, o) != "SOLD"]
    wrong_reservations += [o for o in cancelled if _status(state, o) not in (None, "RELEASED")]
    lines_off = [
        o.id
        for o in orders.values()
        if o.id not in reservations or reservations[o.id].lines != o.lines
    ]
    orphans = [
        order_id
        for order_id, reservation in reservations.items()
        if reservation.status == "RESERVED" and _orphaned(state, order_id)
    ]
    total_orders = sum(statuses.values())
    return [
        Check(
            "every order is terminal or younger than the saga timeout",
            not stranded,
            f"{total_orders} orders: {dict(statuses)}; {len(stranded)} PENDING for over "
            f"{SAGA_TIMEOUT_SECONDS}s: {_some(stranded)}",
        ),
        Check(
            "at most one capture per order (the processor's ledger)",
            not doubled,
            f"{len(state.captures)} captures for {len(per_reference)} references; "
            f"charged more than once: {_some(doubled)}",
        ),
        Check(
            "every capture is for a confirmed order, or refunded, or still in flight",
            not misplaced,
            f"{len(per_reference)} captured references; for no order, a stranded order or "
            f"a cancelled one without refund: {_some(misplaced)}",
        ),
        Check(
            "captured money equals the totals of confirmed orders",
            captured_net == sum(confirmed.values()),
            f"captured {captured_net} cents net of refunds; confirmed orders total "
            f"{sum(confirmed.values())} cents",
        ),
        Check(
            "cancelled orders keep nothing",
            not cancelled_kept,
            f"{len(cancelled)} cancelled; with money kept: {_some(cancelled_kept)}",
        ),
        Check(
            "payments agree with the processor's captures",
            not payment_off and not unrecorded,
            f"{len(state.payments)} payments; not matching their capture: "
            f"{_some(payment_off)}; captures with no payment: {_some(unrecorded)}",
        ),
        Check(
            "the ledger balances",
            state.ledger_sum == 0 and state.unbalanced_payments == 0,
            f"ledger sum {state.ledger_sum}; unbalanced payments {state.unbalanced_payments}",
        ),
        Check(
            "no oversell: stock never negative",
            not negative,
            f"{len(state.stock)} products; negative: {_some(negative)}",
        ),
        Check(
            "stock accounted for: initial = on hand + reserved + sold",
            not unaccounted,
            f"{len(state.stock)} products; off: {_some(unaccounted)}",
        ),
        Check(
            "confirmed orders' stock is sold, cancelled orders' released",
            not wrong_reservations,
            f"mismatched: {_some(wrong_reservations)}",
        ),
        Check(
            "every order's lines are the lines its reservation holds",
            not lines_off,
            f"{total_orders} orders; lines differ: {_some(lines_off)}",
        ),
        Check(
            "no orphan reservations",
            not orphans,
            f"{len(reservations)} reservations; RESERVED with no order or a closed one: "
            f"{_some(orphans)}",
        ),
    ]


def _agrees(payment: Payment, capture: Capture | None) -> bool:
    """SUCCEEDED: captured in full, not refunded; REFUNDED: captured and refunded in full;
    FAILED: nothing captured."""
    if capture is None:
        return payment.status == "FAILED"
    if capture.amount_cents != payment.amount_cents:
        return False
    if payment.status == "SUCCEEDED":
        return capture.refunded_cents == 0
    if payment.status == "REFUNDED":
        return capture.refunded_cents == capture.amount_cents
    return False


def _orphaned(state: ShopState, order_id: str) -> bool:
    """Stock held for no order (past the time a checkout attempt may take) or for an
    order that is already closed."""
    order = state.orders.get(order_id)
    if order is None:
        return not state.reservations[order_id].young
    return order.status != "PENDING"


def _status(state: ShopState, order_id: str) -> str | None:
    reservation = state.reservations.get(order_id)
    return None if reservation is None else reservation.status


def verify(
    settings: Settings, *, settle_seconds: float = SETTLE_SECONDS
) -> tuple[list[Check], list[str]]:
    """The checks, and notes on how the state was read."""
    state = read_state(settings, saga_timeout=SAGA_TIMEOUT_SECONDS, settle_seconds=settle_seconds)
    checks = check_state(state)
    checks.append(
        probe_isolation(
            settings,
            orders=sorted(state.orders)[:5],
            payments=sorted(p.id for p in state.payments)[:5],
        )
    )
    notes = []
    if not state.quiet:
        notes.append(
            f"The stack was still busy after {settle_seconds:g}s, so the sources were read "
            "at slightly different moments; work younger than the saga timeout is tolerated."
        )
    return checks, notes


def check_all(settings: Settings, *, settle_seconds: float = SETTLE_SECONDS) -> list[Check]:
    return verify(settings, settle_seconds=settle_seconds)[0]


def report(settings: Settings) -> int:
    checks, notes = verify(settings)
    for check in checks:
        print(f"{'ok  ' if check.ok else 'FAIL'}  {check.name}\n      {check.detail}")
    for note in notes:
        print(f"note  {note}")
    failed = [c for c in checks if not c.ok]
    print(f"\n{len(checks) - len(failed)} of {len(checks)} invariants hold.")
    return 1 if failed else 0
