"""`make bench`'s ceiling B (shopctl/bench/ceilings.py runs two behind a plain nginx): a bare
FastAPI endpoint returning a product-sized JSON document, with no middleware, cache,
database or discovery in the way."""

from fastapi import FastAPI

app = FastAPI()

PRODUCT = {
    "id": "oak-desk",
    "name": "Oak Desk",
    "description": "A desk in solid oak.",
    "price_cents": 24900,
    "currency": "EUR",
    "stock": 20,
}


@app.get("/products/{product_id}")
async def product(product_id: str) -> dict[str, object]:
    return {**PRODUCT, "id": product_id}
