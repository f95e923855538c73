-- Lines of an order, priced on the server when the order was made.
CREATE TABLE order_items (
    order_id uuid NOT NULL REFERENCES orders (id),
    product_id text NOT NULL,
    name text NOT NULL,
    quantity integer NOT NULL CHECK (quantity > 0),
    unit_price_cents integer NOT NULL CHECK (unit_price_cents >= 0),
    PRIMARY KEY (order_id, product_id)
);

-- Every status an order has been in, with why.
CREATE TABLE order_status_history (
    order_id uuid NOT NULL REFERENCES orders (id),
    status text NOT NULL,
    reason text,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX order_status_history_order_idx ON order_status_history (order_id, at);

ALTER TABLE orders ADD COLUMN payment_token text NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN cancel_reason text;
ALTER TABLE orders ADD COLUMN last_requested_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX orders_pending_idx ON orders (last_requested_at) WHERE status = 'PENDING';

-- Idempotency-Key per user: the first answer is stored and replayed; a request still in
-- flight holds the key (a stale hold, from a crashed instance, may be taken over).
CREATE TABLE idempotency_keys (
    user_id uuid NOT NULL,
    key text NOT NULL,
    request_hash text NOT NULL,
    state text NOT NULL CHECK (state IN ('IN_FLIGHT', 'DONE')),
    status_code integer,
    body jsonb,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
