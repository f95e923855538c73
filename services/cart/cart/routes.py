"""The cart API: the catalog, each user's cart, and the internal stock reservations
(service-to-service only; the gateway never routes /internal)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status
from pydantic import BaseModel

from cart.schemas import (
    CartRead,
    Product,
    ProductPage,
    ProductPatch,
    QuantityIn,
    ReservationIn,
    ReservationRead,
)
from cart.service import Carts, Catalog, Stock
from kit.deps import CurrentAdmin, CurrentUser, from_state
from kit.openapi import problems

CatalogDep = Annotated[Catalog, Depends(from_state("catalog"))]
CartsDep = Annotated[Carts, Depends(from_state("carts"))]
StockDep = Annotated[Stock, Depends(from_state("stock"))]
ProductId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[a-z0-9-]+$")]

products = APIRouter(prefix="/products", tags=["catalog"])
cart = APIRouter(prefix="/cart", tags=["cart"])
internal = APIRouter(prefix="/internal/reservations", tags=["internal"], include_in_schema=False)


def encoded(model: BaseModel) -> Response:
    """The answer as JSON, encoded once. The service built and validated `model` itself;
    returned as a model, FastAPI would validate it again, turn it into a dict and encode
    that with the standard library (the cart routes are every shopper's writes). The
    route's `response_model` still documents the shape."""
    return Response(model.model_dump_json(), media_type="application/json")


@products.get("", responses=problems(422))
async def list_products(
    catalog: CatalogDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> ProductPage:
    return await catalog.page(limit=limit, cursor=cursor)


@products.get("/{product_id}", response_model=Product, responses=problems(404, 422))
async def read_product(product_id: ProductId, catalog: CatalogDep) -> Response:
    # The hottest route; the product comes validated from the cache or Postgres.
    return encoded(await catalog.product(product_id=product_id))


@products.patch("/{product_id}", responses=problems(401, 403, 404, 422))
async def update_product(
    product_id: ProductId, body: ProductPatch, _admin: CurrentAdmin, catalog: CatalogDep
) -> Product:
    return await catalog.update(
        product_id=product_id, price_cents=body.price_cents, stock=body.stock
    )


@cart.get("", response_model=CartRead, responses=problems(401))
async def read_cart(user: CurrentUser, carts: CartsDep) -> Response:
    return encoded(await carts.read(user_id=user.user_id))


@cart.put("/items/{product_id}", response_model=CartRead, responses=problems(401, 404, 409, 422))
async def set_item(
    product_id: ProductId, body: QuantityIn, user: CurrentUser, carts: CartsDep
) -> Response:
    changed = await carts.set_quantity(
        user_id=user.user_id, product_id=product_id, quantity=body.quantity
    )
    return encoded(changed)


@cart.delete("/items/{product_id}", response_model=CartRead, responses=problems(401, 422))
async def remove_item(product_id: ProductId, user: CurrentUser, carts: CartsDep) -> Response:
    return encoded(await carts.remove(user_id=user.user_id, product_id=product_id))


@cart.delete("", status_code=status.HTTP_204_NO_CONTENT, responses=problems(401))
async def clear_cart(user: CurrentUser, carts: CartsDep) -> Response:
    await carts.clear(user_id=user.user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@internal.post("")
async def reserve(body: ReservationIn, stock: StockDep) -> ReservationRead:
    return await stock.reserve(order_id=body.order_id, lines=body.lines)


@internal.post("/{order_id}/release")
async def release(order_id: uuid.UUID, stock: StockDep) -> ReservationRead:
    return await stock.release(order_id=order_id)


@internal.post("/{order_id}/commit")
async def commit(order_id: uuid.UUID, stock: StockDep) -> ReservationRead:
    return await stock.commit(order_id=order_id)
