-- Each hold on an Idempotency-Key is one attempt with its own order id, which fences it:
-- every write of the attempt checks that the hold is still its own.
ALTER TABLE idempotency_keys ADD COLUMN attempt uuid;

-- Attempts that will never become orders (they failed, or a newer attempt took their key
-- over): the stock they may hold is released in cart by a background loop.
CREATE TABLE abandoned_attempts (
    order_id uuid PRIMARY KEY,
    abandoned_at timestamptz NOT NULL DEFAULT now()
);
