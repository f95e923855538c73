"""The cart service's start-up: the kit's service defaults plus catalog, carts and stock."""

from pathlib import Path

from fastapi import FastAPI

from cart.cart_store import CartStore
from cart.config import CartSettings
from cart.figures import READINGS
from cart.local_copies import LocalCopies
from cart.product_cache import ProductCache
from cart.routes import cart, internal, products
from cart.service import Carts, Catalog, Stock
from kit import AfterMigrations, Postgres, Redis, create_app
from kit.state_metrics import StateGauges

SERVICE_DIR = Path(__file__).resolve().parents[1]


def build_app(settings: CartSettings) -> FastAPI:
    db = Postgres(settings, migrations_dir=SERVICE_DIR / "migrations")
    # Product reads survive Redis being down (from Postgres), so Redis is not critical.
    redis = Redis(settings, critical=False)
    copies = LocalCopies(redis.client, ttl_seconds=settings.product_copy_ttl_seconds)
    cache = ProductCache(redis.client, ttl_seconds=settings.product_cache_ttl_seconds, local=copies)
    catalog = Catalog(db=db, cache=cache, seed_file=SERVICE_DIR / "data" / "products.json")
    app = create_app(
        settings,
        routers=[products, cart, internal],
        components=[db, redis],
        parts=[
            copies,
            AfterMigrations(db, catalog.seed, name="catalog seed"),
            StateGauges(db, READINGS, interval_seconds=settings.state_metrics_interval_seconds),
        ],
        authenticate=True,
    )
    app.state.catalog = catalog
    app.state.carts = Carts(
        carts=CartStore(redis.client, ttl_seconds=settings.cart_ttl_seconds), catalog=catalog
    )
    app.state.stock = Stock(db=db, cache=cache)
    return app


app = build_app(CartSettings())
