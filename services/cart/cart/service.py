"""Cart use cases: the catalog (cache-aside), users' carts, and stock reservations
that never oversell. No FastAPI here; keyword-only arguments."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

from cart import store
from cart.cart_store import CartStore
from cart.errors import (
    NotEnoughStock,
    ProductNotFound,
    ReservationClosed,
    ReservationMismatch,
    ReservationNotFound,
)
from cart.product_cache import ProductCache
from cart.schemas import (
    CartLine,
    CartRead,
    LackingLine,
    Product,
    ProductPage,
    ReservationLine,
    ReservationRead,
)
from kit import Postgres
from kit.pagination import decode_cursor, encode_cursor

log = logging.getLogger("cart.service")


class Catalog:
    def __init__(self, *, db: Postgres, cache: ProductCache, seed_file: Path) -> None:
        self.db = db
        self.cache = cache
        self.seed_file = seed_file
        self.currency = json.loads(seed_file.read_text())["currency"]

    async def seed(self) -> int:
        data = json.loads(self.seed_file.read_text())
        async with self.db.connection() as conn, conn.transaction():
            return await store.seed_products(conn, data["products"], data["currency"])

    async def product(self, *, product_id: str) -> Product:
        cached = await self.cache.get(product_id)
        if cached is not None:
            return cached
        async with self.db.connection() as conn:
            found = await store.product(conn, product_id)
        if found is None:
            raise ProductNotFound(f"There is no product {product_id!r}.")
        await self.cache.put(found)
        return found

    async def page(self, *, limit: int, cursor: str | None) -> ProductPage:
        after = decode_cursor(cursor, parts=1)[0] if cursor else None
        async with self.db.connection() as conn:
            rows = await store.products_page(conn, limit=limit + 1, after=after)
        items = rows[:limit]
        more = len(rows) > limit
        return ProductPage(items=items, next_cursor=encode_cursor(items[-1].id) if more else None)

    async def update(
        self, *, product_id: str, price_cents: int | None, stock: int | None
    ) -> Product:
        async with self.db.connection() as conn, conn.transaction():
            updated = await store.update_product(
                conn, product_id, price_cents=price_cents, stock=stock
            )
        if updated is None:
            raise ProductNotFound(f"There is no product {product_id!r}.")
        await self.cache.evict(product_id)
        return updated


class Carts:
    def __init__(self, *, carts: CartStore, catalog: Catalog) -> None:
        self.carts = carts
        self.catalog = catalog

    async def read(self, *, user_id: str) -> CartRead:
        return await self._priced(await self.carts.lines(user_id))

    async def _priced(self, quantities: dict[str, int]) -> CartRead:
        """The cart's lines at the catalog's prices now."""
        lines = []
        for product_id, quantity in sorted(quantities.items()):
            try:
                item = await self.catalog.product(product_id=product_id)
            except ProductNotFound:
                continue  # withdrawn from the catalog since it was added
            lines.append(
                CartLine(
                    product_id=item.id,
                    name=item.name,
                    quantity=quantity,
                    unit_price_cents=item.price_cents,
                    line_total_cents=item.price_cents * quantity,
                )
            )
        total = sum(line.line_total_cents for line in lines)
        return CartRead(items=lines, total_cents=total, currency=self.catalog.currency)

    async def set_quantity(self, *, user_id: str, product_id: str, quantity: int) -> CartRead:
        item = await self.catalog.product(product_id=product_id)
        if quantity > item.stock:
            raise NotEnoughStock(
                f"Only {item.stock} of {product_id!r} in stock; ask for at most that many.",
                product_id=product_id,
                available=item.stock,
            )
        return await self._priced(await self.carts.set_quantity(user_id, product_id, quantity))

    async def remove(self, *, user_id: str, product_id: str) -> CartRead:
        return await self._priced(await self.carts.remove(user_id, product_id))

    async def clear(self, *, user_id: str) -> None:
        await self.carts.clear(user_id)


class Stock:
    def __init__(self, *, db: Postgres, cache: ProductCache) -> None:
        self.db = db
        self.cache = cache

    async def reserve(
        self, *, order_id: uuid.UUID, lines: list[ReservationLine]
    ) -> ReservationRead:
        """All lines or none, in one transaction. The same request again (same order id,
        same lines) is answered with the reservation's state now; other lines under the
        same order id are refused, so an order never records lines it did not reserve."""
        wanted: dict[str, int] = {}
        for line in lines:
            wanted[line.product_id] = wanted.get(line.product_id, 0) + line.quantity
        async with self.db.connection() as conn, conn.transaction():
            earlier = await store.claim_order(conn, order_id, wanted)
            if earlier is not None:
                return _answer_again(order_id, wanted, earlier)
            on_hand = await store.lock_stock(conn, sorted(wanted))
            unknown = sorted(set(wanted) - set(on_hand))
            if unknown:
                raise ProductNotFound(
                    f"Unknown products: {', '.join(unknown)}.", product_ids=unknown
                )
            lacking = [
                LackingLine(product_id=p, requested=q, available=on_hand[p])
                for p, q in sorted(wanted.items())
                if q > on_hand[p]
            ]
            if lacking:
                result = ReservationRead(order_id=order_id, status="REJECTED", lacking=lacking)
            else:
                await store.take_stock(conn, order_id, wanted)
                result = ReservationRead(
                    order_id=order_id, status="RESERVED", lines=_as_lines(wanted)
                )
            await store.record_outcome(
                conn, order_id, result.status, result.model_dump(mode="json")
            )
        if result.status == "RESERVED":
            await self.cache.evict(*wanted)
        return result

    async def release(self, *, order_id: uuid.UUID) -> ReservationRead:
        return await self._close(order_id, to="RELEASED")

    async def commit(self, *, order_id: uuid.UUID) -> ReservationRead:
        return await self._close(order_id, to="SOLD")

    async def _close(self, order_id: uuid.UUID, *, to: str) -> ReservationRead:
        """RESERVED moves once to SOLD or RELEASED; asking again for the state it is
        already in answers the same (idempotent), the other state is refused. A REJECTED
        reservation is released by answering its state; it can never be sold."""
        returned: list[str] = []
        async with self.db.connection() as conn, conn.transaction():
            status = await store.lock_order(conn, order_id)
            if status is None and to == "RELEASED":
                await store.close_unknown(conn, order_id)
                status = await store.lock_order(conn, order_id)
            if status is None:
                raise ReservationNotFound(f"No stock was reserved for order {order_id}.")
            if status == "REJECTED" and to == "RELEASED":
                # It never held stock: there is nothing to give back, and an abandoned
                # checkout that was refused for want of stock asks exactly this.
                return ReservationRead(order_id=order_id, status="REJECTED")
            if status == "RESERVED":
                if to == "RELEASED":
                    returned = await store.return_stock(conn, order_id)
                await store.set_order_status(conn, order_id, to)
                status = to
            elif status != to:
                raise ReservationClosed(
                    f"The reservation of order {order_id} is {status}; it cannot become {to}.",
                    reservation_status=status,
                )
            held = await store.reserved_lines(conn, order_id)
        await self.cache.evict(*returned)
        return ReservationRead(
            order_id=order_id,
            status=status,  # type: ignore[arg-type]
            lines=_as_lines(held),
        )


def _as_lines(quantities: dict[str, int]) -> list[ReservationLine]:
    return [ReservationLine(product_id=p, quantity=q) for p, q in sorted(quantities.items())]


def _answer_again(
    order_id: uuid.UUID, wanted: dict[str, int], earlier: store.StockOrder
) -> ReservationRead:
    if earlier.requested is None:  # released before it was ever asked for
        return ReservationRead(order_id=order_id, status="RELEASED")
    if earlier.requested != wanted:
        raise ReservationMismatch(
            f"Order {order_id} already asked for other lines; one order id, one request.",
            reserved=[line.model_dump() for line in _as_lines(earlier.requested)],
        )
    answer = ReservationRead.model_validate(earlier.outcome)
    held = [] if earlier.status == "REJECTED" else _as_lines(earlier.requested)
    return answer.model_copy(update={"status": earlier.status, "lines": held})
